#include "lifecycle/image_cache_admin.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <optional>

#include "base/log.hpp"
#include "base/parallel.hpp"
#include "ceph/image_children.hpp"
#include "ceph/image_info.hpp"
#include "ceph/image_open.hpp"
#include "ceph/image_ops.hpp"
#include "ceph/names.hpp"
#include "ceph/snapshot_lock.hpp"
#include "ceph/snapshots.hpp"
#include "lifecycle/deferred_delete.hpp"

namespace rbdclone {

namespace {

int64_t last_used(rados_ioctx_t io, const std::string &entry, int64_t fallback)
{
    char buf[32] = {0};
    int r = rados_getxattr(io, cache_lock_object(entry).c_str(), kCacheLastUsedXattr, buf, sizeof(buf) - 1);
    return r > 0 ? atoll(buf) : fallback;
}

} // namespace

Result<std::vector<CacheEntry>> list_cache(Pool &pool)
{
    auto all = image_refs(pool);
    if (!all)
        return all.error();
    std::vector<std::string> names;
    for (auto &ref : *all)
        if (is_cache_entry(ref.name) && !is_partial_name(ref.name))
            names.push_back(std::move(ref.name));

    // Each entry is opened and asked several questions: on kCacheListWidth
    // threads, so that a big cache does not cost one entry's round trips
    // after the other.
    std::vector<std::optional<CacheEntry>> found(names.size());
    for_each_bounded(names.size(), kCacheListWidth, "listing the image cache", [&](size_t i) {
        const std::string &name = names[i];
        ImageHandle img;
        if (open_image_by_name(pool.io(), name, nullptr, true, img) < 0)
            return; // vanished meanwhile
        CacheEntry e;
        e.name = name;
        auto info = info_of_open(pool, name, img.get(), AllocMode::FastDiff);
        if (info) {
            e.size = info->capacity;
            e.stored = info->allocation;
        } else {
            rbd_get_size(img.get(), &e.size);
            e.stored = e.size;
        }
        e.source = image_metadata(img.get(), kCacheMetaSource);
        e.last_used = last_used(pool.io(), name, atoll(image_metadata(img.get(), kCacheMetaCreated).c_str()));
        auto snaps = list_snapshots(img.get());
        if (!snaps) {
            e.clones_known = false;
        } else {
            for (const auto &s : snaps.value()) {
                auto kids = children_of_snapshot(img.get(), s.id);
                if (!kids)
                    e.clones_known = false;
                else
                    e.clones += kids->size();
            }
        }
        found[i] = std::move(e);
    });
    std::vector<CacheEntry> out;
    for (auto &e : found)
        if (e)
            out.push_back(std::move(*e));
    return out;
}

Status remove_cache_entry(Pool &pool, const CacheEntry &e)
{
    {
        ImageHandle img;
        int r = open_image_by_name(pool.io(), e.name, nullptr, false, img);
        if (r < 0)
            return ceph_error(r, "failed to open " + pool.image_label(e.name));
        char id[64] = {0};
        if ((r = rbd_get_id(img.get(), id, sizeof(id))) < 0)
            return ceph_error(r, "failed to get the id of " + pool.image_label(e.name));
        auto lock = SnapshotLock::take(pool.io(), id, SnapshotLock::Kind::Remove);
        if (!lock)
            return lock.error();
        if (!lock->held())
            return plain_error(RBDC_ERR_OPERATION_INVALID, -EBUSY,
                               "a clone of " + pool.image_label(e.name) + " is under way");
        auto snaps = list_snapshots(img.get());
        if (!snaps)
            return snaps.error();
        for (const auto &s : snaps.value())
            if (auto st = remove_snapshot(img.get(), "snapshot '" + s.name + "' of " + pool.image_label(e.name), s.name);
                !st)
                return st;
    }
    int r = rbd_remove(pool.io(), e.name.c_str());
    if (r < 0)
        return ceph_error(r, "failed to remove " + pool.image_label(e.name));
    (void)rados_remove(pool.io(), cache_lock_object(e.name).c_str());
    return {};
}

void evict_cache(Pool &pool)
{
    const uint64_t limit = pool.policy().cache_max_size;
    if (limit == 0)
        return;
    auto entries = list_cache(pool);
    if (!entries) {
        log_warn("image cache of Ceph pool '", pool.id().ceph_pool, "': ", entries.error().message);
        return;
    }
    uint64_t total = 0;
    for (const auto &e : *entries)
        total += e.stored;
    if (total <= limit)
        return;
    std::sort(entries->begin(), entries->end(),
              [](const CacheEntry &a, const CacheEntry &b) { return a.last_used < b.last_used; });
    // Unused entries first, least recently used first; then, with the
    // deferred delete policy, entries with clones go to the trash.
    for (int pass = 0; pass < 2 && total > limit; pass++) {
        if (pass == 1 && pool.policy().on_delete != DeletePolicy::Deferred)
            break;
        for (const auto &e : *entries) {
            if (total <= limit)
                break;
            const bool unused = e.unused();
            if (pass == 0 && unused) {
                if (auto st = remove_cache_entry(pool, e); !st) {
                    log_warn("image cache: could not evict ", pool.image_label(e.name), ": ", st.error().message);
                    continue;
                }
                log_info("image cache: evicted ", pool.image_label(e.name), " (", e.source, ", ", e.stored,
                         " bytes stored, unused): the cache held ", total, " bytes, more than its max_size ", limit);
                total -= e.stored;
            } else if (pass == 1 && !unused) {
                if (auto st = move_to_trash(pool, e.name); !st) {
                    log_warn("image cache: could not move ", pool.image_label(e.name), " to the trash: ",
                             st.error().message);
                    continue;
                }
                (void)rados_remove(pool.io(), cache_lock_object(e.name).c_str());
                log_info("image cache: moved ", pool.image_label(e.name), " (", e.source, ", ", e.clones,
                         " clones) to the trash until its last clone is gone: the cache was over its max_size ",
                         limit);
                total -= e.stored;
            }
        }
    }
}

} // namespace rbdclone
