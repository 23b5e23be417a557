// Where an RBD image is, opened for reading: an I/O context on its Ceph pool, what qemu needs
// to reach its cluster, and the connection behind both, kept alive by every copy.
#pragma once

#include <rados/librados.h>

#include <memory>
#include <string>

#include "base/status.hpp"
#include "ceph/location.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

struct RbdPlace {
    RbdLocation where;
    rados_ioctx_t io = nullptr;            // null: no pool of this daemon reaches its cluster
    const ClusterParams *params = nullptr;
    std::string label() const { return where.label(); }
    bool reachable() const { return io != nullptr; }

    // What keeps io and params valid: the pool of this daemon whose connection reads it, and
    // the I/O context opened for it when that pool's own is on another Ceph pool.
    std::shared_ptr<Pool> reader;
    std::shared_ptr<IoCtxHandle> own_io;
};

// A volume (image) of a pool of this daemon, read through that pool.
RbdPlace place_in_pool(const std::shared_ptr<Pool> &pool, const std::string &image);

// A location read through `asking`'s connection (no fsid, or the same cluster) or through the
// pool of this daemon that serves its cluster; not reachable (io null, where.fsid filled) when
// none does. An error when its Ceph pool cannot be opened.
Result<RbdPlace> open_place(RbdLocation where, const std::shared_ptr<Pool> &asking);

// A snapshot of an image of `pool` (an image cache entry's).
RbdPlace place_at_snapshot(const std::shared_ptr<Pool> &pool, const std::string &image, const std::string &snap);

} // namespace rbdclone
