// Cloning from a snapshot of ours and removing it, across daemons.
//
// A clone started from a snapshot that another request removes meanwhile
// fails inside rbd_clone3 with an open of the parent at a missing snapshot:
// the failing open that corrupts librbd 16.2 (image_open.hpp).  So a clone
// holds a shared RADOS lock on the object rbdclone_snaps.<image id> (in the
// image's pool and namespace) from choosing its snapshot until the clone
// exists, and whoever removes a snapshot of ours that no clone uses must get
// the exclusive lock first, without waiting: a clone under way keeps the
// snapshot (the next release removes it).  Both last 60 s at most, so a
// daemon that dies holding one lets go.
#pragma once

#include <string>

#include "base/status.hpp"
#include "ceph/handles.hpp"

namespace rbdclone {

class SnapshotLock {
  public:
    enum class Kind { Clone, Remove };
    SnapshotLock() = default;
    SnapshotLock(SnapshotLock &&o) noexcept;
    SnapshotLock &operator=(SnapshotLock &&o) noexcept;
    SnapshotLock(const SnapshotLock &) = delete;
    ~SnapshotLock();

    // Clone: waits (at most 60 s) while a removal holds the lock.
    // Remove: held() is false, without waiting, while any clone holds it.
    static Result<SnapshotLock> take(rados_ioctx_t io, const std::string &image_id, Kind kind);
    bool held() const { return io_ != nullptr; }

  private:
    rados_ioctx_t io_ = nullptr;
    std::string oid_, cookie_;
};

// Before an open whose handle a clone will use: the image's id (one round
// trip) and its clone lock, so that the snapshots the open then lists stay
// until the lock goes, and the clone needs no second, fresh open.  `id` is
// empty when the name has none (format 1, missing, unreadable: the open by
// name says which); the lock is not held when it cannot be taken (a Ceph
// user who may not write the lock object): the clone then takes it itself
// and reports its own failure.
SnapshotLock lock_before_open(rados_ioctx_t io, const std::string &name, std::string &id);

} // namespace rbdclone
