// Convert once, clone forever: with <rbd:image_cache enabled='yes'/> on the
// destination pool, a source that cannot be cloned directly is copied (and
// converted) once into a hidden raw "entry" image of the destination Ceph
// pool, named rbdclone-cache-<hash of the source's identity>; every request
// clones the entry's snapshot.  An entry is never listed as a volume.
//
// Identity: a file by device, inode, size, mtime and ctime (nanoseconds)
// and the format read; an RBD image by cluster fsid, pool, image id and
// snapshot id (an image head can change under the same identity, so only a
// named snapshot is cached).  A changed source has another identity, hence
// another entry: never stale bytes.  The identity is stored with the entry
// (and compared on every hit), with a checksum of the bytes computed during
// the one copy.
//
// Concurrency: one conversion per entry across daemons, under a RADOS lock
// on an object of the destination pool; the others wait for the entry.
// Eviction (lifecycle/image_cache_admin.hpp, with the listing and removal that
// tools/rbdclone-cache uses): past max_size, least recently used entries without clones
// are removed after a fill.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ceph/location.hpp"
#include "ceph/names.hpp"
#include "ceph/pool.hpp"
#include "io/copy_engine.hpp"
#include "create/image_import.hpp"

namespace rbdclone {

struct CacheIdentity {
    std::string key;         // proves the bytes unchanged; "" = not cacheable
    std::string description; // what the source is, for operators
    std::string why_not;     // when key is empty
};

CacheIdentity file_cache_identity(const std::string &path, const std::string &format);
// src opened at `snap` (may be empty: then not cacheable).
CacheIdentity rbd_cache_identity(rbd_image_t src, const RbdLocation &where, const std::string &format);

std::string cache_entry_name(const std::string &key);

// Fills the entry: must create image `entry` through import_with/import_image
// with the given sealer (which stamps the identity and the snapshot before
// the entry becomes visible) and CopyOptions::checksum set.
using EntryFiller = std::function<Result<CopyStats>(const std::string &entry, const ImageSealer &seal)>;

struct CacheOutcome {
    bool hit = false;
    std::string entry;
    uint64_t size = 0; // the entry's (the guest-visible bytes of the source)
};

// Clones dst_name from the entry of `id`, filling the entry first when it
// does not exist (or waiting for another daemon filling it).
Result<CacheOutcome> clone_through_cache(const std::shared_ptr<Pool> &dst_pool, const std::string &dst_name,
                                         uint64_t capacity, const CacheIdentity &id, const EntryFiller &fill);

} // namespace rbdclone
