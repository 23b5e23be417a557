// What a pool refresh (or a volume's refresh) reads of an RBD image without
// opening it: the replies of the OSD's "rbd" object class (get_id on the
// image's id object; get_size, get_features, get_flags,
// get_stripe_unit_count on its header object), and the image's object map
// (rbd_object_map.<id>), which is a Ceph BitVector<2>.
//
// Opening an image costs librbd ~2 ms of client CPU (an image context and a
// copy of the configuration); these reads cost one round trip per image and
// almost no CPU, so many run at once.  The formats are Ceph's wire format
// (little-endian integers; ENCODE_START headers), stable because every
// released client decodes them.  Every decoder checks lengths and versions and
// answers "unknown" (std::nullopt) for anything else: the caller then asks
// librbd itself, so a future format costs speed, never a wrong answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rbdclone::wire {

// CEPH_NOSNAP: the image head, where a class method asks for a snapshot id.
inline constexpr uint64_t kHeadSnapId = 0xfffffffffffffffeull;
// A snapshot id (or kHeadSnapId) as the class methods' argument (u64).
std::string snap_arg(uint64_t snap_id);

struct SizeReply {
    uint8_t order = 0;  // object size = 1 << order
    uint64_t size = 0;
};
std::optional<SizeReply> decode_size(const char *buf, size_t len);
// get_features (first field), get_flags.
std::optional<uint64_t> decode_u64(const char *buf, size_t len);

// get_id on rbd_id.<name>: the image's id (a u32 length, then the bytes).
std::optional<std::string> decode_id(const char *buf, size_t len);

// get_object_prefix, get_snapshot_name: a u32 length, then the bytes.
std::optional<std::string> decode_string(const char *buf, size_t len);
// get_protection_status: one byte (0 unprotected, 1 unprotecting, 2 protected).
std::optional<uint8_t> decode_u8(const char *buf, size_t len);

// get_snapcontext: the snapshot sequence (u64), then a u32 count of
// snapshot ids (u64 each, newest first).
struct SnapContext {
    uint64_t seq = 0;
    std::vector<uint64_t> snaps;
};
std::optional<SnapContext> decode_snapcontext(const char *buf, size_t len);

// parent_get: a cls::rbd::ParentImageSpec, ENCODE_START(1, 1) then the
// parent's pool id (i64; -1: the image has no parent), its namespace,
// image id and snapshot id.  The pool id only.
std::optional<int64_t> decode_parent_pool(const char *buf, size_t len);

struct StripeReply {
    uint64_t unit = 0, count = 0;
};
std::optional<StripeReply> decode_stripe(const char *buf, size_t len);

// What librbd's rbd_stat() reports as num_objs (Striper::get_num_objects).
uint64_t object_count(uint64_t size, uint64_t object_size, uint64_t stripe_unit, uint64_t stripe_count);

// The object map: an 18-byte header (u32 14, ENCODE_START(1,1), u64 number
// of entries) then 2 bits per object, the first object in the high bits.
inline constexpr size_t kObjectMapHeader = 18;
std::optional<uint64_t> object_map_entries(const char *header, size_t len);

// Bytes of data held by objects [first, first + 4 * len) whose map bytes
// are `bits`, as rbd_diff_iterate2(whole_object) counts them for the head of
// an image of `size` bytes with plain striping: every object not
// OBJECT_NONEXISTENT, the last one cut at the image's end.
uint64_t allocated_bytes(const unsigned char *bits, size_t len, uint64_t first, uint64_t entries,
                         uint64_t size, uint64_t object_size);

// The object map states (librbd's OBJECT_*).
inline constexpr unsigned kObjectNonexistent = 0, kObjectExists = 1, kObjectPending = 2, kObjectExistsClean = 3;

// Whether the head of an image still holds what its newest snapshot holds,
// from their fast-diff object maps (as read: header, then the bits) for
// `objects` objects: no object written since the snapshot (OBJECT_EXISTS in
// the head: dirty), none being removed (PENDING), none removed or added.
// What rbd_diff_iterate2(from that snapshot, whole_object) finds with
// fast-diff.  nullopt when either map is not one of `objects` entries.
std::optional<bool> head_equals_newest_snapshot(const char *head_map, size_t head_len, const char *snap_map,
                                                size_t snap_len, uint64_t objects);

} // namespace rbdclone::wire
