/*
 * rbd_backend.c: libvirt's storage backend callbacks for RBD pools.
 *
 * The only file that sees libvirt's storage structures.  Each callback
 * checks its flags, turns libvirt's structs into the plain C interface of
 * rbdclone/core.h, calls the core, and reports a failure exactly once.
 */
#include <config.h>

#include "datatypes.h"
#include "internal.h"
#include "storage_backend.h"
#include "storage_conf.h"
#include "storage_driver.h"
#include "storage_source_conf.h"
#include "storage_util.h"
#include "viralloc.h"
#include "virbuffer.h"
#include "virerror.h"
#include "virfile.h"

#include "viridentity.h"
#include "virlog.h"
#include "virsecret.h"
#include "virsecureerase.h"
#include "virsocketaddr.h"
#include "viruuid.h"

#include "rbd_encryption.h"
#include "rbd_namespace.h"
#include "rbd_report.h"
#include "rbd_stream.h"
#include "rbdclone/core.h"

#define VIR_FROM_THIS VIR_FROM_STORAGE

VIR_LOG_INIT("storage.storage_backend_rbd");

/* ---- plumbing --------------------------------------------------------- */

static virLogPriority
rbdGlueLogPriority(rbdc_log_level level)
{
    switch (level) {
    case RBDC_LOG_DEBUG: return VIR_LOG_DEBUG;
    case RBDC_LOG_INFO: return VIR_LOG_INFO;
    case RBDC_LOG_WARN: return VIR_LOG_WARN;
    case RBDC_LOG_ERROR: return VIR_LOG_ERROR;
    }
    return VIR_LOG_ERROR;
}

/* What VIR_DEBUG, VIR_INFO, VIR_WARN and VIR_ERROR expand to, at the core's level. */
static void
rbdGlueLog(rbdc_log_level level, const char *msg)
{
    virLogMessage(&virLogSelf, rbdGlueLogPriority(level), __FILE__, __LINE__, __func__, NULL, "%s", msg);
}

static void
rbdGluePoolUUID(virStoragePoolDef *def, char *uuid)
{
    virUUIDFormat(def->uuid, uuid);
}

/* "h1:p1,h2,[v6]:p3" from the pool's <host> elements. */
static char *
rbdGlueMonHost(virStoragePoolSource *source)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    size_t i;

    for (i = 0; i < source->nhost; i++) {
        const char *name = source->hosts[i].name;
        int port = source->hosts[i].port;

        if (!name) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                           _("received malformed monitor, check the XML definition"));
            return NULL;
        }
        if (!port)
            virBufferAsprintf(&buf, "%s,", name);
        else if (virSocketAddrNumericFamily(name) == AF_INET6)
            virBufferAsprintf(&buf, "[%s]:%d,", name, port);
        else
            virBufferAsprintf(&buf, "%s:%d,", name, port);
    }
    virBufferTrim(&buf, ",");
    return virBufferContentAndReset(&buf);
}

/* Connects the pool (new registration).  Caller holds the pool lock. */
static rbdc_pool *
rbdGlueConnect(virStoragePoolDef *def)
{
    virStorageAuthDef *auth = def->source.auth;
    rbdGlueConfigOptions *opts = def->namespaceData;
    g_autofree char *mon_host = NULL;
    g_autofree char *key = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    rbdc_pool_params params = { 0 };
    rbdc_status st;
    rbdc_pool *pool = NULL;
    int rc;

    if (!(mon_host = rbdGlueMonHost(&def->source)))
        return NULL;

    if (auth) {
        VIR_IDENTITY_AUTORESTORE virIdentity *oldident = NULL;
        g_autoptr(virConnect) conn = NULL;
        g_autofree uint8_t *secret = NULL;
        size_t secret_size = 0;

        if (!(oldident = virIdentityElevateCurrent()))
            return NULL;
        if (!(conn = virGetConnectSecret()))
            return NULL;
        if (virSecretGetSecretString(conn, &auth->seclookupdef,
                                     VIR_SECRET_USAGE_TYPE_CEPH,
                                     &secret, &secret_size) < 0)
            return NULL;
        key = g_base64_encode(secret, secret_size);
        virSecureErase(secret, secret_size);
        params.auth_user = auth->username;
        params.auth_key = key;
    }

    rbdGluePoolUUID(def, uuid);
    params.uuid = uuid;
    params.pool_name = def->name;
    params.ceph_pool = def->source.name;
    params.mon_host = mon_host;
    if (opts) {
        params.n_options = opts->noptions;
        params.option_names = (const char *const *)opts->names;
        params.option_values = (const char *const *)opts->values;
        if (opts->noptions > 0)
            VIR_WARN("Storage Pool name='%s' uuid='%s' is tainted by custom "
                     "config_opts from XML", def->name, uuid);
        params.n_policy = opts->npolicy;
        params.policy = opts->policy;
    }

    rc = rbdc_pool_connect(&params, &pool, &st);
    virSecureEraseString(key);
    if (rc < 0) {
        rbdGlueReport(&st);
        return NULL;
    }
    return pool;
}

/* The pool's core handle: the registered one, or a new connection (e.g.
 * after a daemon restart).  Caller holds the pool lock; the result must be
 * released with rbdc_pool_unref. */
static rbdc_pool *
rbdGluePool(virStoragePoolObj *obj)
{
    virStoragePoolDef *def = virStoragePoolObjGetDef(obj);
    char uuid[VIR_UUID_STRING_BUFLEN];
    rbdc_pool *pool;

    rbdGluePoolUUID(def, uuid);
    if ((pool = rbdc_pool_lookup(uuid)))
        return pool;
    return rbdGlueConnect(def);
}

/* Same, for callbacks that run with the pool unlocked. */
static rbdc_pool *
rbdGluePoolUnlocked(virStoragePoolObj *obj)
{
    rbdc_pool *pool;

    virObjectLock(obj);
    pool = rbdGluePool(obj);
    virObjectUnlock(obj);
    return pool;
}

static rbdc_alloc_mode
rbdGlueAllocMode(virStoragePoolDef *def)
{
    if (def->refresh &&
        def->refresh->volume.allocation == VIR_STORAGE_VOL_DEF_REFRESH_ALLOCATION_DEFAULT)
        return RBDC_ALLOC_FAST_DIFF;
    return RBDC_ALLOC_FROM_OBJECTS;
}

/* Key and path are "cephpool/image", as the stock backend sets them, so
 * domain XML that refers to pool/image keeps working. */
static void
rbdGlueSetVolIdentity(virStoragePoolDef *def, virStorageVolDef *vol)
{
    vol->type = VIR_STORAGE_VOL_NETWORK;
    vol->target.format = VIR_STORAGE_FILE_RAW;
    g_free(vol->target.path);
    vol->target.path = g_strdup_printf("%s/%s", def->source.name, vol->name);
    g_free(vol->key);
    vol->key = g_strdup_printf("%s/%s", def->source.name, vol->name);
}

/* True when vol is one of this pool's volumes (pointer identity: libvirt
 * adds a new volume to its pool before building it).  Pool locked. */
static bool
rbdGlueOwnsVol(virStoragePoolObj *obj, virStorageVolDef *vol)
{
    return virStorageVolDefFindByName(obj, vol->name) == vol;
}

/* ---- pool callbacks --------------------------------------------------- */

/* Pool locked.  Keeps an active pool active across daemon restarts; a
 * cluster that is gone makes the following refresh fail and the driver
 * then deactivates the pool. */
static int
rbdGlueCheckPool(virStoragePoolObj *obj, bool *active)
{
    *active = virStoragePoolObjIsActive(obj);
    return 0;
}

/* Pool locked.  Connects and registers; errors (monitor unreachable, wrong
 * key, missing Ceph pool) are reported here, at pool-start. */
static int
rbdGlueStartPool(virStoragePoolObj *obj)
{
    rbdc_pool *pool = rbdGlueConnect(virStoragePoolObjGetDef(obj));

    if (!pool)
        return -1;
    rbdc_pool_unref(pool);
    return 0;
}

/* Pool locked. */
static int
rbdGlueStopPool(virStoragePoolObj *obj)
{
    char uuid[VIR_UUID_STRING_BUFLEN];

    rbdGluePoolUUID(virStoragePoolObjGetDef(obj), uuid);
    rbdc_pool_forget(uuid);
    return 0;
}

typedef struct {
    virStoragePoolObj *obj;
    virStoragePoolDef *def;
} rbdGlueRefreshCtx;

static int
rbdGlueAddVol(const char *name, const rbdc_volume_info *info, void *opaque)
{
    rbdGlueRefreshCtx *ctx = opaque;
    g_autoptr(virStorageVolDef) vol = g_new0(virStorageVolDef, 1);

    vol->name = g_strdup(name);
    vol->target.capacity = info->capacity;
    vol->target.allocation = info->allocation;
    rbdGlueSetEncryption(vol, info);
    rbdGlueSetVolIdentity(ctx->def, vol);
    if (virStoragePoolObjAddVol(ctx->obj, vol) < 0)
        return -1;
    vol = NULL;
    return 0;
}

/* Pool locked. */
static int
rbdGlueRefreshPool(virStoragePoolObj *obj)
{
    virStoragePoolDef *def = virStoragePoolObjGetDef(obj);
    rbdGlueRefreshCtx ctx = { obj, def };
    rbdc_pool_usage usage;
    rbdc_status st;
    rbdc_pool *pool;
    int ret = -1;

    if (!(pool = rbdGluePool(obj)))
        return -1;

    if (rbdc_pool_stat(pool, &usage, &st) < 0) {
        rbdGlueReport(&st);
        goto cleanup;
    }
    def->capacity = usage.capacity;
    def->available = usage.available;
    def->allocation = usage.allocation;

    if (rbdc_pool_list_volumes(pool, rbdGlueAllocMode(def), rbdGlueAddVol, &ctx, &st) < 0) {
        if (virGetLastErrorCode() == VIR_ERR_OK)
            rbdGlueReport(&st);
        goto cleanup;
    }
    VIR_DEBUG("Found %zu images in RBD pool %s",
              virStoragePoolObjGetVolumesCount(obj), def->source.name);
    ret = 0;

 cleanup:
    rbdc_pool_unref(pool);
    return ret;
}

/* ---- volume callbacks ------------------------------------------------- */

/* Pool locked.  Fills key and path; creates nothing. */
static int
rbdGlueCreateVol(virStoragePoolObj *obj, virStorageVolDef *vol)
{
    rbdc_status st;

    if (rbdc_image_name_check(vol->name, &st) < 0) {
        rbdGlueReport(&st);
        return -1;
    }
    if (vol->target.format != VIR_STORAGE_FILE_RAW) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("only RAW volumes are supported by this storage pool"));
        return -1;
    }
    rbdGlueSetVolIdentity(virStoragePoolObjGetDef(obj), vol);
    return 0;
}

static const char *
rbdGlueDeclaredFormat(int format)
{
    if (format <= VIR_STORAGE_FILE_AUTO)
        return NULL; /* none declared */
    return virStorageFileFormatTypeToString(format);
}

/* Runs the core's create-from (the new volume encrypted when its XML says
 * so) and reports its failure. */
static int
rbdGlueCreateFrom(virStorageVolDef *newvol, rbdc_pool *dst,
                  const rbdc_source *src, bool reflink)
{
    rbdGlueKey key;
    rbdc_status st;
    int rc;

    if (rbdGlueKeyOf(newvol, "create", &key) < 0)
        return -1;
    rc = rbdc_volume_create_from(dst, newvol->name, newvol->target.capacity,
                                 src, rbdGlueKeyEnc(&key), reflink, &st);
    rbdGlueKeyClear(&key);
    return rbdGlueCheck(rc, &st);
}

/* vol-create with <backingStore><path>: the path names an RBD image
 * ("pool/image", "pool/image@snap", "rbd://FSID/POOL/IMAGE/SNAP") or, when
 * absolute, a file.  Pool unlocked. */
static int
rbdGlueBuildVolFromBackingStore(virStoragePoolObj *obj, virStorageVolDef *vol)
{
    virStorageSource *backing = vol->target.backingStore;
    rbdc_source src = { 0 };
    rbdc_pool *pool;
    int ret;

    /* An absolute path is a file of this host; anything else names an RBD image. */
    if (g_path_is_absolute(backing->path)) {
        src.is_rbd = 0;
        src.kind = "file";
        src.path = backing->path;
    } else {
        src.is_rbd = 1;
        src.location = backing->path;
    }
    src.declared_format = rbdGlueDeclaredFormat(backing->format);

    if (!(pool = rbdGluePoolUnlocked(obj)))
        return -1;
    ret = rbdGlueCreateFrom(vol, pool, &src, false);
    rbdc_pool_unref(pool);
    return ret;
}

typedef struct {
    virStorageVolDef *vol;
    rbdc_pool *found;
} rbdGlueSourceSearch;

static void
rbdGlueCheckSourcePool(const char *uuidstr, void *opaque)
{
    rbdGlueSourceSearch *search = opaque;
    unsigned char uuid[VIR_UUID_BUFLEN];
    virStoragePoolObj *obj;

    if (search->found || virUUIDParse(uuidstr, uuid) < 0)
        return;
    /* Returns the pool locked and referenced. */
    if (!(obj = virStoragePoolObjFindPoolByUUID(uuid)))
        return;
    if (virStorageVolDefFindByName(obj, search->vol->name) == search->vol)
        search->found = rbdGluePool(obj);
    virStoragePoolObjEndAPI(&obj);
}

/* The RBD pool we serve that holds vol, or NULL when vol belongs to a pool
 * of another type.  No pool lock held by the caller. */
static rbdc_pool *
rbdGlueFindSourcePool(virStorageVolDef *vol)
{
    rbdGlueSourceSearch search = { vol, NULL };
    g_autofree char *ceph_pool = NULL;
    const char *slash;

    /* Our volumes' keys are "cephpool/image": only those pools can hold it. */
    if (vol->type != VIR_STORAGE_VOL_NETWORK || !vol->key || !(slash = strchr(vol->key, '/')))
        return NULL;
    ceph_pool = g_strndup(vol->key, slash - vol->key);
    rbdc_pool_foreach(ceph_pool, rbdGlueCheckSourcePool, &search);
    return search.found;
}

/* Pool unlocked (async job).  Creates the image; on failure nothing is
 * left behind. */
static int
rbdGlueBuildVol(virStoragePoolObj *obj, virStorageVolDef *vol, unsigned int flags)
{
    rbdGlueKey key;
    rbdc_status st;
    rbdc_pool *pool;
    int rc;

    virCheckFlags(VIR_STORAGE_VOL_CREATE_VALIDATE, -1);

    if (vol->target.backingStore && vol->target.backingStore->path)
        return rbdGlueBuildVolFromBackingStore(obj, vol);
    if (!vol->target.capacity) {
        virReportError(VIR_ERR_NO_SUPPORT, "%s",
                       _("volume capacity required for this storage pool"));
        return -1;
    }
    if (vol->target.format != VIR_STORAGE_FILE_RAW) {
        virReportError(VIR_ERR_NO_SUPPORT, "%s",
                       _("only RAW volumes are supported by this storage pool"));
        return -1;
    }

    if (!(pool = rbdGluePoolUnlocked(obj)))
        return -1;
    if (rbdGlueKeyOf(vol, "create", &key) < 0) {
        rbdc_pool_unref(pool);
        return -1;
    }
    rc = rbdc_volume_create(pool, vol->name, vol->target.capacity, rbdGlueKeyEnc(&key), &st);
    rbdGlueKeyClear(&key);
    rbdc_pool_unref(pool);
    return rbdGlueCheck(rc, &st);
}

/* Pool unlocked (async job), and so is the source's pool.  The driver
 * passes (pool, newvol, sourcevol) although storage_backend.h names them the
 * other way round.  The source may be a volume of any pool type. */
static int
rbdGlueBuildVolFrom(virStoragePoolObj *obj, virStorageVolDef *newvol,
                    virStorageVolDef *origvol, unsigned int flags)
{
    rbdc_source src = { 0 };
    rbdGlueKey src_key = { 0 };
    rbdc_pool *dst;
    rbdc_pool *src_pool = NULL;
    bool same_pool;
    int ret = -1;

    virCheckFlags(VIR_STORAGE_VOL_CREATE_REFLINK |
                  VIR_STORAGE_VOL_CREATE_VALIDATE, -1);

    virObjectLock(obj);
    same_pool = rbdGlueOwnsVol(obj, origvol);
    dst = rbdGluePool(obj);
    virObjectUnlock(obj);
    if (!dst)
        return -1;

    if (same_pool)
        src_pool = rbdGluePoolUnlocked(obj);
    else
        src_pool = rbdGlueFindSourcePool(origvol);

    if (src_pool) {
        src.is_rbd = 1;
        src.pool = src_pool;
        src.image = origvol->name;
        /* An encrypted source is read with its own key. */
        if (rbdGlueKeyOf(origvol, "read", &src_key) < 0)
            goto cleanup;
        src.encryption = rbdGlueKeyEnc(&src_key);
    } else {
        src.is_rbd = 0;
        src.kind = virStorageVolTypeToString(origvol->type);
        src.path = origvol->target.path ? origvol->target.path : origvol->name;
        src.declared_format = rbdGlueDeclaredFormat(origvol->target.format);
    }
    ret = rbdGlueCreateFrom(newvol, dst, &src,
                            !!(flags & VIR_STORAGE_VOL_CREATE_REFLINK));
 cleanup:
    rbdGlueKeyClear(&src_key);
    if (src_pool)
        rbdc_pool_unref(src_pool);
    rbdc_pool_unref(dst);
    return ret;
}

/* Pool locked.  The driver also calls this on the *source* volume of
 * vol-create-from, which may belong to any pool: a volume that is not ours
 * is left as its own backend described it. */
static int
rbdGlueRefreshVol(virStoragePoolObj *obj, virStorageVolDef *vol)
{
    virStoragePoolDef *def = virStoragePoolObjGetDef(obj);
    rbdc_volume_info info;
    rbdc_status st;
    rbdc_pool *pool;
    int rc;

    if (!rbdGlueOwnsVol(obj, vol)) {
        VIR_DEBUG("not refreshing volume '%s' (key '%s'): it belongs to another pool",
                  vol->name, NULLSTR(vol->key));
        return 0;
    }
    if (!(pool = rbdGluePool(obj)))
        return -1;
    rc = rbdc_volume_info_get(pool, vol->name, rbdGlueAllocMode(def), &info, &st);
    rbdc_pool_unref(pool);
    if (rbdGlueCheck(rc, &st) < 0)
        return -1;
    vol->target.capacity = info.capacity;
    vol->target.allocation = info.allocation;
    rbdGlueSetEncryption(vol, &info);
    rbdGlueSetVolIdentity(def, vol);
    return 0;
}

/* Pool locked.  A missing image is success: the driver calls this to undo
 * a failed create, and a volume whose delete fails stays listed. */
static int
rbdGlueDeleteVol(virStoragePoolObj *obj, virStorageVolDef *vol, unsigned int flags)
{
    rbdc_status st;
    rbdc_pool *pool;
    int rc;

    virCheckFlags(VIR_STORAGE_VOL_DELETE_ZEROED |
                  VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS, -1);

    if (flags & VIR_STORAGE_VOL_DELETE_ZEROED)
        VIR_WARN("%s", "This storage backend does not support zeroed removal of volumes");

    if (!(pool = rbdGluePool(obj)))
        return -1;
    rc = rbdc_volume_delete(pool, vol->name,
                            !!(flags & VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS), &st);
    rbdc_pool_unref(pool);
    return rbdGlueCheck(rc, &st);
}

/* Pool locked.  The driver has already applied DELTA and checked that a
 * smaller capacity comes with SHRINK. */
static int
rbdGlueResizeVol(virStoragePoolObj *obj, virStorageVolDef *vol,
                 unsigned long long capacity, unsigned int flags)
{
    rbdc_status st;
    rbdc_pool *pool;
    int rc;

    virCheckFlags(VIR_STORAGE_VOL_RESIZE_ALLOCATE |
                  VIR_STORAGE_VOL_RESIZE_SHRINK, -1);

    if (!(pool = rbdGluePool(obj)))
        return -1;
    rc = 0;
    if (capacity != vol->target.capacity || !(flags & VIR_STORAGE_VOL_RESIZE_ALLOCATE))
        rc = rbdc_volume_resize(pool, vol->name, capacity,
                                !!(flags & VIR_STORAGE_VOL_RESIZE_SHRINK), &st);
    /* RBD images are thin: "allocate" means giving a clone its own copy of
     * every block it still reads from its parent, i.e. flattening it.  That
     * takes as long as copying the data, so the pool is unlocked meanwhile,
     * the volume and pool held the way the driver holds them for a wipe. */
    if (rc >= 0 && (flags & VIR_STORAGE_VOL_RESIZE_ALLOCATE)) {
        virStoragePoolObjIncrAsyncjobs(obj);
        vol->in_use++;
        virObjectUnlock(obj);
        rc = rbdc_volume_flatten(pool, vol->name, &st);
        virObjectLock(obj);
        vol->in_use--;
        virStoragePoolObjDecrAsyncjobs(obj);
    }
    rbdc_pool_unref(pool);
    return rbdGlueCheck(rc, &st);
}

/* Pool unlocked (async job). */
static int
rbdGlueWipeVol(virStoragePoolObj *obj, virStorageVolDef *vol,
               unsigned int algorithm, unsigned int flags)
{
    rbdc_wipe_mode mode;
    rbdGlueKey key;
    rbdc_status st;
    rbdc_pool *pool;
    int rc;

    virCheckFlags(0, -1);

    switch ((virStorageVolWipeAlgorithm) algorithm) {
    case VIR_STORAGE_VOL_WIPE_ALG_ZERO:
        mode = RBDC_WIPE_ZERO;
        break;
    case VIR_STORAGE_VOL_WIPE_ALG_TRIM:
        mode = RBDC_WIPE_TRIM;
        break;
    case VIR_STORAGE_VOL_WIPE_ALG_NNSA:
    case VIR_STORAGE_VOL_WIPE_ALG_DOD:
    case VIR_STORAGE_VOL_WIPE_ALG_BSI:
    case VIR_STORAGE_VOL_WIPE_ALG_GUTMANN:
    case VIR_STORAGE_VOL_WIPE_ALG_SCHNEIER:
    case VIR_STORAGE_VOL_WIPE_ALG_PFITZNER7:
    case VIR_STORAGE_VOL_WIPE_ALG_PFITZNER33:
    case VIR_STORAGE_VOL_WIPE_ALG_RANDOM:
    case VIR_STORAGE_VOL_WIPE_ALG_LAST:
    default:
        virReportError(VIR_ERR_INVALID_ARG, _("unsupported algorithm %d"), algorithm);
        return -1;
    }

    if (rbdGlueKeyOf(vol, "wipe", &key) < 0)
        return -1;
    if (!(pool = rbdGluePoolUnlocked(obj))) {
        rbdGlueKeyClear(&key);
        return -1;
    }
    rc = rbdc_volume_wipe(pool, vol->name, mode, rbdGlueKeyEnc(&key), &st);
    rbdGlueKeyClear(&key);
    rbdc_pool_unref(pool);
    return rbdGlueCheck(rc, &st);
}

/* ---- vol-upload / vol-download ------------------------------------------ */

/* Pool unlocked.  The stream is ours (rbd_stream.c): libvirt's fdstream
 * needs a file descriptor, and a seekable one to carry holes. */
static int
rbdGlueTransfer(virStoragePoolObj *obj, virStorageVolDef *vol, virStreamPtr stream,
                unsigned long long offset, unsigned long long len, unsigned int flags, bool upload)
{
    bool sparse;
    rbdGlueKey key;
    rbdc_stream *core = NULL;
    rbdc_status st;
    rbdc_pool *pool;
    int rc;

    if (upload) {
        virCheckFlags(VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM, -1);
        sparse = !!(flags & VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM);
    } else {
        virCheckFlags(VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM, -1);
        sparse = !!(flags & VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM);
    }
    if (rbdGlueKeyOf(vol, upload ? "upload to" : "download from", &key) < 0)
        return -1;
    if (!(pool = rbdGluePoolUnlocked(obj))) {
        rbdGlueKeyClear(&key);
        return -1;
    }
    rc = upload ? rbdc_volume_upload(pool, vol->name, offset, len, rbdGlueKeyEnc(&key), &core, &st)
                : rbdc_volume_download(pool, vol->name, offset, len, sparse, rbdGlueKeyEnc(&key),
                                       &core, &st);
    rbdGlueKeyClear(&key);
    rbdc_pool_unref(pool);
    if (rbdGlueCheck(rc, &st) < 0)
        return -1;
    return rbdGlueStreamOpen(stream, core, upload);
}

static int
rbdGlueUploadVol(virStoragePoolObj *obj, virStorageVolDef *vol, virStreamPtr stream,
                 unsigned long long offset, unsigned long long len, unsigned int flags)
{
    return rbdGlueTransfer(obj, vol, stream, offset, len, flags, true);
}

static int
rbdGlueDownloadVol(virStoragePoolObj *obj, virStorageVolDef *vol, virStreamPtr stream,
                   unsigned long long offset, unsigned long long len, unsigned int flags)
{
    return rbdGlueTransfer(obj, vol, stream, offset, len, flags, false);
}

/* ---- registration ----------------------------------------------------- */

static virStorageBackend rbdGlueBackend = {
    .type = VIR_STORAGE_POOL_RBD,

    .checkPool = rbdGlueCheckPool,
    .startPool = rbdGlueStartPool,
    .refreshPool = rbdGlueRefreshPool,
    .stopPool = rbdGlueStopPool,
    .createVol = rbdGlueCreateVol,
    .buildVol = rbdGlueBuildVol,
    .buildVolFrom = rbdGlueBuildVolFrom,
    .refreshVol = rbdGlueRefreshVol,
    .deleteVol = rbdGlueDeleteVol,
    .resizeVol = rbdGlueResizeVol,
    .wipeVol = rbdGlueWipeVol,
    .uploadVol = rbdGlueUploadVol,
    .downloadVol = rbdGlueDownloadVol,
};

int virStorageBackendRBDRegister(void) __attribute__((visibility("default")));

int
virStorageBackendRBDRegister(void)
{
    rbdc_set_logger(rbdGlueLog);
    if (virStorageBackendRegister(&rbdGlueBackend) < 0)
        return -1;
    return virStorageBackendNamespaceInit(VIR_STORAGE_POOL_RBD, &rbdGlueXMLNamespace);
}
