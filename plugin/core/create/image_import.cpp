#include "create/image_import.hpp"

#include <chrono>
#include <map>
#include <set>

#include "base/log.hpp"
#include "base/text.hpp"
#include "ceph/image_open.hpp"
#include "ceph/snapshots.hpp"
#include "lifecycle/image_activity.hpp"
#include "ceph/image_ops.hpp"

namespace rbdclone {

namespace {

constexpr int kStaleAfterSeconds = 5;

// Removes a partial image, with the snapshots a sealer may have given it
// (an image cache entry's, protected) before its rename failed.
void remove_partial(Pool &dst, const std::string &partial)
{
    // rbd_remove of a missing image is a failing open inside librbd (see
    // image_open.hpp): look first.
    int r = image_exists(dst.io(), partial);
    if (r > 0)
        r = rbd_remove(dst.io(), partial.c_str());
    else if (r == 0)
        r = -ENOENT;
    if (r == -ENOTEMPTY) {
        ImageHandle img;
        if (open_image_by_name(dst.io(), partial, nullptr, false, img) == 0) {
            if (auto snaps = list_snapshots(img.get()))
                for (const auto &s : snaps.value())
                    (void)remove_snapshot(img.get(), "snapshot '" + s.name + "' of " + dst.image_label(partial),
                                          s.name);
        }
        img.reset();
        r = rbd_remove(dst.io(), partial.c_str());
    }
    if (r < 0 && r != -ENOENT)
        log_warn("could not remove the incomplete ", dst.image_label(partial), " (", describe_rc(r),
                 "): it stays hidden and is removed at the next refresh of the pool");
}

} // namespace


Result<CopyStats> import_with(Pool &dst, const std::string &name, uint64_t capacity, uint64_t source_size,
                              const std::string &source_label, const ImageFiller &fill, const ImageSealer &seal)
{
    const std::string label = dst.image_label(name);
    if (capacity == 0)
        capacity = source_size;
    if (capacity < source_size)
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           cat("cannot create ", label, " with ", capacity, " bytes: ", source_label, " holds ",
                               source_size, " bytes"));
    if (int r = image_exists(dst.io(), name); r != 0) {
        if (r > 0)
            return plain_error(RBDC_ERR_EXISTS, -EEXIST, label + " already exists");
        return ceph_error(r, "failed to look for " + label);
    }

    const std::string partial = name + kPartialMarker + random_hex16();
    ImportMark running(dst, name, partial);
    if (auto st = create_volume(dst, partial, capacity); !st)
        return st.error();

    auto t0 = std::chrono::steady_clock::now();
    Result<CopyStats> stats = fill(partial);
    if (stats && seal) {
        if (auto st = seal(partial, *stats); !st)
            stats = st.error();
    }
    if (stats) {
        int r = rbd_rename(dst.io(), partial.c_str(), name.c_str());
        if (r == 0) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
            log_info("copied ", source_label, " into ", label, ": ", stats->bytes_read, " bytes read, ",
                     stats->bytes_written, " written, ", stats->bytes_skipped, " zero bytes skipped, in ",
                     ms.count(), " ms");
            return stats;
        }
        stats = r == -EEXIST ? plain_error(RBDC_ERR_EXISTS, r, label + " was created by someone else meanwhile")
                             : ceph_error(r, "failed to rename the completed copy to " + label);
    }
    remove_partial(dst, partial);
    return stats;
}

Result<CopyStats> import_image(Pool &dst, const std::string &name, uint64_t capacity, ByteSource &src,
                               const CopyOptions &opts, const ImageSealer &seal)
{
    return import_with(dst, name, capacity, src.size(), src.label(), [&](const std::string &partial) -> Result<CopyStats> {
        auto img = open_image(dst, partial, false);
        if (!img)
            return img.error();
        CopyOptions o = opts;
        if (o.stall_timeout.count() == 0)
            o.stall_timeout = stall_limit(dst.cluster().get());
        auto r = copy_to_image(src, img->get(), dst.image_label(name), o);
        if (!r && r.error().rc == -ETIMEDOUT)
            close_in_background(std::move(*img), dst.cluster_ptr()); // its writes may never complete
        return r;
    }, seal);
}

void remove_if_stale(Pool &pool, const std::string &partial)
{
    if (is_running_partial(pool, partial))
        return;
    {
        ImageHandle img;
        if (open_image_by_name(pool.io(), partial, nullptr, true, img) < 0)
            return;
        // Someone still writing it keeps a watch on it.
        rbd_image_watcher_t watchers[8];
        size_t n = 8;
        int r = rbd_watchers_list(img.get(), watchers, &n);
        if (r == -ERANGE || (r == 0 && n > 0)) {
            if (r == 0)
                rbd_watchers_list_cleanup(watchers, n);
            return;
        }
        timespec created{};
        if (rbd_get_create_timestamp(img.get(), &created) == 0 &&
            time(nullptr) - created.tv_sec < kStaleAfterSeconds)
            return;
    }
    log_info("removing ", pool.image_label(partial), ", left incomplete by an interrupted copy");
    remove_partial(pool, partial);
}

} // namespace rbdclone
