#include "ceph/snapshots.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace rbdclone {


Result<std::vector<SnapshotInfo>> list_snapshots(rbd_image_t img)
{
    int max = 16;
    std::vector<rbd_snap_info_t> buf;
    int n;
    for (;;) {
        buf.assign(static_cast<size_t>(max), rbd_snap_info_t{});
        n = rbd_snap_list(img, buf.data(), &max);
        if (n != -ERANGE)
            break;
    }
    if (n < 0)
        return ceph_error(n, "failed to list snapshots");
    std::vector<SnapshotInfo> out;
    out.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; i++)
        out.push_back({buf[i].id, buf[i].name, buf[i].size});
    rbd_snap_list_end(buf.data());
    return out;
}

std::optional<SnapshotInfo> newest_snapshot(const std::vector<SnapshotInfo> &snaps)
{
    if (snaps.empty())
        return std::nullopt;
    return *std::max_element(snaps.begin(), snaps.end(),
                             [](const auto &a, const auto &b) { return a.id < b.id; });
}

SnapshotChoice choose_clone_snapshot(const std::vector<SnapshotInfo> &snaps, uint64_t head_size,
                                     bool newest_unchanged)
{
    auto newest = newest_snapshot(snaps);
    if (!newest)
        return {first_snapshot_name(), false};
    if (is_our_snapshot(newest->name) && newest->size == head_size && newest_unchanged)
        return {newest->name, true};
    return {snapshot_after_name(newest->id), false};
}

static int stop_at_first_extent(uint64_t, size_t, int, void *arg)
{
    *static_cast<bool *>(arg) = true;
    return -EEXIST; // stop iterating: one changed extent is enough
}

Result<bool> head_unchanged_since(rbd_image_t img, const std::string &snap, uint64_t size)
{
    bool changed = false;
    int r = rbd_diff_iterate2(img, snap.c_str(), 0, size, 0, 1, stop_at_first_extent, &changed);
    if (r < 0 && !(r == -EEXIST && changed))
        return ceph_error(r, "failed to compare the image with snapshot '" + snap + "'");
    return !changed;
}

Status remove_snapshot(rbd_image_t img, const std::string &label, const std::string &snap)
{
    int prot = 0;
    int r = rbd_snap_is_protected(img, snap.c_str(), &prot);
    if (r < 0)
        return ceph_error(r, "failed to check whether " + label + " is protected");
    if (prot) {
        r = rbd_snap_unprotect(img, snap.c_str());
        if (r == -EBUSY)
            return plain_error(RBDC_ERR_OPERATION_INVALID, r, "cannot delete " + label + ": it has clones");
        if (r < 0)
            return ceph_error(r, "failed to unprotect " + label);
    }
    r = rbd_snap_remove(img, snap.c_str());
    if (r < 0)
        return ceph_error(r, "failed to remove " + label);
    log_debug("removed ", label);
    return {};
}

} // namespace rbdclone
