// Where an RBD image is (RbdLocation; opened for reading: rbd_place.hpp), and where a
// <backingStore> (or a Glance-style location) points in Ceph:
//   "pool/image", "pool/image@snap", "rbd://FSID/POOL/IMAGE/SNAP"
// (a "rbd:pool/image" qemu-style prefix is accepted too).
#pragma once

#include <optional>
#include <string>

#include "base/status.hpp"

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

} // namespace rbdclone
