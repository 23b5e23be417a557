// Who depends on an image: the clones made from its snapshots, and the
// parent snapshot of a clone.  Used so that deleting never loses a clone's
// data and never leaves one of our snapshots behind once nothing uses it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "ceph/handles.hpp"

namespace rbdclone {

struct ChildRef {
    std::string pool;   // Ceph pool (with "/namespace" when there is one)
    std::string image;
    bool trash = false; // the clone itself is in the RBD trash
};

// The clones of snapshot `snap_id` of `img` (the handle's view is set back
// to the head afterwards).
Result<std::vector<ChildRef>> children_of_snapshot(rbd_image_t img, uint64_t snap_id);

// "rbd2/a, rbd2/b, rbd/c and 4 more" (trashed clones marked).
std::string describe_children(const std::vector<ChildRef> &children, size_t max_named = 3);

struct ParentRef {
    int64_t pool_id = -1;
    std::string pool_namespace;
    std::string image_id;
    std::string label; // "pool/image@snap" for messages
    std::string snap;
};

// The parent snapshot of a clone, or nothing for an image without parent.
Result<std::optional<ParentRef>> parent_of(rbd_image_t img);

// Removes snapshot parent.snap of the parent image when it is one of ours
// and no clone uses it any more.  Best effort: a failure is only logged
// (the clone's deletion has succeeded), and a snapshot that gained a clone
// meanwhile is kept (a protected one refuses to be unprotected).
void release_parent_snapshot(rados_t cluster, const ParentRef &parent);

} // namespace rbdclone
