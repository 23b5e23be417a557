// Deferred deletion (pool policy delete='deferred', as Cinder's
// enable_deferred_deletion): an image whose snapshots have clones is moved
// to the RBD trash instead of being refused, no longer listed, and purged
// once its last clone is deleted or flattened.  Only images moved there by
// this module (marked with an image metadata key) are ever purged.
#pragma once

#include <string>
#include <vector>

#include "ceph/image_children.hpp"
#include "ceph/names.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

// Marks `name` as ours and moves it to the trash (refused while in use).
Status move_to_trash(Pool &pool, const std::string &name);

// Purges the image with id `image_id` from the trash of `io` when it is one
// of ours and none of its snapshots has a clone left: its snapshots go,
// then the image.  Returns true when purged.  Best effort: a failure is
// logged, and the next refresh of a pool on that Ceph pool tries again.
bool purge_if_unused(rados_ioctx_t io, const std::string &pool_label, const std::string &image_id);

// The ids of the images users moved to the pool's trash (ours among them;
// purge_if_unused tells them apart).  Empty when the trash cannot be read.
std::vector<std::string> deferred_candidates(Pool &pool);

// After a clone stopped depending on `parent` (deleted or flattened):
// removes our parent snapshot if no clone uses it any more, then purges the
// parent image if it was deferred and is now unused.
void detach_from_parent(rados_t cluster, const ParentRef &parent);

} // namespace rbdclone
