#include "refresh/pool_refresh.hpp"

#include <optional>

#include "base/log.hpp"
#include "ceph/names.hpp"
#include "refresh/pool_tidy.hpp"

namespace rbdclone {

Status refresh_pool(const std::shared_ptr<Pool> &shared, AllocMode mode,
                    const std::function<bool(const std::string &, const VolumeInfo &)> &cb)
{
    Pool &pool = *shared;
    auto all = image_refs(pool);
    if (!all)
        return all.error();
    tidy_pool(shared, *all);
    std::vector<ListedImage> volumes;
    volumes.reserve(all->size());
    for (auto &ref : *all)
        if (!is_partial_name(ref.name) && !is_cache_entry(ref.name)) // the image cache's, never volumes
            volumes.push_back(std::move(ref));
    all->clear();
    all->shrink_to_fit();

    std::optional<Error> failed;
    bool aborted = false;
    scan_images(pool, volumes, mode, [&](size_t i, const Result<VolumeInfo> &info) {
        const std::string &name = volumes[i].name;
        if (!info) {
            // Expected race: an image may be deleted between list and read;
            // an image whose header PG is unavailable times out.  Skip both.
            int rc = info.error().rc;
            if (rc == -ENOENT || rc == -ETIMEDOUT) {
                log_debug("skipping ", pool.image_label(name), ": ", info.error().message);
                return true;
            }
            failed = info.error();
            return false;
        }
        aborted = !cb(name, info.value());
        return !aborted;
    });
    if (failed)
        return *failed;
    if (aborted)
        return plain_error(RBDC_ERR_INTERNAL, -ECANCELED, "volume listing aborted");
    return {};
}

} // namespace rbdclone
