#include <config.h>

#include "datatypes.h"
#include "internal.h"
#include "storage_conf.h"
#include "storage_encryption_conf.h"
#include "viralloc.h"
#include "virerror.h"
#include "viridentity.h"
#include "virsecret.h"
#include "virsecureerase.h"
#include "viruuid.h"

#include "rbd_encryption.h"

#define VIR_FROM_THIS VIR_FROM_STORAGE

/* The UUID the secret is named by (a usage lookup resolved through the
 * secret driver). */
static int
rbdGlueSecretUUID(virConnectPtr conn, const virSecretLookupTypeDef *def, char *uuid)
{
    virSecretPtr sec;
    int rc;

    if (def->type == VIR_SECRET_LOOKUP_TYPE_UUID) {
        virUUIDFormat(def->u.uuid, uuid);
        return 0;
    }
    if (!(sec = virSecretLookupByUsage(conn, VIR_SECRET_USAGE_TYPE_VOLUME, def->u.usage)))
        return -1;
    rc = virSecretGetUUIDString(sec, uuid);
    virObjectUnref(sec);
    return rc;
}

/* The error libvirt's secret driver reported, again, naming the volume. */
static void
rbdGlueSecretFailed(virStorageVolDef *vol, const char *what, const char *uuid)
{
    virErrorPtr err = virGetLastError();
    int code = err && err->code != VIR_ERR_OK ? err->code : VIR_ERR_NO_SECRET;
    g_autofree char *msg = g_strdup(err && err->message ? err->message : _("unknown error"));

    virResetLastError();
    virReportError(code, _("cannot %s encrypted volume '%s': its passphrase secret %s: %s"),
                   what, vol->name, uuid, msg);
}

static int
rbdGlueKeyFormat(virStorageVolDef *vol, const char *what, virStorageEncryption *e,
                 rbdc_encryption_format *format)
{
    if (e->engine != VIR_STORAGE_ENCRYPTION_ENGINE_DEFAULT &&
        e->engine != VIR_STORAGE_ENCRYPTION_ENGINE_LIBRBD) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("cannot %s encrypted volume '%s': RBD volumes are encrypted by librbd (engine='librbd'), not by qemu"),
                       what, vol->name);
        return -1;
    }
    switch (e->format) {
    case VIR_STORAGE_ENCRYPTION_FORMAT_LUKS:
        *format = RBDC_ENCRYPTION_LUKS1;
        return 0;
    case VIR_STORAGE_ENCRYPTION_FORMAT_LUKS2:
        *format = RBDC_ENCRYPTION_LUKS2;
        return 0;
    default:
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("cannot %s encrypted volume '%s': its encryption format is not one librbd writes (use format='luks' or format='luks2')"),
                       what, vol->name);
        return -1;
    }
}

int
rbdGlueKeyOf(virStorageVolDef *vol, const char *what, rbdGlueKey *key)
{
    virStorageEncryption *e = vol->target.encryption;
    VIR_IDENTITY_AUTORESTORE virIdentity *oldident = NULL;
    g_autoptr(virConnect) conn = NULL;
    virStorageEncryptionSecret *s;

    memset(key, 0, sizeof(*key));
    if (!e)
        return 0;
    if (rbdGlueKeyFormat(vol, what, e, &key->enc.format) < 0)
        return -1;
    if (e->nsecrets != 1 || e->secrets[0]->type != VIR_STORAGE_ENCRYPTION_SECRET_TYPE_PASSPHRASE ||
        e->secrets[0]->seclookupdef.type == VIR_SECRET_LOOKUP_TYPE_NONE) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("cannot %s encrypted volume '%s': its <encryption> needs exactly one <secret type='passphrase' uuid='...'/> (it has %zu secrets)"),
                       what, vol->name, e->nsecrets);
        return -1;
    }
    s = e->secrets[0];
    if (!(oldident = virIdentityElevateCurrent()))
        return -1;
    if (!(conn = virGetConnectSecret()))
        return -1;
    if (rbdGlueSecretUUID(conn, &s->seclookupdef, key->uuid) < 0) {
        rbdGlueSecretFailed(vol, what, NULLSTR(s->seclookupdef.u.usage));
        return -1;
    }
    if (virSecretGetSecretString(conn, &s->seclookupdef, VIR_SECRET_USAGE_TYPE_VOLUME,
                                 &key->secret, &key->secret_size) < 0) {
        rbdGlueSecretFailed(vol, what, key->uuid);
        return -1;
    }
    if (key->secret_size == 0) {
        rbdGlueKeyClear(key);
        virReportError(VIR_ERR_INVALID_ARG,
                       _("cannot %s encrypted volume '%s': its passphrase secret %s has an empty value"),
                       what, vol->name, key->uuid);
        return -1;
    }
    key->enc.secret_uuid = key->uuid;
    key->enc.passphrase = key->secret;
    key->enc.passphrase_size = key->secret_size;
    key->present = true;
    return 0;
}

void
rbdGlueKeyClear(rbdGlueKey *key)
{
    if (key->secret) {
        virSecureErase(key->secret, key->secret_size);
        g_free(key->secret);
    }
    memset(key, 0, sizeof(*key));
}

const rbdc_encryption *
rbdGlueKeyEnc(const rbdGlueKey *key)
{
    return key->present ? &key->enc : NULL;
}

void
rbdGlueSetEncryption(virStorageVolDef *vol, const rbdc_volume_info *info)
{
    virStorageEncryption *e;
    virStorageEncryptionSecret *s;

    g_clear_pointer(&vol->target.encryption, virStorageEncryptionFree);
    if (info->encryption == RBDC_ENCRYPTION_NONE)
        return;
    e = g_new0(virStorageEncryption, 1);
    e->engine = VIR_STORAGE_ENCRYPTION_ENGINE_LIBRBD;
    e->format = info->encryption == RBDC_ENCRYPTION_LUKS1 ? VIR_STORAGE_ENCRYPTION_FORMAT_LUKS
                                                          : VIR_STORAGE_ENCRYPTION_FORMAT_LUKS2;
    if (info->secret_uuid[0]) {
        s = g_new0(virStorageEncryptionSecret, 1);
        s->type = VIR_STORAGE_ENCRYPTION_SECRET_TYPE_PASSPHRASE;
        if (virUUIDParse(info->secret_uuid, s->seclookupdef.u.uuid) == 0) {
            s->seclookupdef.type = VIR_SECRET_LOOKUP_TYPE_UUID;
            e->secrets = g_new0(virStorageEncryptionSecret *, 1);
            e->secrets[0] = s;
            e->nsecrets = 1;
        } else {
            g_free(s);
        }
    }
    vol->target.encryption = e;
}
