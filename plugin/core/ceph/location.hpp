// Where a <backingStore> (or a Glance-style location) points in Ceph:
//   "pool/image", "pool/image@snap", "rbd://FSID/POOL/IMAGE/SNAP"
// (a "rbd:pool/image" qemu-style prefix is accepted too).
#pragma once

#include <optional>
#include <string>

#include "base/status.hpp"

namespace rbdclone {

struct RbdLocation {
    std::string fsid;   // empty when not given
    std::string pool;
    std::string image;
    std::string snap;   // empty when not given
};

Result<RbdLocation> parse_rbd_location(const std::string &text);

} // namespace rbdclone
