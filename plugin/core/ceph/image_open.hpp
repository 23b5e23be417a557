// Opening RBD images without ever letting librbd fail an open.
//
// librbd 16.2 (Debian 12) corrupts its own state when an open fails while
// other opens run on the same client: rbd_open_read_only of a missing image
// or of a missing snapshot, from 16 threads among successful opens, makes a
// process abort within a minute (std::system_error thrown from a librados
// thread, or glibc's "futex facility returned an unexpected error code")
// or hang in rbd_open_read_only forever — measured with a 60-line program
// without libvirt (see tests/integration/test_image_open.cpp).  A libvirtd
// serving many requests at once is that program.  So every open here first
// asks RADOS whether the image is there (a stat of its id or header object,
// which is also cheaper than a failing open), opens the head (never a
// snapshot), and selects a snapshot with rbd_snap_set on the open handle,
// whose failure leaves the handle intact.  An image removed between the
// look and the open can still fail an open: that needs a concurrent delete
// of the very image, not the routine "not there yet" of a cache entry or a
// partial copy.
#pragma once

#include <string>

#include "ceph/handles.hpp"

namespace rbdclone {

// 0 and the handle, or a negative errno (-ENOENT: no such image, or no such
// snapshot of it).  `snap` may be null or empty: the head.
int open_image_by_name(rados_ioctx_t io, const std::string &name, const char *snap, bool read_only,
                       ImageHandle &out);
int open_image_by_id(rados_ioctx_t io, const std::string &id, const char *snap, bool read_only, ImageHandle &out);

// 1 if an image of that name exists (format 1 or 2), 0 if not, or a negative errno.
int image_exists(rados_ioctx_t io, const std::string &name);

// The id of the format 2 image `name`, read from its id object (one round
// trip, nothing opened), or a negative errno (-ENOENT: no id object: no
// such image, or a format 1 one).
int image_id_of(rados_ioctx_t io, const std::string &name, std::string &id);

} // namespace rbdclone
