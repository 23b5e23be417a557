// Clone depth and flattening: the pool policy (<rbd:clone flatten='depth'
// max_depth='N'/> or flatten='always', as Cinder's rbd_max_clone_depth) and
// the on-demand flatten that `virsh vol-resize --allocate` asks for.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "ceph/pool.hpp"

namespace rbdclone {

// How many ancestors `img` has: 0 for an image without parent, 1 for a
// clone of one, and so on (through every pool and namespace of the cluster).
Result<unsigned> clone_depth(rados_t cluster, rbd_image_t img);

// Why a new clone of depth `depth` must be flattened under `policy`, or
// nothing when it stays a clone.
std::optional<std::string> flatten_reason(const PoolPolicy &policy, unsigned depth);

// Flattens pool/name now (the image stays usable meanwhile: librbd copies
// the parent's data up under the image's own lock), then releases the
// parent snapshot and purges a deferred parent nobody uses any more.
// Returns false when the image had no parent (nothing to do).
Result<bool> flatten_volume(Pool &pool, const std::string &name);

// After a clone was created: applies the pool's flatten policy, logging the
// decision and its reason.  A flatten runs in a background worker; a
// delete of the image waits for it.
void apply_flatten_policy(const std::shared_ptr<Pool> &pool, const std::string &name);

// Restarts the background flattens that were decided but not finished (the
// daemon stopped during one): called at every pool refresh, so also when a
// restarted libvirtd brings the pool back.  Nothing while the pool's policy
// is flatten='never'.
void resume_pending_flattens(const std::shared_ptr<Pool> &pool);

} // namespace rbdclone
