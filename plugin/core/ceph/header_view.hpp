// An RBD image read as the clone path needs it, without librbd opening it.
//
// The common request clones a golden image whose newest snapshot is ours
// and still equal to its head: the snapshot is reused.  librbd's open
// costs 12 round trips, one after the other, and reads every snapshot of
// the image (a golden image may carry many); this view costs two, each of
// several questions at once:
//   1. on rbd_header.<id>: get_size, get_object_prefix, get_features,
//      get_flags, get_snapcontext, parent_get; beside it, the head's object
//      map;
//   2. on rbd_header.<id>: the newest snapshot's name, size, protection and
//      flags; beside it, that snapshot's object map and the first and last
//      bytes of the image as that snapshot holds them (the data objects
//      read at the snapshot: what a clone of it holds).
// The replies are Ceph's wire format, decoded in ceph/rbd_wire.hpp.
//
// It answers only for the case it is made for, and nullopt for any other:
// format 1, a parent, fancy striping, a data pool, journaling, no valid
// fast-diff object maps, no snapshot or a newest one that is not ours or
// not of the head's size, a head written since, a map or reply it cannot
// decode, any failed read.  The caller then opens the image with librbd, as
// before, and librbd reports whatever is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ceph/handles.hpp"
#include "ceph/snapshots.hpp"

namespace rbdclone {

struct HeaderView {
    uint64_t size = 0;         // of the head, and of the snapshot
    uint64_t features = 0;
    SnapshotInfo newest;       // ours, equal to the head
    bool newest_protected = false;
    std::string head, tail;    // as read_head_tail(head_bytes, tail_bytes) reads them
};

// `io`: the image's pool and namespace (not changed: the snapshot is read
// through a context of its own); `image_id`: its id (rbd_id.<name>).
std::optional<HeaderView> read_header_view(rados_ioctx_t io, const std::string &image_id, size_t head_bytes,
                                           size_t tail_bytes);

} // namespace rbdclone
