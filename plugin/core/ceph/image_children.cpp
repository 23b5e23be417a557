#include "ceph/image_children.hpp"

#include "base/log.hpp"
#include "ceph/image_open.hpp"
#include "ceph/snapshot_lock.hpp"
#include "ceph/snapshots.hpp"

namespace rbdclone {

Result<std::vector<ChildRef>> children_of_snapshot(rbd_image_t img, uint64_t snap_id)
{
    int r = rbd_snap_set_by_id(img, snap_id);
    if (r < 0)
        return ceph_error(r, "failed to select a snapshot");
    std::vector<rbd_linked_image_spec_t> specs(16);
    size_t n = specs.size();
    while ((r = rbd_list_children3(img, specs.data(), &n)) == -ERANGE)
        specs.resize(n);
    int r2 = rbd_snap_set(img, nullptr);
    if (r < 0)
        return ceph_error(r, "failed to list the clones of a snapshot");
    if (r2 < 0)
        return ceph_error(r2, "failed to return to the image's head");
    std::vector<ChildRef> out;
    for (size_t i = 0; i < n; i++) {
        ChildRef c;
        c.pool = specs[i].pool_name ? specs[i].pool_name : std::to_string(specs[i].pool_id);
        if (specs[i].pool_namespace && *specs[i].pool_namespace)
            c.pool += std::string("/") + specs[i].pool_namespace;
        c.image = specs[i].image_name ? specs[i].image_name : specs[i].image_id;
        c.trash = specs[i].trash;
        out.push_back(std::move(c));
    }
    rbd_linked_image_spec_list_cleanup(specs.data(), n);
    return out;
}

std::string describe_children(const std::vector<ChildRef> &children, size_t max_named)
{
    std::string s;
    for (size_t i = 0; i < children.size() && i < max_named; i++) {
        if (i)
            s += ", ";
        s += children[i].pool + "/" + children[i].image + (children[i].trash ? " (in the trash)" : "");
    }
    if (children.size() > max_named)
        s += " and " + std::to_string(children.size() - max_named) + " more";
    return s;
}

Result<std::optional<ParentRef>> parent_of(rbd_image_t img)
{
    rbd_linked_image_spec_t image{};
    rbd_snap_spec_t snap{};
    int r = rbd_get_parent(img, &image, &snap);
    if (r == -ENOENT)
        return std::optional<ParentRef>{};
    if (r < 0)
        return ceph_error(r, "failed to get the parent of an image");
    ParentRef p;
    p.pool_id = image.pool_id;
    p.pool_namespace = image.pool_namespace ? image.pool_namespace : "";
    p.image_id = image.image_id ? image.image_id : "";
    p.snap = snap.name ? snap.name : "";
    p.label = std::string(image.pool_name ? image.pool_name : "?") + "/" + (image.image_name ? image.image_name : "?") +
              "@" + p.snap;
    rbd_linked_image_spec_cleanup(&image);
    rbd_snap_spec_cleanup(&snap);
    return std::optional<ParentRef>(std::move(p));
}

// Removes the snapshot S of IMG (the parent of a deleted clone) unless a clone still uses it.
static void remove_unused_snapshot(rbd_image_t img, const ParentRef &parent, const SnapshotInfo &s)
{
    // A protected snapshot (clone format 1) with clones refuses to be unprotected, which costs
    // a read per pool, where listing its clones costs a listing of every image of their pool
    // (librbd names them): a snapshot still in use is known without listing.
    int prot = 0, r;
    bool unprotected = false;
    if (rbd_snap_is_protected(img, s.name.c_str(), &prot) == 0 && prot) {
        r = rbd_snap_unprotect(img, s.name.c_str());
        if (r == -EBUSY)
            return; // still in use
        if (r < 0) {
            log_warn("could not unprotect ", parent.label, " to release it: ", describe_rc(r));
            return;
        }
        unprotected = true;
    }
    auto kids = children_of_snapshot(img, s.id); // clones of format 2
    if (!kids || !kids->empty()) {
        if (unprotected && (r = rbd_snap_protect(img, s.name.c_str())) < 0)
            log_warn("could not protect ", parent.label, " again: ", describe_rc(r));
        if (!kids)
            log_warn("could not list the clones of ", parent.label, ": ", kids.error().message);
        return; // still in use
    }
    auto st = remove_snapshot(img, "snapshot " + parent.label, s.name);
    if (!st && st.error().rc == -EBUSY)
        return; // a clone appeared meanwhile
    if (!st && st.error().rc != -ENOENT)
        log_warn(st.error().message, ", which no clone uses any more");
    else
        log_info("removed snapshot ", parent.label, ": its last clone was deleted");
}

void release_parent_snapshot(rados_t cluster, const ParentRef &parent)
{
    if (!is_our_snapshot(parent.snap) || parent.snap == kCacheSnapshot)
        return; // a user's snapshot, or a cache entry's: not released here
    IoCtxHandle io;
    int r = rados_ioctx_create2(cluster, parent.pool_id, io.out());
    if (r < 0) {
        log_warn("could not open the pool of ", parent.label, " to release it: ", describe_rc(r));
        return;
    }
    rados_ioctx_set_namespace(io.get(), parent.pool_namespace.c_str());
    ImageHandle img;
    if ((r = open_image_by_id(io.get(), parent.image_id, nullptr, false, img)) < 0) {
        if (r != -ENOENT)
            log_warn("could not open ", parent.label, " to release it: ", describe_rc(r));
        return;
    }
    auto lock = SnapshotLock::take(io.get(), parent.image_id, SnapshotLock::Kind::Remove);
    if (!lock || !lock->held()) {
        log_debug("keeping ", parent.label, ": a clone from it is under way");
        return;
    }
    auto snaps = list_snapshots(img.get());
    if (!snaps)
        return;
    for (const auto &s : snaps.value())
        if (s.name == parent.snap)
            return remove_unused_snapshot(img.get(), parent, s);
}

} // namespace rbdclone
