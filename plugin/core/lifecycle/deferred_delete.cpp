#include "lifecycle/deferred_delete.hpp"

#include <ctime>
#include <vector>

#include "base/log.hpp"
#include "ceph/image_open.hpp"
#include "ceph/snapshots.hpp"

namespace rbdclone {

namespace {

// Long enough that `rbd trash purge` leaves our entries alone: they are
// removed by us, with force, once nothing depends on them.
constexpr uint64_t kTrashDelaySeconds = 10ull * 365 * 24 * 3600;

bool is_marked(rbd_image_t img)
{
    char value[64];
    size_t len = sizeof(value);
    return rbd_metadata_get(img, kDeferredMetaKey, value, &len) == 0;
}

} // namespace

Status move_to_trash(Pool &pool, const std::string &name)
{
    const std::string label = pool.image_label(name);
    const std::string when = std::to_string(static_cast<long long>(time(nullptr)));
    {
        ImageHandle img;
        int r = open_image_by_name(pool.io(), name, nullptr, false, img);
        if (r < 0)
            return ceph_error(r, "failed to open " + label + " to move it to the RBD trash");
        if ((r = rbd_metadata_set(img.get(), kDeferredMetaKey, when.c_str())) < 0)
            return ceph_error(r, "failed to mark " + label + " for deferred deletion");
    } // closed: an open handle of ours would count as a user of the image
    int r = rbd_trash_move(pool.io(), name.c_str(), kTrashDelaySeconds);
    if (r < 0) {
        ImageHandle img;
        if (open_image_by_name(pool.io(), name, nullptr, false, img) == 0)
            (void)rbd_metadata_remove(img.get(), kDeferredMetaKey);
        if (r == -EBUSY)
            return plain_error(RBDC_ERR_OPERATION_INVALID, r,
                               "cannot delete " + label + ": it is in use (watched by a running guest or client)");
        return ceph_error(r, "failed to move " + label + " to the RBD trash");
    }
    log_info("moved ", label, " to the RBD trash (deferred deletion): it is purged when its last clone is gone");
    return {};
}

bool purge_if_unused(rados_ioctx_t io, const std::string &pool_label, const std::string &image_id)
{
    rbd_trash_image_info_t info;
    if (rbd_trash_get(io, image_id.c_str(), &info) < 0)
        return false; // not in the trash (any more)
    const std::string label = RbdLocation{"", pool_label, "", info.name, ""}.label() + " (id " + image_id + ", in the trash)";
    rbd_trash_get_cleanup(&info);
    {
        ImageHandle img;
        int r = open_image_by_id(io, image_id, nullptr, false, img);
        if (r < 0) {
            if (r != -ENOENT)
                log_warn("could not open ", label, " to purge it: ", describe_rc(r));
            return false;
        }
        if (!is_marked(img.get()))
            return false; // trashed by someone else: not ours to purge
        auto snaps = list_snapshots(img.get());
        if (!snaps) {
            log_warn("could not list the snapshots of ", label, ": ", snaps.error().message);
            return false;
        }
        for (const auto &s : snaps.value()) {
            auto kids = children_of_snapshot(img.get(), s.id);
            if (!kids) {
                log_warn("could not list the clones of ", label, ": ", kids.error().message);
                return false;
            }
            if (!kids->empty()) {
                log_debug("keeping ", label, ": snapshot '", s.name, "' still has clones (",
                          describe_children(kids.value()), ")");
                return false;
            }
        }
        for (const auto &s : snaps.value()) {
            auto st = remove_snapshot(img.get(), "snapshot '" + s.name + "' of " + label, s.name);
            if (!st && st.error().rc == -EBUSY) { // a clone appeared meanwhile; the image stays
                log_debug("keeping ", label, ": ", st.error().message);
                return false;
            }
            if (!st && st.error().rc != -ENOENT) {
                log_warn(st.error().message);
                return false;
            }
        }
    }
    int r = rbd_trash_remove(io, image_id.c_str(), 1);
    if (r < 0) {
        // Snapshots of another namespace (a clone v2 parent whose snapshot
        // was removed while it had clones) keep it: RBD refuses.
        if (r != -ENOENT)
            log_debug("keeping ", label, ": ", describe_rc(r));
        return false;
    }
    log_info("purged ", label, ", deleted earlier with the deferred policy: its last clone is gone");
    return true;
}

std::vector<std::string> deferred_candidates(Pool &pool)
{
    std::vector<rbd_trash_image_info_t> entries(32);
    size_t n = entries.size();
    int r;
    while ((r = rbd_trash_list(pool.io(), entries.data(), &n)) == -ERANGE)
        entries.resize(n);
    if (r < 0) {
        log_debug("could not list the RBD trash of Ceph pool '", pool.id().ceph_pool, "': ", describe_rc(r));
        return {};
    }
    std::vector<std::string> ids;
    for (size_t i = 0; i < static_cast<size_t>(r) && i < n; i++)
        if (entries[i].source == RBD_TRASH_IMAGE_SOURCE_USER)
            ids.emplace_back(entries[i].id);
    rbd_trash_list_cleanup(entries.data(), std::min<size_t>(n, static_cast<size_t>(r)));
    return ids;
}

void detach_from_parent(rados_t cluster, const ParentRef &parent)
{
    release_parent_snapshot(cluster, parent);
    IoCtxHandle io;
    if (rados_ioctx_create2(cluster, parent.pool_id, io.out()) < 0)
        return;
    rados_ioctx_set_namespace(io.get(), parent.pool_namespace.c_str());
    char name[256] = {0};
    int len = rados_ioctx_get_pool_name(io.get(), name, sizeof(name) - 1);
    purge_if_unused(io.get(), len > 0 ? name : std::to_string(parent.pool_id), parent.image_id);
}

} // namespace rbdclone
