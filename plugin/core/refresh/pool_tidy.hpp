// The housekeeping of a pool, done once per refresh: partial images left by
// copies that died (image_import.hpp) are removed, images deleted with the
// deferred policy whose last clone is gone are purged from the trash
// (deferred_delete.hpp), and flattens cut short by a stop or a crash are
// resumed (flatten.hpp).  Best effort: what fails is logged and tried again
// at the next refresh.
#pragma once

#include <memory>
#include <vector>

#include "ceph/image_info.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

// Threads that tidy at once (each opens one image at a time).
inline constexpr size_t kTidyWidth = 8;

// `images`: the pool's images, as just listed.
void tidy_pool(const std::shared_ptr<Pool> &pool, const std::vector<ListedImage> &images);

} // namespace rbdclone
