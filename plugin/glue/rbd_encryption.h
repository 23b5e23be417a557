/* Encrypted volumes in the glue: a volume's <encryption> turned into the
 * core's key (its passphrase fetched from libvirt's secret driver), and an
 * image's encryption record turned back into <encryption>. */
#pragma once

#include "storage_conf.h"

#include "rbdclone/core.h"

/* The key of one volume; rbdGlueKeyClear wipes and frees the passphrase. */
typedef struct {
    rbdc_encryption enc;
    char uuid[VIR_UUID_STRING_BUFLEN];
    uint8_t *secret;
    size_t secret_size;
    bool present;   /* false: the volume is plain */
} rbdGlueKey;

/* Fills key from vol's <encryption> (key->present = false when it has none).
 * Refused, with an error naming the volume and the secret: an engine other
 * than librbd, a format other than luks/luks2, not exactly one passphrase
 * secret, a secret that is missing, of another usage type or without a
 * value.  `what` says what the key is for ("create", "upload", ...). */
int rbdGlueKeyOf(virStorageVolDef *vol, const char *what, rbdGlueKey *key);

void rbdGlueKeyClear(rbdGlueKey *key);

/* The key's rbdc_encryption, or NULL for a plain volume. */
const rbdc_encryption *rbdGlueKeyEnc(const rbdGlueKey *key);

/* vol->target.encryption as the image's record says (replaced; removed for
 * a plain image). */
void rbdGlueSetEncryption(virStorageVolDef *vol, const rbdc_volume_info *info);
