/* libvirt's stream for vol-upload / vol-download of RBD images.  libvirt's
 * fdstream needs a file descriptor, and a seekable one for sparse streams;
 * an RBD image has neither, so this is a stream driver of its own over the
 * core's stream bridge (rbdc_stream_*), with its readiness fd in libvirt's
 * event loop.  (st->privateData stays an fdstream: see rbd_stream.c.) */
#pragma once

#include "internal.h"

#include "rbdclone/core.h"

/* Makes `st` carry the core stream `core` (which it then owns, also on
 * failure).  upload: the stream is written to (send, send_hole);
 * otherwise read from (recv, in_data, send_hole to skip a hole). */
int rbdGlueStreamOpen(virStreamPtr st, rbdc_stream *core, bool upload);

