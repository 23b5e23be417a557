#include "requests.hpp"

#include "base/log.hpp"
#include "ceph/image_ops.hpp"
#include "create/image_import.hpp"
#include "lifecycle/flatten.hpp"
#include "lifecycle/image_activity.hpp"
#include "stream/transfer.hpp"

namespace rbdclone {

namespace {

// A flatten in the background holds an image for as long as copying its
// parent's data takes; a request on the image waits that long at most.
constexpr int kFlattenWaitSeconds = 600;

} // namespace

Result<PoolUsage> pool_stat_request(Pool &pool) { return pool_usage(pool); }

Status pool_list_request(const std::shared_ptr<Pool> &pool, AllocMode mode,
                         const std::function<bool(const std::string &, const VolumeInfo &)> &cb)
{
    return refresh_pool(pool, mode, cb);
}

Result<VolumeInfo> volume_info_request(Pool &pool, const std::string &name, AllocMode mode)
{
    return volume_info(pool, name, mode);
}

Status create_request(Pool &pool, const std::string &name, uint64_t capacity, const VolumeKey *key)
{
    if (!key)
        return create_volume(pool, name, capacity);
    auto hidden = HiddenImage::reserve(pool, name);
    if (!hidden)
        return hidden.error();
    if (auto st = create_volume(pool, (*hidden)->partial(), capacity); !st)
        return st;
    {
        auto img = open_image(pool, (*hidden)->partial(), false);
        if (!img)
            return img.error();
        if (auto h = format_image(img->get(), *key, capacity, pool.image_label(name)); !h)
            return h.error();
    }
    return (*hidden)->publish();
}

Status create_from_request(const std::shared_ptr<Pool> &dst, const std::string &name, uint64_t capacity,
                           const SourceRequest &src, const VolumeKey *key, bool reflink)
{
    return CreateRequest(dst, name, capacity, src, key, reflink).run();
}

Result<bool> delete_request(Pool &pool, const std::string &name, bool delete_snapshots)
{
    if (forget_failed_create(pool, name))
        return false; // libvirt undoing our failed create: nothing of ours is there
    wait_for_uploads(pool, name);
    wait_for_activity(pool, name, Activity::Flatten, kFlattenWaitSeconds);
    return delete_volume(pool, name, delete_snapshots);
}

Status resize_request(Pool &pool, const std::string &name, uint64_t capacity, bool allow_shrink)
{
    wait_for_uploads(pool, name);
    return resize_volume(pool, name, capacity, allow_shrink);
}

Status flatten_request(Pool &pool, const std::string &name)
{
    wait_for_uploads(pool, name);
    wait_for_activity(pool, name, Activity::Flatten, kFlattenWaitSeconds);
    auto s = flatten_volume(pool, name);
    if (!s)
        return s.error();
    if (!s.value())
        log_info(pool.image_label(name), " has no parent: nothing to flatten");
    return {};
}

Status wipe_request(Pool &pool, const std::string &name, WipeMode mode, const VolumeKey *key)
{
    wait_for_uploads(pool, name);
    return wipe_volume(pool, name, mode, key);
}

Result<std::unique_ptr<UploadIntake>> upload_request(const std::shared_ptr<Pool> &pool, const std::string &name,
                                                     uint64_t offset, uint64_t length, const VolumeKey *key)
{
    return start_upload(pool, name, offset, length, key);
}

Result<std::shared_ptr<DownloadStream>> download_request(const std::shared_ptr<Pool> &pool, const std::string &name,
                                                         uint64_t offset, uint64_t length, bool sparse,
                                                         const VolumeKey *key)
{
    wait_for_uploads(*pool, name);
    return start_download(pool, name, offset, length, sparse, key);
}

} // namespace rbdclone
