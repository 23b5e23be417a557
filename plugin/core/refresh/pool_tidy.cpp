#include "refresh/pool_tidy.hpp"

#include "base/parallel.hpp"
#include "create/image_import.hpp"
#include "lifecycle/deferred_delete.hpp"
#include "lifecycle/flatten.hpp"

namespace rbdclone {

void tidy_pool(const std::shared_ptr<Pool> &shared, const std::vector<ListedImage> &images)
{
    Pool &pool = *shared;
    std::vector<std::string> partials;
    for (const auto &ref : images)
        if (is_partial_name(ref.name))
            partials.push_back(ref.name);
    for_each_bounded(partials.size(), kTidyWidth, "removing stale partial images",
                     [&](size_t i) { remove_if_stale(pool, partials[i]); });

    // Only ever images marked as deferred by us are purged.
    const auto trashed = deferred_candidates(pool);
    for_each_bounded(trashed.size(), kTidyWidth, "purging deferred deletes",
                     [&](size_t i) { purge_if_unused(pool.io(), pool.id().ceph_pool, trashed[i]); });

    resume_pending_flattens(shared);
}

} // namespace rbdclone
