// What happens to a volume after it is made: what libvirt sees of it (also while it is
// copied in), delete (clone-aware, deferred through the trash) and wipe. The basic operations are ceph/image_ops.hpp's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ceph/image_ops.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

// What libvirt shows of a volume; of one being copied in, its hidden partial image.
Result<VolumeInfo> volume_info(Pool &pool, const std::string &name, AllocMode mode);

// Returns true when the image was removed, false when it did not exist.
Result<bool> delete_volume(Pool &pool, const std::string &name, bool delete_snapshots);

enum class WipeMode { Zero, Trim };
Status wipe_volume(Pool &pool, const std::string &name, WipeMode mode, const VolumeKey *key = nullptr);

} // namespace rbdclone
