#include "lifecycle/volume_ops.hpp"

#include <algorithm>
#include <vector>

#include "base/log.hpp"
#include "ceph/image_children.hpp"
#include "ceph/image_ops.hpp"
#include "ceph/image_open.hpp"
#include "ceph/snapshots.hpp"
#include "lifecycle/deferred_delete.hpp"
#include "lifecycle/image_activity.hpp"

namespace rbdclone {

Result<VolumeInfo> volume_info(Pool &pool, const std::string &name, AllocMode mode)
{
    auto info = info_by_name(pool, name, mode);
    if (!info && info.error().rc == -ENOENT) {
        // A volume being copied in: its bytes are in the hidden partial
        // image, whose allocation grows as the copy runs.  Its allocation
        // is what is stored so far, whatever the pool's allocation mode,
        // so that a user can watch the copy progress.
        if (auto partial = partial_of(pool, name)) {
            ImageHandle p;
            if (open_image_by_name(pool.io(), *partial, nullptr, true, p) == 0)
                return info_of_open(pool, name, p.get(), AllocMode::FastDiff);
        }
    }
    return info;
}

static std::string snapshot_label(const Pool &pool, const std::string &image, const std::string &snap)
{
    return cat("snapshot '", pool.id().ceph_pool, "/", image, "@", snap, "'");
}

// The clones of each of an image's snapshots: has_clones[i] for snaps[i], all of them in
// clones. A Ceph user limited to some pools may not list them: known is then false.
struct SnapshotClones {
    std::vector<ChildRef> clones;
    std::vector<bool> has_clones;
    bool known = true;
};
static Result<SnapshotClones> clones_of_snapshots(rbd_image_t img, const std::vector<SnapshotInfo> &snaps,
                                                  const std::string &label)
{
    SnapshotClones out;
    for (const auto &sn : snaps) {
        auto kids = children_of_snapshot(img, sn.id);
        if (!kids && (kids.error().rc == -EPERM || kids.error().rc == -EACCES)) {
            log_debug("cannot list the clones of ", label, " (", kids.error().message,
                      "): its snapshots are treated as a user's");
            out.known = false;
            break;
        }
        if (!kids)
            return ceph_error(kids.error().rc, "failed to list the clones of " + label);
        out.has_clones.push_back(!kids->empty());
        out.clones.insert(out.clones.end(), kids->begin(), kids->end());
    }
    return out;
}

// rbd_remove, with words for what users hit. false: it was gone already.
static Result<bool> remove_image(Pool &pool, const std::string &name, const std::string &label)
{
    int r = rbd_remove(pool.io(), name.c_str());
    if (r == -ENOENT)
        return false;
    if (r == -ENOTEMPTY)
        return plain_error(RBDC_ERR_OPERATION_INVALID, r,
                           "cannot delete " + label + ": it has snapshots (delete them first, or use --delete-snapshots)");
    if (r == -EBUSY)
        return plain_error(RBDC_ERR_OPERATION_INVALID, r,
                           "cannot delete " + label + ": it is in use (watched by a running guest or client, or it has clones)");
    if (r < 0)
        return ceph_error(r, "failed to remove " + label);
    log_info("removed ", label);
    return true;
}

Result<bool> delete_volume(Pool &pool, const std::string &name, bool delete_snapshots)
{
    const std::string label = pool.image_label(name);
    std::optional<ParentRef> parent;
    bool deferred = false;
    {
        auto img = open_image(pool, name, false);
        if (!img)
            return img.error().rc == -ENOENT ? Result<bool>(false) : Result<bool>(img.error());
        auto snaps = list_snapshots(img->get());
        if (!snaps)
            return ceph_error(snaps.error().rc, "failed to list the snapshots of " + label);
        // Never lose a clone's data: an image whose snapshots have clones stays, whatever the
        // flags (moved to the trash with the deferred policy).
        auto c = clones_of_snapshots(img->get(), snaps.value(), label);
        if (!c)
            return c.error();
        const auto &clones = c->clones;
        deferred = !clones.empty() && pool.policy().on_delete == DeletePolicy::Deferred;
        if (!clones.empty() && !deferred)
            return plain_error(RBDC_ERR_OPERATION_INVALID, -EBUSY,
                               cat("cannot delete ", label, ": it has ", clones.size(), " clone",
                                   clones.size() == 1 ? "" : "s", " (", describe_children(clones),
                                   "); delete or flatten ", clones.size() == 1 ? "it" : "them",
                                   " first, or set <rbd:clone delete='deferred'/> on the pool"));
        // Our own snapshots (clone parents nobody uses now) go with the image; a user's only
        // when asked.
        bool user_snapshots = false;
        for (const auto &sn : snaps.value())
            user_snapshots |= !is_our_snapshot(sn.name) || !c->known;
        if (user_snapshots && !delete_snapshots)
            return plain_error(RBDC_ERR_OPERATION_INVALID, -ENOTEMPTY,
                               "cannot delete " + label +
                                   ": it has snapshots (delete them first, or use --delete-snapshots)");
        for (size_t i = 0; i < snaps->size(); i++)
            // A snapshot whose clones could not be listed may have some: it stays.
            if (!deferred || (i < c->has_clones.size() && !c->has_clones[i]))
                if (auto st = remove_snapshot(img->get(), snapshot_label(pool, name, snaps.value()[i].name),
                                              snaps.value()[i].name);
                    !st)
                    return st.error();
        auto p = parent_of(img->get());
        if (!p)
            return ceph_error(p.error().rc, "failed to get the parent of " + label);
        parent = std::move(*p);
    }
    if (deferred) {
        if (auto st = move_to_trash(pool, name); !st)
            return st.error();
        return true;
    }
    auto removed = remove_image(pool, name, label);
    if (removed && *removed && parent)
        detach_from_parent(pool.cluster().get(), *parent);
    return removed;
}

Status wipe_volume(Pool &pool, const std::string &name, WipeMode mode, const VolumeKey *key)
{
    auto img = open_image(pool, name, false, key);
    if (!img)
        return img.error();
    rbd_image_info_t info;
    int r = rbd_stat(img->get(), &info, sizeof(info));
    if (r < 0)
        return ceph_error(r, "failed to stat " + pool.image_label(name));
    uint64_t stripe_count = 1;
    if ((r = rbd_get_stripe_count(img->get(), &stripe_count)) < 0)
        return ceph_error(r, "failed to get the stripe count of " + pool.image_label(name));
    const uint64_t step = info.obj_size * std::max<uint64_t>(stripe_count, 1) * 16;
    for (uint64_t off = 0; off < info.size; off += step) {
        uint64_t len = std::min(step, info.size - off);
        ssize_t w = mode == WipeMode::Zero ? rbd_write_zeroes(img->get(), off, len, 0, 0)
                                           : rbd_discard(img->get(), off, len);
        if (w < 0)
            return ceph_error(static_cast<int>(w),
                              cat("failed to wipe ", pool.image_label(name), " at offset ", off));
    }
    log_info("wiped ", pool.image_label(name), mode == WipeMode::Zero ? " with zeroes" : " by discard");
    return {};
}

} // namespace rbdclone
