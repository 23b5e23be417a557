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


HiddenImage::HiddenImage(Pool &dst, std::string name)
    : dst_(dst), name_(std::move(name)), partial_(name_ + kPartialMarker + random_hex16()),
      running_(std::make_unique<ImportMark>(dst_, name_, partial_))
{
}

Result<std::unique_ptr<HiddenImage>> HiddenImage::reserve(Pool &dst, const std::string &name)
{
    const std::string label = dst.image_label(name);
    if (int r = image_exists(dst.io(), name); r != 0) {
        if (r > 0)
            return plain_error(RBDC_ERR_EXISTS, -EEXIST, label + " already exists");
        return ceph_error(r, "failed to look for " + label);
    }
    return std::unique_ptr<HiddenImage>(new HiddenImage(dst, name));
}

HiddenImage::~HiddenImage()
{
    if (!published_)
        remove_partial(dst_, partial_);
}

Status HiddenImage::publish()
{
    int r = rbd_rename(dst_.io(), partial_.c_str(), name_.c_str());
    if (r == -EEXIST)
        return plain_error(RBDC_ERR_EXISTS, r, dst_.image_label(name_) + " was created by someone else meanwhile");
    if (r < 0)
        return ceph_error(r, "failed to rename the completed " + dst_.image_label(partial_) + " to " +
                                 dst_.image_label(name_));
    published_ = true;
    return {};
}

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
    auto hidden = HiddenImage::reserve(dst, name);
    if (!hidden)
        return hidden.error();
    const std::string &partial = (*hidden)->partial();
    if (auto st = create_volume(dst, partial, capacity); !st)
        return st.error();

    auto t0 = std::chrono::steady_clock::now();
    Result<CopyStats> stats = fill(partial);
    if (stats && seal)
        if (auto st = seal(partial, *stats); !st)
            return st.error();
    if (!stats)
        return stats;
    if (auto st = (*hidden)->publish(); !st)
        return st.error();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    log_info("copied ", source_label, " into ", label, ": ", stats->bytes_read, " bytes read, ",
             stats->bytes_written, " written, ", stats->bytes_skipped, " zero bytes skipped, in ", ms.count(),
             " ms");
    return stats;
}

Result<CopyStats> import_image(Pool &dst, const std::string &name, uint64_t capacity, ByteSource &src,
                               const CopyOptions &opts, const ImageSealer &seal, const VolumeKey *key)
{
    const uint64_t guest_size = capacity ? capacity : src.size();
    return import_with(dst, name, capacity, src.size(), src.label(), [&](const std::string &partial) -> Result<CopyStats> {
        auto img = open_image(dst, partial, false);
        if (!img)
            return img.error();
        CopyOptions o = opts;
        if (key) {
            auto header = format_image(img->get(), *key, guest_size, dst.image_label(name));
            if (!header)
                return header.error();
            rbd_image_info_t info;
            if (int r = rbd_stat(img->get(), &info, sizeof(info)); r < 0)
                return ceph_error(r, "failed to stat " + dst.image_label(partial));
            o.dense_unit = o.chunk = o.zero_block = info.obj_size;
            o.dense_phase = *header;
        }
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
