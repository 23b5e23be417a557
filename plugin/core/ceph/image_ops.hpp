// The basic operations on the images of one pool, which every request builds on: what the
// stock backend does, with connections reused and errors carried as values.
#pragma once

#include <cstdint>
#include <string>

#include "ceph/encryption.hpp"
#include "ceph/image_info.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

struct PoolUsage {
    uint64_t capacity = 0, available = 0, allocation = 0;
};

Result<PoolUsage> pool_usage(Pool &pool);

// With key, its encryption loaded: reads and writes are the guest's bytes.
Result<ImageHandle> open_image(Pool &pool, const std::string &name, bool read_only,
                               const VolumeKey *key = nullptr);

Status create_volume(Pool &pool, const std::string &name, uint64_t capacity);

// The value of an image's metadata key ("" when it has none or cannot be read).
std::string image_metadata(rbd_image_t img, const char *key);

// capacity: what the guest sees (an encrypted image keeps its header, no key needed).
Status resize_volume(Pool &pool, const std::string &name, uint64_t capacity, bool allow_shrink);

} // namespace rbdclone
