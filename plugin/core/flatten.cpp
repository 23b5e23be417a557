#include "flatten.hpp"

#include <chrono>
#include <thread>

#include "deferred_delete.hpp"
#include "image_activity.hpp"
#include "image_children.hpp"
#include "log.hpp"
#include "volume_ops.hpp"

namespace rbdclone {

Result<unsigned> clone_depth(rados_t cluster, rbd_image_t img)
{
    unsigned depth = 0;
    ImageHandle ancestor;
    rbd_image_t cur = img;
    for (;;) {
        auto p = parent_of(cur);
        if (!p)
            return p.error();
        if (!p->has_value())
            return depth;
        if (++depth > kMaxMaxDepth + 1)
            return depth; // deeper than any policy asks about
        IoCtxHandle io;
        int r = rados_ioctx_create2(cluster, (*p)->pool_id, io.out());
        if (r < 0)
            return ceph_error(r, "failed to open the pool of " + (*p)->label);
        rados_ioctx_set_namespace(io.get(), (*p)->pool_namespace.c_str());
        ImageHandle next;
        r = rbd_open_by_id_read_only(io.get(), (*p)->image_id.c_str(), next.out(), (*p)->snap.c_str());
        if (r == -ENOENT) // the snapshot was removed (clone v2 keeps it in the trash namespace)
            r = rbd_open_by_id_read_only(io.get(), (*p)->image_id.c_str(), next.out(), nullptr);
        if (r < 0)
            return ceph_error(r, "failed to open " + (*p)->label);
        ancestor = std::move(next);
        cur = ancestor.get();
    }
}

std::optional<std::string> flatten_reason(const PoolPolicy &policy, unsigned depth)
{
    switch (policy.flatten) {
    case FlattenPolicy::Never:
        return std::nullopt;
    case FlattenPolicy::Always:
        return std::string("the pool's policy is flatten='always'");
    case FlattenPolicy::Depth:
        if (depth > policy.max_depth)
            return cat("its clone depth ", depth, " is more than the pool's max_depth ", policy.max_depth);
        return std::nullopt;
    }
    return std::nullopt;
}

static int no_progress(uint64_t, uint64_t, void *) { return 0; }

Result<bool> flatten_volume(Pool &pool, const std::string &name)
{
    const std::string label = pool.image_label(name);
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<ParentRef> parent;
    {
        auto img = open_image(pool, name, false);
        if (!img)
            return img.error();
        auto p = parent_of(img->get());
        if (!p)
            return ceph_error(p.error().rc, "failed to get the parent of " + label);
        if (!p->has_value())
            return false;
        parent = std::move(*p);
        int r = rbd_flatten_with_progress(img->get(), no_progress, nullptr);
        if (r < 0)
            return ceph_error(r, "failed to flatten " + label + " (clone of " + parent->label + ")");
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    log_info("flattened ", label, ": it no longer depends on ", parent->label, " (", ms, " ms)");
    detach_from_parent(pool.cluster().get(), *parent);
    return true;
}

void apply_flatten_policy(const std::shared_ptr<Pool> &pool, const std::string &name)
{
    if (pool->policy().flatten == FlattenPolicy::Never)
        return;
    const std::string label = pool->image_label(name);
    unsigned depth = 0;
    {
        auto img = open_image(*pool, name, true);
        if (!img) {
            log_warn("cannot apply the flatten policy to ", label, ": ", img.error().message);
            return;
        }
        auto d = clone_depth(pool->cluster().get(), img->get());
        if (!d) {
            log_warn("cannot apply the flatten policy to ", label, ": ", d.error().message);
            return;
        }
        depth = *d;
    }
    auto why = flatten_reason(pool->policy(), depth);
    if (!why) {
        log_info("decision for ", label, ": keep as a clone (clone depth ", depth, " is within the pool's max_depth ",
                 pool->policy().max_depth, ")");
        return;
    }
    log_info("decision for ", label, ": flatten in the background (", *why, "); the volume is usable meanwhile");
    auto mark = std::make_shared<ActivityMark>(*pool, name, Activity::Flatten);
    std::thread([pool, name, mark] {
        auto r = flatten_volume(*pool, name);
        if (!r)
            log_warn("background flatten failed: ", r.error().message,
                     "; the volume stays a clone (flatten it with 'virsh vol-resize --allocate')");
    }).detach();
}

} // namespace rbdclone
