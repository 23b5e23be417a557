// Creating a volume from an image: vol-create-from, vol-clone and
// vol-create with a <backingStore>.  Gathers the facts, asks decide_clone,
// clones when it says so, and otherwise copies the image's guest-visible
// bytes into a new raw image (converting containers with qemu).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ceph/pool.hpp"
#include "create/copy_engine.hpp"
#include "create/plan.hpp"

namespace rbdclone {

struct SourceSpec {
    bool is_rbd = false;
    std::string kind;              // non-RBD: "file", "block device", ...
    std::string path;              // non-RBD: the volume's path
    std::shared_ptr<Pool> pool;    // RBD source in a pool we serve
    std::string ceph_pool;         // RBD source named by location (no pool)
    std::string fsid;              // from an rbd:// location
    std::string image;
    std::string snap;
    std::string declared_format;   // "" = none declared
};

struct CreateOutcome {
    Decision decision;
    CopyStats copied; // zero for a clone
};

Result<CreateOutcome> create_volume_from(Pool &dst, const std::string &dst_name, uint64_t capacity,
                                         const SourceSpec &src, bool reflink);

// A failed create leaves nothing under dst_name (copies write to a hidden
// image, clones are created last), yet libvirt undoes a failed build by
// deleting dst_name.  That delete must not touch an image someone else
// owns under that name, nor wait for a cluster that just timed out: the
// failure is remembered for a minute and the delete is answered from it.
void remember_failed_create(const Pool &dst, const std::string &dst_name);
bool forget_failed_create(const Pool &dst, const std::string &dst_name);

} // namespace rbdclone
