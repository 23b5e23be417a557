// Operations on the images of one pool: what the stock backend does, with
// connections reused and errors carried as values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ceph/image_info.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

struct PoolUsage {
    uint64_t capacity = 0, available = 0, allocation = 0;
};

Result<PoolUsage> pool_usage(Pool &pool);

Result<ImageHandle> open_image(Pool &pool, const std::string &name, bool read_only);

Result<VolumeInfo> volume_info(Pool &pool, const std::string &name, AllocMode mode);

Status create_volume(Pool &pool, const std::string &name, uint64_t capacity);

// Returns true when the image was removed, false when it did not exist.
Result<bool> delete_volume(Pool &pool, const std::string &name, bool delete_snapshots);

Status resize_volume(Pool &pool, const std::string &name, uint64_t capacity, bool allow_shrink);

enum class WipeMode { Zero, Trim };
Status wipe_volume(Pool &pool, const std::string &name, WipeMode mode);

} // namespace rbdclone
