// A pool refresh (libvirt's refreshPool, also at pool-start): the pool's
// images listed once, the pool tidied (pool_tidy.hpp), then every image that
// is a volume read (image_info.hpp).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ceph/image_info.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

// Calls cb for every image that is a volume (not a partial copy, not an
// image cache entry), in rbd_list2's order, from the calling thread; images
// that vanish mid-listing or whose header times out are skipped.  cb
// returning false aborts the refresh (an error).
Status refresh_pool(const std::shared_ptr<Pool> &pool, AllocMode mode,
                    const std::function<bool(const std::string &, const VolumeInfo &)> &cb);

} // namespace rbdclone
