#include <config.h>

#include <fcntl.h>
#include <unistd.h>

#include "datatypes.h"
#include "driver.h"
#include "internal.h"
#include "virerror.h"
#include "virfdstream.h"
#include "virfile.h"
#include "virthread.h"

#include "rbd_report.h"
#include "rbd_stream.h"

#define VIR_FROM_THIS VIR_FROM_STORAGE

/* The state of a stream opened by rbdGlueStreamOpen.
 *
 * libvirt's storage driver treats every upload stream as an fdstream: after
 * uploadVol it attaches its "refresh the pool when the stream closes"
 * callback with virFDStreamSetInternalCloseCb, which locks st->privateData
 * as an fdstream object.  So privateData stays a real fdstream (over
 * /dev/null, never read or written), and our state is found through a
 * table keyed by the stream.  Closing our stream closes the fdstream too,
 * which runs that callback.
 *
 * The event callback may close the stream (libvirtd's callback finishes or
 * aborts it), so the handler marks itself dispatching and the close leaves
 * the freeing to it, as fdstream does. */
typedef struct {
    virMutex lock;
    rbdc_stream *core;
    virStreamDriver *fdDriver; /* the fdstream's, for closing it */
    bool upload;
    int watch; /* 0: no callback */
    int timer;
    int events;
    virStreamEventCallback cb;
    void *opaque;
    virFreeCallback ff;
    bool dispatching;
    bool cbRemoved;
    bool closed;
} rbdGlueStream;

static virMutex rbdGlueStreamsLock = VIR_MUTEX_INITIALIZER;
static GHashTable *rbdGlueStreams; /* virStreamPtr -> rbdGlueStream * */

static void
rbdGlueStreamFree(rbdGlueStream *gs)
{
    virMutexDestroy(&gs->lock);
    g_free(gs);
}

static rbdGlueStream *
rbdGlueStreamLookup(virStreamPtr st)
{
    rbdGlueStream *gs = NULL;

    virMutexLock(&rbdGlueStreamsLock);
    if (rbdGlueStreams)
        gs = g_hash_table_lookup(rbdGlueStreams, st);
    virMutexUnlock(&rbdGlueStreamsLock);
    return gs;
}

static void
rbdGlueStreamRegister(virStreamPtr st, rbdGlueStream *gs)
{
    virMutexLock(&rbdGlueStreamsLock);
    if (!rbdGlueStreams)
        rbdGlueStreams = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_hash_table_insert(rbdGlueStreams, st, gs);
    virMutexUnlock(&rbdGlueStreamsLock);
}

static void
rbdGlueStreamUnregister(virStreamPtr st)
{
    virMutexLock(&rbdGlueStreamsLock);
    g_hash_table_remove(rbdGlueStreams, st);
    virMutexUnlock(&rbdGlueStreamsLock);
}

static rbdGlueStream *
rbdGlueStreamGet(virStreamPtr st)
{
    rbdGlueStream *gs = rbdGlueStreamLookup(st);

    if (!gs)
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s", _("stream is not open"));
    return gs;
}

/* Events.  libvirtd asks for the stream's own direction (READABLE for a
 * download, WRITABLE for an upload) when it wants data moved: that is our
 * readiness fd, watched only while asked for (it stays readable while
 * progress is possible and would spin the loop otherwise).  It also asks
 * for WRITABLE on a download to process the client's finish or abort
 * messages: nothing to wait for, so a zero timer dispatches it at once. */
static int
rbdGlueStreamDirection(const rbdGlueStream *gs)
{
    return gs->upload ? VIR_STREAM_EVENT_WRITABLE : VIR_STREAM_EVENT_READABLE;
}

static int
rbdGlueStreamOtherDirection(const rbdGlueStream *gs)
{
    return (VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_WRITABLE) & ~rbdGlueStreamDirection(gs);
}

static void
rbdGlueStreamWatchEvents(rbdGlueStream *gs, int events)
{
    gs->events = events;
    virEventUpdateHandle(gs->watch, (events & rbdGlueStreamDirection(gs)) ? VIR_EVENT_HANDLE_READABLE : 0);
    virEventUpdateTimeout(gs->timer, (events & rbdGlueStreamOtherDirection(gs)) ? 0 : -1);
}

/* Calls the stream's callback with what it asked for of its own direction
 * (the readiness fd fired) or of the other one (the timer fired). */
static void
rbdGlueStreamDispatch(virStreamPtr st, bool own)
{
    rbdGlueStream *gs = rbdGlueStreamLookup(st);
    virStreamEventCallback cb;
    virFreeCallback ff;
    void *cbopaque;
    int want;
    bool closed;

    if (!gs)
        return;
    virMutexLock(&gs->lock);
    want = gs->events & (own ? rbdGlueStreamDirection(gs) : rbdGlueStreamOtherDirection(gs));
    if (!gs->cb || !want) {
        virMutexUnlock(&gs->lock);
        return;
    }
    cb = gs->cb;
    cbopaque = gs->opaque;
    ff = gs->ff;
    gs->dispatching = true;
    virMutexUnlock(&gs->lock);

    cb(st, want, cbopaque);

    virMutexLock(&gs->lock);
    gs->dispatching = false;
    if (gs->cbRemoved && ff)
        ff(cbopaque);
    closed = gs->closed;
    virMutexUnlock(&gs->lock);
    if (closed)
        rbdGlueStreamFree(gs);
}

static void
rbdGlueStreamFdEvent(int watch G_GNUC_UNUSED, int fd G_GNUC_UNUSED,
                     int events G_GNUC_UNUSED, void *opaque)
{
    rbdGlueStreamDispatch(opaque, true);
}

static void
rbdGlueStreamTimerEvent(int timer G_GNUC_UNUSED, void *opaque)
{
    rbdGlueStreamDispatch(opaque, false);
}

static void
rbdGlueStreamUnref(void *opaque)
{
    virObjectUnref(opaque);
}

static int
rbdGlueStreamAddCallback(virStreamPtr st, int events, virStreamEventCallback cb,
                         void *opaque, virFreeCallback ff)
{
    rbdGlueStream *gs = rbdGlueStreamGet(st);
    int ret = -1;

    if (!gs)
        return -1;
    virMutexLock(&gs->lock);
    if (gs->watch != 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("stream already has a callback registered"));
        goto cleanup;
    }
    if ((gs->watch = virEventAddHandle(rbdc_stream_ready_fd(gs->core), 0, rbdGlueStreamFdEvent,
                                       st, rbdGlueStreamUnref)) < 0) {
        gs->watch = 0;
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot register file watch on stream"));
        goto cleanup;
    }
    virStreamRef(st);
    if ((gs->timer = virEventAddTimeout(-1, rbdGlueStreamTimerEvent, st, rbdGlueStreamUnref)) < 0) {
        virEventRemoveHandle(gs->watch);
        gs->watch = 0;
        gs->timer = 0;
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot register a timer for the stream"));
        goto cleanup;
    }
    virStreamRef(st);
    gs->cbRemoved = false;
    gs->cb = cb;
    gs->opaque = opaque;
    gs->ff = ff;
    rbdGlueStreamWatchEvents(gs, events);
    ret = 0;
 cleanup:
    virMutexUnlock(&gs->lock);
    return ret;
}

/* The stream locked, if a callback is registered on it; else NULL and an
 * error. */
static rbdGlueStream *
rbdGlueStreamLockWatched(virStreamPtr st)
{
    rbdGlueStream *gs = rbdGlueStreamGet(st);

    if (!gs)
        return NULL;
    virMutexLock(&gs->lock);
    if (gs->watch == 0) {
        virMutexUnlock(&gs->lock);
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("stream does not have a callback registered"));
        return NULL;
    }
    return gs;
}

static int
rbdGlueStreamUpdateCallback(virStreamPtr st, int events)
{
    rbdGlueStream *gs = rbdGlueStreamLockWatched(st);

    if (!gs)
        return -1;
    rbdGlueStreamWatchEvents(gs, events);
    virMutexUnlock(&gs->lock);
    return 0;
}

/* Caller holds gs->lock. */
static void
rbdGlueStreamRemoveWatchLocked(rbdGlueStream *gs)
{
    if (gs->watch == 0)
        return;
    virEventRemoveHandle(gs->watch);
    virEventRemoveTimeout(gs->timer);
    if (gs->dispatching)
        gs->cbRemoved = true;
    else if (gs->ff)
        gs->ff(gs->opaque);
    gs->watch = 0;
    gs->timer = 0;
    gs->cb = NULL;
    gs->ff = NULL;
    gs->opaque = NULL;
    gs->events = 0;
}

static int
rbdGlueStreamRemoveCallback(virStreamPtr st)
{
    rbdGlueStream *gs = rbdGlueStreamLockWatched(st);

    if (!gs)
        return -1;
    rbdGlueStreamRemoveWatchLocked(gs);
    virMutexUnlock(&gs->lock);
    return 0;
}

static int
rbdGlueStreamClose(virStreamPtr st, bool abort)
{
    rbdGlueStream *gs = rbdGlueStreamLookup(st);
    rbdc_status status;
    int ret = 0;

    if (!gs)
        return 0;
    rbdGlueStreamUnregister(st);
    virMutexLock(&gs->lock);
    rbdGlueStreamRemoveWatchLocked(gs);
    virMutexUnlock(&gs->lock);

    /* An upload's finish waits for its last writes, as fdstream's waits
     * for its I/O thread. */
    if (abort) {
        rbdc_stream_abort(gs->core);
    } else if (rbdc_stream_finish(gs->core, &status) < 0) {
        rbdGlueReport(&status);
        ret = -1;
    }
    gs->core = NULL;

    /* The fdstream underneath: its close runs the storage driver's
     * callback (a pool refresh after an upload) and frees it. */
    st->driver = gs->fdDriver;
    if (abort)
        st->driver->streamAbort(st);
    else if (st->driver->streamFinish(st) < 0)
        ret = -1;

    virMutexLock(&gs->lock);
    if (gs->dispatching) {
        gs->closed = true;
        virMutexUnlock(&gs->lock);
    } else {
        virMutexUnlock(&gs->lock);
        rbdGlueStreamFree(gs);
    }
    return ret;
}

static int
rbdGlueStreamFinish(virStreamPtr st)
{
    return rbdGlueStreamClose(st, false);
}

static int
rbdGlueStreamAbort(virStreamPtr st)
{
    return rbdGlueStreamClose(st, true);
}

static bool
rbdGlueStreamBlocking(virStreamPtr st)
{
    return !(st->flags & VIR_STREAM_NONBLOCK);
}

/* Bytes past the upload's range never fail a send (nor a hole): libvirt
 * 11.3's daemon crashes when a stream driver refuses data in the middle
 * of an upload.  The core drops them and the finish reports the error. */
static int
rbdGlueStreamSend(virStreamPtr st, const char *data, size_t nbytes)
{
    rbdGlueStream *gs = rbdGlueStreamGet(st);
    rbdc_status status;
    int rc;

    if (!gs)
        return -1;
    rc = rbdc_stream_send(gs->core, data, nbytes, rbdGlueStreamBlocking(st), &status);
    if (rc == -1)
        rbdGlueReport(&status);
    return rc;
}

static int
rbdGlueStreamRecv(virStreamPtr st, char *data, size_t nbytes)
{
    rbdGlueStream *gs = rbdGlueStreamGet(st);
    rbdc_status status;
    int rc = gs ? rbdc_stream_recv(gs->core, data, nbytes, rbdGlueStreamBlocking(st), &status) : -1;

    if (gs && rc == -1)
        rbdGlueReport(&status);
    return rc;
}

static int
rbdGlueStreamSendHole(virStreamPtr st, long long length, unsigned int flags)
{
    rbdGlueStream *gs = rbdGlueStreamGet(st);
    rbdc_status status;

    virCheckFlags(0, -1);
    virCheckPositiveArgReturn(length, -1);
    if (!gs)
        return -1;
    if (rbdc_stream_send_hole(gs->core, length, &status) < 0) {
        rbdGlueReport(&status);
        return -1;
    }
    return 0;
}

static int
rbdGlueStreamInData(virStreamPtr st, int *inData, long long *length)
{
    rbdGlueStream *gs = rbdGlueStreamGet(st);
    rbdc_status status;
    uint64_t len = 0;

    if (!gs)
        return -1;
    if (rbdc_stream_in_data(gs->core, inData, &len, &status) < 0) {
        rbdGlueReport(&status);
        return -1;
    }
    *length = len;
    return 0;
}

static virStreamDriver rbdGlueStreamDriver = {
    .streamSend = rbdGlueStreamSend,
    .streamRecv = rbdGlueStreamRecv,
    .streamSendHole = rbdGlueStreamSendHole,
    .streamInData = rbdGlueStreamInData,
    .streamEventAddCallback = rbdGlueStreamAddCallback,
    .streamEventUpdateCallback = rbdGlueStreamUpdateCallback,
    .streamEventRemoveCallback = rbdGlueStreamRemoveCallback,
    .streamFinish = rbdGlueStreamFinish,
    .streamAbort = rbdGlueStreamAbort,
};

int
rbdGlueStreamOpen(virStreamPtr st, rbdc_stream *core, bool upload)
{
    rbdGlueStream *gs;
    int nullfd;

    if ((nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
        virReportSystemError(errno, "%s", _("cannot open /dev/null"));
        rbdc_stream_abort(core);
        return -1;
    }
    if (virFDStreamOpen(st, nullfd) < 0) {
        VIR_FORCE_CLOSE(nullfd);
        rbdc_stream_abort(core);
        return -1;
    }
    gs = g_new0(rbdGlueStream, 1);
    if (virMutexInit(&gs->lock) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s", _("cannot initialize a mutex"));
        st->driver->streamAbort(st);
        rbdc_stream_abort(core);
        g_free(gs);
        return -1;
    }
    gs->core = core;
    gs->upload = upload;
    gs->fdDriver = st->driver;
    rbdGlueStreamRegister(st, gs);
    st->driver = &rbdGlueStreamDriver;
    return 0;
}
