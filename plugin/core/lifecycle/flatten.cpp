#include "lifecycle/flatten.hpp"

#include <chrono>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "ceph/image_children.hpp"
#include "ceph/image_open.hpp"
#include "ceph/names.hpp"
#include "lifecycle/deferred_delete.hpp"
#include "lifecycle/image_activity.hpp"
#include "ceph/image_ops.hpp"

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
        r = open_image_by_id(io.get(), (*p)->image_id, (*p)->snap.c_str(), true, next);
        if (r == -ENOENT) // the snapshot was removed (clone v2 keeps it in the trash namespace)
            r = open_image_by_id(io.get(), (*p)->image_id, nullptr, true, next);
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

namespace {

// Flattens decided and not yet done, as keys of an omap in the pool, so
// that a flatten cut by a daemon stop is resumed (by the next refresh of
// any libvirtd serving the pool).

void set_pending(Pool &pool, const std::string &name, bool pending)
{
    rados_write_op_t op = rados_create_write_op();
    const char *keys[] = {name.c_str()};
    if (pending) {
        const char *vals[] = {""};
        const size_t lens[] = {0};
        rados_write_op_omap_set(op, keys, vals, lens, 1);
    } else {
        rados_write_op_omap_rm_keys(op, keys, 1);
    }
    int r = rados_write_op_operate(op, pool.io(), kFlattenPendingObject, nullptr, 0);
    rados_release_write_op(op);
    if (r < 0 && !(r == -ENOENT && !pending))
        log_warn("cannot record the flatten of ", pool.image_label(name), " as ", pending ? "pending" : "done", ": ",
                 describe_rc(r));
}

std::vector<std::string> pending_flattens(Pool &pool)
{
    std::vector<std::string> names;
    rados_read_op_t op = rados_create_read_op();
    rados_omap_iter_t it = nullptr;
    unsigned char more = 0;
    int prval = 0;
    rados_read_op_omap_get_keys2(op, "", 1000, &it, &more, &prval);
    int r = rados_read_op_operate(op, pool.io(), kFlattenPendingObject, 0);
    if (r >= 0 && prval >= 0 && it) {
        char *key = nullptr, *val = nullptr;
        size_t key_len = 0, val_len = 0;
        while (rados_omap_get_next2(it, &key, &val, &key_len, &val_len) == 0 && key)
            names.emplace_back(key, key_len);
    }
    if (it)
        rados_omap_get_end(it);
    rados_release_read_op(op);
    if (r < 0 && r != -ENOENT)
        log_warn("cannot read the pending flattens (object ", kFlattenPendingObject, " of Ceph pool ", pool.id().ceph_pool,
                 "): ", describe_rc(r));
    return names;
}

// Marks the flatten pending, then flattens in a detached worker that holds
// `mark` (a delete of the image waits for it) and the pool.
void start_background_flatten(const std::shared_ptr<Pool> &pool, const std::string &name,
                              std::unique_ptr<ActivityMark> mark)
{
    set_pending(*pool, name, true);
    std::thread([pool, name, mark = std::shared_ptr<ActivityMark>(std::move(mark))] {
        thread_body("background flatten", [&] {
            auto r = flatten_volume(*pool, name);
            if (r || r.error().rc == -ENOENT)
                set_pending(*pool, name, false); // done, or the image is gone
            else
                log_warn("background flatten failed: ", r.error().message,
                         "; the volume stays a clone (the next pool refresh tries again; 'virsh vol-resize "
                         "--allocate' flattens it now)");
        });
    }).detach();
}

} // namespace

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
        // Without the keys librbd would copy the parent's stored bytes under the clone's header.
        auto rec = read_record(img->get(), label);
        if (!rec)
            return rec.error();
        if (*rec)
            return plain_error(RBDC_ERR_UNSUPPORTED, -ENOTSUP,
                               "cannot flatten " + label + ": it is an encrypted clone of " + parent->label +
                                   ", and librbd flattens those only with every key loaded, which this module "
                                   "does not do");
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
    if (auto mark = ActivityMark::try_begin(*pool, name, Activity::Flatten))
        start_background_flatten(pool, name, std::move(mark));
}

void resume_pending_flattens(const std::shared_ptr<Pool> &pool)
{
    if (pool->policy().flatten == FlattenPolicy::Never)
        return; // kept pending: turning the policy on again resumes them
    for (const auto &name : pending_flattens(*pool)) {
        auto mark = ActivityMark::try_begin(*pool, name, Activity::Flatten);
        if (!mark)
            continue; // running here
        log_info("resuming the flatten of ", pool->image_label(name),
                 " (decided before libvirtd stopped, or by another libvirtd)");
        start_background_flatten(pool, name, std::move(mark));
    }
}

} // namespace rbdclone
