// Where an RBD image is (RbdLocation), the same opened for reading (RbdPlace), and where a
// <backingStore> (or a Glance-style location) points in Ceph:
//   "pool/image", "pool/image@snap", "rbd://FSID/POOL/IMAGE/SNAP"
// (a "rbd:pool/image" qemu-style prefix is accepted too).
#pragma once

#include <rados/librados.h>

#include <optional>
#include <string>

#include "base/status.hpp"
#include "ceph/cluster.hpp"

namespace rbdclone {

// Where an RBD image is: its cluster, Ceph pool, RADOS namespace, name and snapshot.
struct RbdLocation {
    std::string fsid;   // empty when not given (the cluster of the pool asking)
    std::string pool;
    std::string ns;     // the RADOS namespace: "" (the default one, the only one libvirt's rbd
                        // pools have)
    std::string image;
    std::string snap;   // empty: the head
    // "RBD image 'pool/image'" ('pool/ns/image' in a namespace).
    std::string label() const;
    // label(), and " at snapshot 'snap'" when one is given.
    std::string label_at() const;
};

Result<RbdLocation> parse_rbd_location(const std::string &text);

// A location opened for reading: an I/O context on its Ceph pool (and namespace), held by a
// pool of this daemon or by the request that opened it, which outlives this, and how qemu
// reaches its cluster.
struct RbdPlace {
    RbdLocation where;
    rados_ioctx_t io = nullptr;
    const ClusterParams *params = nullptr;
    std::string label() const { return where.label(); }
};

} // namespace rbdclone
