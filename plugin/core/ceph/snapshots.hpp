// Snapshots used as clone parents: listing, choosing one to reuse, and the
// names of the snapshots this module makes (so it never touches a user's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "ceph/handles.hpp"
#include "ceph/names.hpp"

namespace rbdclone {

struct SnapshotInfo {
    uint64_t id = 0;
    std::string name;
    uint64_t size = 0;
};

Result<std::vector<SnapshotInfo>> list_snapshots(rbd_image_t img);

// The plan for a clone parent: reuse `name` if `reuse`, else create `name`.
struct SnapshotChoice {
    std::string name;
    bool reuse = false;
};

// Chooses the snapshot to clone from without a cost that grows with the
// number of snapshots: only the newest snapshot can equal the head (any
// older one is at best equal to the newest), so only it is checked.  It is
// reused when it is ours, has the head's size and `newest_unchanged` says
// the head has not been written since.  Otherwise the new snapshot's name is
// derived from the newest snapshot's id, so that concurrent requests, in
// this process or in other libvirtds, compute the same name and share one
// snapshot ("already exists" means "reuse").
SnapshotChoice choose_clone_snapshot(const std::vector<SnapshotInfo> &snaps, uint64_t head_size,
                                     bool newest_unchanged);

// The newest snapshot (highest id), if any.
std::optional<SnapshotInfo> newest_snapshot(const std::vector<SnapshotInfo> &snaps);

// Removes snapshot `snap` of `img`, unprotecting it first when needed.
// `label` names it in errors ("snapshot 'pool/image@snap'"); a snapshot
// that still has clones is RBDC_ERR_OPERATION_INVALID with rc -EBUSY.
Status remove_snapshot(rbd_image_t img, const std::string &label, const std::string &snap);

// True when the head of `img` has no data written since snapshot `snap`.
Result<bool> head_unchanged_since(rbd_image_t img, const std::string &snap, uint64_t size);

} // namespace rbdclone
