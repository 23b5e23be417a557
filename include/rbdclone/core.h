/*
 * rbdclone/core.h: the plain C interface between the libvirt glue (C, built
 * against libvirt's internal headers) and the core (C++20, no libvirt).
 *
 * Rules of this interface:
 *  - Every fallible call returns 0 on success or a negative errno, and fills
 *    an rbdc_status with the error's class and a complete human-readable
 *    message naming the object and the reason.  The glue reports it once.
 *  - Strings passed in are borrowed for the duration of the call only.
 *  - Nothing here ever writes to stdout/stderr, calls exit() or throws.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What kind of failure, so the glue can pick libvirt's error code. */
typedef enum {
    RBDC_OK = 0,
    RBDC_ERR_INTERNAL,          /* VIR_ERR_INTERNAL_ERROR */
    RBDC_ERR_SYSTEM,            /* a Ceph call failed: VIR_ERR_SYSTEM_ERROR */
    RBDC_ERR_NO_VOLUME,         /* VIR_ERR_NO_STORAGE_VOL */
    RBDC_ERR_NO_POOL,           /* VIR_ERR_NO_STORAGE_POOL */
    RBDC_ERR_INVALID_ARG,       /* VIR_ERR_INVALID_ARG */
    RBDC_ERR_OPERATION_INVALID, /* VIR_ERR_OPERATION_INVALID */
    RBDC_ERR_UNSUPPORTED,       /* VIR_ERR_OPERATION_UNSUPPORTED */
    RBDC_ERR_AUTH,              /* VIR_ERR_AUTH_FAILED */
    RBDC_ERR_TIMEOUT,           /* VIR_ERR_OPERATION_TIMEOUT */
    RBDC_ERR_EXISTS,            /* VIR_ERR_STORAGE_VOL_EXIST */
} rbdc_error_kind;

typedef struct {
    int rc;                 /* 0 or negative errno */
    rbdc_error_kind kind;
    char message[1024];
} rbdc_status;

/* Log sink: the glue forwards these to libvirt's logging. */
typedef enum {
    RBDC_LOG_DEBUG = 1,
    RBDC_LOG_INFO = 2,
    RBDC_LOG_WARN = 3,
    RBDC_LOG_ERROR = 4,
} rbdc_log_level;
typedef void (*rbdc_log_fn)(rbdc_log_level level, const char *message);
void rbdc_set_logger(rbdc_log_fn fn);

/* ---- pools ------------------------------------------------------------ */

/* One attribute of a policy element of the pool XML's rbd namespace:
 * <rbd:ELEMENT NAME='VALUE'/> (see plugin/core/ceph/pool_policy.hpp). */
typedef struct {
    const char *element;
    const char *name;
    const char *value;
} rbdc_policy_attr;

/* Validates a pool's policy attributes as a whole; the error
 * (RBDC_ERR_INVALID_ARG) names the element, the attribute and what it
 * accepts. */
int rbdc_policy_check(const rbdc_policy_attr *attrs, size_t n, rbdc_status *st);

/* Everything needed to reach one libvirt pool's Ceph pool. */
typedef struct {
    const char *uuid;        /* libvirt pool UUID, the registry key */
    const char *pool_name;   /* libvirt pool name (for messages) */
    const char *ceph_pool;   /* <source><name> */
    const char *mon_host;    /* "h1:p1,h2,[v6]:p3" as librados wants it */
    const char *auth_user;   /* cephx id ("admin"), NULL when auth is off */
    const char *auth_key;    /* base64 cephx key, NULL when auth is off */
    size_t n_options;        /* <rbd:config_opts>, applied last, in order */
    const char *const *option_names;
    const char *const *option_values;
    size_t n_policy;         /* policy attributes (rbdc_policy_check) */
    const rbdc_policy_attr *policy;
} rbdc_pool_params;

typedef struct rbdc_pool rbdc_pool; /* opaque, reference counted */

/* Connects (reusing a cached cluster connection for the same cluster and
 * identity when one is open), checks that the Ceph pool exists, and
 * registers the pool under params->uuid, replacing an older registration. */
int rbdc_pool_connect(const rbdc_pool_params *params, rbdc_pool **out,
                      rbdc_status *st);
/* The registered pool for uuid with a new reference, or NULL. */
rbdc_pool *rbdc_pool_lookup(const char *uuid);
void rbdc_pool_unref(rbdc_pool *pool);
/* Drops the registration (pool stopped); open references stay valid. */
void rbdc_pool_forget(const char *uuid);

typedef struct {
    uint64_t capacity;   /* cluster raw size */
    uint64_t available;  /* cluster raw free */
    uint64_t allocation; /* bytes stored in this pool */
} rbdc_pool_usage;
int rbdc_pool_stat(rbdc_pool *pool, rbdc_pool_usage *out, rbdc_status *st);

/* ---- volumes ---------------------------------------------------------- */

/* librbd's client-side encryption of a volume (plugin/core/ceph/encryption.hpp). */
typedef enum {
    RBDC_ENCRYPTION_NONE = 0,
    RBDC_ENCRYPTION_LUKS1 = 1,   /* libvirt's format='luks' */
    RBDC_ENCRYPTION_LUKS2 = 2,
} rbdc_encryption_format;

/* The key of an encrypted volume.  NULL where a call takes one: the volume
 * is plain.  The passphrase is borrowed for the call, never logged nor kept
 * past it; the caller wipes it. */
typedef struct {
    rbdc_encryption_format format;
    const char *secret_uuid;           /* the libvirt secret that holds it */
    const unsigned char *passphrase;
    size_t passphrase_size;
} rbdc_encryption;

typedef struct {
    uint64_t capacity;    /* what the guest sees (an encrypted image's header excluded) */
    uint64_t allocation;
    rbdc_encryption_format encryption; /* from the image's record: no key needed */
    char secret_uuid[40];              /* when encrypted: the record's secret ("" if none) */
} rbdc_volume_info;

/* How allocation is computed, as stock libvirt does: by the fast-diff
 * object map when the pool asks for it and the image has a valid one,
 * else as objects * object size. */
typedef enum {
    RBDC_ALLOC_FROM_OBJECTS = 0,
    RBDC_ALLOC_FAST_DIFF = 1,
} rbdc_alloc_mode;

/* Called once per image during a listing; return non-zero to abort. */
typedef int (*rbdc_volume_cb)(const char *name, const rbdc_volume_info *info,
                              void *opaque);
/* Lists every image of the pool.  Images that vanish or time out while
 * being listed are skipped (a concurrent delete is not an error). */
int rbdc_pool_list_volumes(rbdc_pool *pool, rbdc_alloc_mode mode,
                           rbdc_volume_cb cb, void *opaque, rbdc_status *st);

int rbdc_volume_info_get(rbdc_pool *pool, const char *name,
                         rbdc_alloc_mode mode, rbdc_volume_info *out,
                         rbdc_status *st);

/* Fails (RBDC_ERR_INVALID_ARG, naming the reason) for a name a new image
 * must not have: empty, too long, or with '/', '@', ':' or control
 * characters, which RBD paths or qemu would read ambiguously. */
int rbdc_image_name_check(const char *name, rbdc_status *st);

/* Creates a raw image with the pool's default features; with enc, an
 * encrypted one (formatted under a hidden name, renamed when complete) whose
 * guest sees capacity bytes. */
int rbdc_volume_create(rbdc_pool *pool, const char *name, uint64_t capacity,
                       const rbdc_encryption *enc, rbdc_status *st);

/* Removes an image.  A missing image is success (returns 1 instead of 0). */
int rbdc_volume_delete(rbdc_pool *pool, const char *name,
                       int delete_snapshots, rbdc_status *st);

/* capacity is what the guest sees: an encrypted image keeps its header
 * (no key needed, its record knows the header's size). */
int rbdc_volume_resize(rbdc_pool *pool, const char *name, uint64_t capacity,
                       int allow_shrink, rbdc_status *st);

/* Flattens a clone now: copies its parent's data into it so that it no
 * longer depends on the parent (what `virsh vol-resize --allocate` asks
 * for); then releases the parent snapshot if no clone uses it any more.  An
 * image without parent is left as it is. */
int rbdc_volume_flatten(rbdc_pool *pool, const char *name, rbdc_status *st);

typedef enum {
    RBDC_WIPE_ZERO = 0,
    RBDC_WIPE_TRIM = 1,
} rbdc_wipe_mode;
/* enc: the volume's key (an encrypted volume is wiped through it, its
 * header kept). */
int rbdc_volume_wipe(rbdc_pool *pool, const char *name, rbdc_wipe_mode mode,
                     const rbdc_encryption *enc, rbdc_status *st);

/* Calls cb for the UUID of every registered pool whose Ceph pool is
 * ceph_pool (every registered pool when ceph_pool is NULL). */
typedef void (*rbdc_uuid_cb)(const char *uuid, void *opaque);
void rbdc_pool_foreach(const char *ceph_pool, rbdc_uuid_cb cb, void *opaque);

/* ---- creating a volume from an image ------------------------------------ */

/* The image a new volume is made from: exactly one of
 *  - an RBD image of a pool we serve (pool + image),
 *  - an RBD location (<backingStore> path: "pool/image", "pool/image@snap",
 *    "rbd://FSID/POOL/IMAGE/SNAP"), looked up in the destination's cluster,
 *  - a volume of another kind of pool (is_rbd = 0: kind + path). */
typedef struct {
    int is_rbd;
    rbdc_pool *pool;
    const char *image;
    const char *location;
    const char *kind;            /* "file", "block", ... */
    const char *path;
    const char *declared_format; /* NULL or "" when none was declared */
    const rbdc_encryption *encryption; /* an encrypted RBD source's key, else NULL */
} rbdc_source;

/* Creates dst_name in dst from src: a copy-on-write clone whenever that is
 * safe (same cluster by fsid, raw by declaration and by content, layering,
 * a usable snapshot), else a copy of the source's guest-visible bytes into a
 * new raw image (containers converted with qemu; see create_request.hpp).
 * reflink: clone or fail, never copy.  capacity 0 = the source's size; a
 * larger capacity grows the clone, a smaller one is an error.  The decision
 * and its reason are logged at INFO. */
/* dst_enc: the new volume is encrypted with that key: a clone formatted with
 * it where librbd has layered encryption (Ceph >= 18), else an encrypted
 * copy; an encrypted source is always copied (read with its own key). */
int rbdc_volume_create_from(rbdc_pool *dst, const char *dst_name,
                            uint64_t capacity, const rbdc_source *src,
                            const rbdc_encryption *dst_enc,
                            int reflink, rbdc_status *st);

/* ---- vol-upload / vol-download ------------------------------------------ */

/* A vol-upload or vol-download in progress.  The glue's stream driver
 * calls these from libvirtd's event loop; a worker thread of the core
 * moves the bytes to or from the image.  Return values follow libvirt's
 * stream calls: bytes (>= 0; 0 = the end, for recv), -1 = error (st says
 * why), -2 = would block (only when block is 0). */
typedef struct rbdc_stream rbdc_stream;

/* Validate the range (offset past the end, or a length reaching past it, is
 * an error; length 0 = up to the image's end), open the image and start the
 * worker.  Upload streams may carry holes (they read back as zeros); a
 * sparse download sends the image's unallocated ranges and all-zero blocks
 * as holes. */
/* enc: an encrypted volume's key; the stream carries the guest's bytes. */
int rbdc_volume_upload(rbdc_pool *pool, const char *name, uint64_t offset, uint64_t length,
                       const rbdc_encryption *enc, rbdc_stream **out, rbdc_status *st);
int rbdc_volume_download(rbdc_pool *pool, const char *name, uint64_t offset, uint64_t length,
                         int sparse, const rbdc_encryption *enc, rbdc_stream **out,
                         rbdc_status *st);

/* Readable while the next send (upload) or recv/in_data (download) would
 * make progress, or report an error. */
int rbdc_stream_ready_fd(const rbdc_stream *s);
/* Upload: takes up to n bytes.  Bytes past the range's end are taken and
 * dropped, never an error here (libvirt 11.3's daemon crashes when a send
 * fails mid-upload): rbdc_stream_finish reports them. */
int rbdc_stream_send(rbdc_stream *s, const char *data, size_t n, int block, rbdc_status *st);
/* Upload: a hole of len bytes (past the range's end: as for send).
 * Download: skips len bytes of the hole at
 * the head of the stream (after rbdc_stream_in_data reported it). */
int rbdc_stream_send_hole(rbdc_stream *s, uint64_t len, rbdc_status *st);
/* Download: up to n bytes of the data at the head. */
int rbdc_stream_recv(rbdc_stream *s, char *buf, size_t n, int block, rbdc_status *st);
/* Download: *in_data = 1 and the data's length, or 0 and the hole's length
 * (0: the end).  Waits until the worker knows. */
int rbdc_stream_in_data(rbdc_stream *s, int *in_data, uint64_t *length, rbdc_status *st);
/* Upload: waits until every byte is written and flushed and returns the
 * outcome: a write error, or RBDC_ERR_INVALID_ARG when the stream carried
 * more than the range ("carries more than the N bytes allowed ...").
 * Download: stops the worker.  Then frees the stream. */
int rbdc_stream_finish(rbdc_stream *s, rbdc_status *st);
/* Stops the transfer (bytes already written stay) and frees the stream. */
void rbdc_stream_abort(rbdc_stream *s);

#ifdef __cplusplus
}
#endif
