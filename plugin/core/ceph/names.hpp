// Every name this module gives to something on a Ceph cluster, and the
// names of librbd's own objects it reads, in one place: an operator (or the
// next engineer) finds here what an image, snapshot, metadata key, lock or
// RADOS object of ours is called.  Renaming any of them strands what older
// versions left on clusters, so they do not change.
//
// Also: which names a new RBD image may have.  RBD itself accepts almost
// anything, but the name must also be addressable unambiguously by libvirt
// ("pool/image" paths), by qemu (which reads '@' as a snapshot separator and
// ':' as an option separator in its rbd: filenames) and by the cluster (the
// rbd_id.<name> object's name is limited).
#pragma once

#include <cstdint>
#include <string>

namespace rbdclone {

// --- images ------------------------------------------------------------------

// A copy is written into "<name>.rbdclone-partial-<16 hex digits>", renamed
// to <name> once complete (image_import.hpp); never listed as a volume.
inline constexpr const char kPartialMarker[] = ".rbdclone-partial-";
bool is_partial_name(const std::string &image);

// An image-cache entry: "rbdclone-cache-<32 hex digits of its identity>"
// (image_cache.hpp); never listed as a volume.
inline constexpr const char kCachePrefix[] = "rbdclone-cache-";
bool is_cache_entry(const std::string &image);

// --- snapshots -----------------------------------------------------------------

// Our clone parents: "rbdclone-base" (an image without snapshots) and
// "rbdclone-after-<id of the newest snapshot>" (snapshots.hpp).  Only these
// are ever removed by the module without being asked.
inline constexpr const char kOurSnapshotPrefix[] = "rbdclone-";
bool is_our_snapshot(const std::string &name);
std::string first_snapshot_name();
std::string snapshot_after_name(uint64_t newest_snapshot_id);
// The snapshot every image-cache entry is cloned from: kept while the entry
// lives, whether or not it has clones.
inline constexpr const char kCacheSnapshot[] = "rbdclone-cache";

// --- image metadata keys ----------------------------------------------------------

// On an image this module moved to the trash (deferred_delete.hpp): when.
inline constexpr const char kDeferredMetaKey[] = "rbdclone.deferred-delete";
// On an image-cache entry: what it holds and since when.
inline constexpr const char kCacheMetaIdentity[] = "rbdclone.cache.identity";
inline constexpr const char kCacheMetaSource[] = "rbdclone.cache.source";
inline constexpr const char kCacheMetaChecksum[] = "rbdclone.cache.checksum";
inline constexpr const char kCacheMetaChecksumOf[] = "rbdclone.cache.checksum_of";
inline constexpr const char kCacheMetaCreated[] = "rbdclone.cache.created";

// --- RADOS objects and locks of ours --------------------------------------------

// Per image-cache entry: its lock (one fill across daemons) and, as an
// xattr, its last use.
std::string cache_lock_object(const std::string &entry);
inline constexpr const char kCacheFillLock[] = "fill";
inline constexpr const char kCacheLastUsedXattr[] = "last_used";
// Per source image: shared by clones from one of our snapshots, exclusive
// for the removal of an unused one (snapshot_lock.hpp).
std::string snapshot_lock_object(const std::string &image_id);
inline constexpr const char kSnapshotLock[] = "snapshots";
inline constexpr const char kSnapshotLockCloneTag[] = "clone";
// Per Ceph pool: the flattens decided and not yet done, as omap keys
// (flatten.hpp).
inline constexpr const char kFlattenPendingObject[] = "rbdclone_flatten_pending";

// --- librbd's own objects (src/librbd/Utils.h, src/include/rbd_types.h) -----------

std::string rbd_id_object(const std::string &image);            // format 2: name -> id
std::string rbd_v1_header_object(const std::string &image);     // format 1
std::string rbd_header_object(const std::string &image_id);     // format 2
std::string rbd_object_map_object(const std::string &image_id); // format 2, head
std::string rbd_object_map_object(const std::string &image_id, uint64_t snap_id); // of a snapshot
// Data object `object_no` of a format 2 image whose object prefix is `prefix`.
std::string rbd_data_object(const std::string &prefix, uint64_t object_no);

// --- names of new images -------------------------------------------------------------

// Longest image name: osd_max_object_name_len (2048) minus "rbd_id.".
inline constexpr size_t kMaxImageNameBytes = 2041;

// Why `name` cannot name a new image, or "" when it can.
std::string image_name_problem(const std::string &name);

} // namespace rbdclone
