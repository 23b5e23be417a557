#include "ceph/rbd_wire.hpp"

#include <algorithm>
#include <cstring>

namespace rbdclone::wire {

namespace {

uint64_t le64(const char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

uint32_t le32(const char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

} // namespace

std::string snap_arg(uint64_t snap_id)
{
    std::string s(8, '\0');
    for (int i = 0; i < 8; i++)
        s[i] = static_cast<char>((snap_id >> (8 * i)) & 0xff);
    return s;
}

std::optional<SizeReply> decode_size(const char *buf, size_t len)
{
    if (!buf || len < 9)
        return std::nullopt;
    SizeReply r{static_cast<uint8_t>(buf[0]), le64(buf + 1)};
    if (r.order < 12 || r.order > 26) // the object sizes RBD accepts: 4 KiB .. 64 MiB
        return std::nullopt;
    return r;
}

std::optional<uint64_t> decode_u64(const char *buf, size_t len)
{
    if (!buf || len < 8)
        return std::nullopt;
    return le64(buf);
}

std::optional<std::string> decode_string(const char *buf, size_t len)
{
    if (!buf || len < 4)
        return std::nullopt;
    const uint32_t n = le32(buf);
    if (n != len - 4)
        return std::nullopt;
    return std::string(buf + 4, n);
}

std::optional<std::string> decode_id(const char *buf, size_t len)
{
    auto id = decode_string(buf, len);
    // librbd's ids are short hex strings; anything else is not an id.
    if (id && (id->empty() || id->size() > 64))
        return std::nullopt;
    return id;
}

std::optional<uint8_t> decode_u8(const char *buf, size_t len)
{
    if (!buf || len != 1)
        return std::nullopt;
    return static_cast<uint8_t>(buf[0]);
}

std::optional<SnapContext> decode_snapcontext(const char *buf, size_t len)
{
    if (!buf || len < 12)
        return std::nullopt;
    SnapContext c;
    c.seq = le64(buf);
    const uint32_t n = le32(buf + 8);
    if (len != 12 + size_t{n} * 8)
        return std::nullopt;
    c.snaps.reserve(n);
    for (uint32_t i = 0; i < n; i++) {
        c.snaps.push_back(le64(buf + 12 + size_t{i} * 8));
        // A valid context: ids below the sequence, newest first.
        if (c.snaps.back() > c.seq || (i > 0 && c.snaps[i] >= c.snaps[i - 1]))
            return std::nullopt;
    }
    return c;
}

std::optional<int64_t> decode_parent_pool(const char *buf, size_t len)
{
    // u8 version, u8 compat (1), u32 length, then the i64 pool id.
    if (!buf || len < 14 || static_cast<unsigned char>(buf[0]) < 1 || static_cast<unsigned char>(buf[1]) != 1 ||
        le32(buf + 2) != len - 6)
        return std::nullopt;
    return static_cast<int64_t>(le64(buf + 6));
}

std::optional<StripeReply> decode_stripe(const char *buf, size_t len)
{
    if (!buf || len < 16)
        return std::nullopt;
    StripeReply r{le64(buf), le64(buf + 8)};
    if (r.unit == 0 || r.count == 0)
        return std::nullopt;
    return r;
}

uint64_t object_count(uint64_t size, uint64_t object_size, uint64_t stripe_unit, uint64_t stripe_count)
{
    if (object_size == 0)
        return 0;
    if (stripe_count <= 1 || stripe_unit == 0)
        return (size + object_size - 1) / object_size;
    // A period is stripe_count objects; the last, partial period may not
    // reach every object of it.
    const uint64_t period = object_size * stripe_count;
    const uint64_t periods = (size + period - 1) / period;
    const uint64_t rest = size % period;
    uint64_t unreached = 0;
    if (rest > 0 && rest < stripe_count * stripe_unit)
        unreached = stripe_count - (rest + stripe_unit - 1) / stripe_unit;
    return periods * stripe_count - unreached;
}

std::optional<uint64_t> object_map_entries(const char *header, size_t len)
{
    // u32 length of the encoded header (14), then ENCODE_START(1, 1):
    // u8 version, u8 compat, u32 length (8), then the u64 count.
    if (!header || len < kObjectMapHeader)
        return std::nullopt;
    if (le32(header) != 14 || header[4] != 1 || header[5] != 1 || le32(header + 6) != 8)
        return std::nullopt;
    return le64(header + 10);
}

uint64_t allocated_bytes(const unsigned char *bits, size_t len, uint64_t first, uint64_t entries,
                         uint64_t size, uint64_t object_size)
{
    uint64_t used = 0;
    for (size_t b = 0; b < len; b++) {
        if (bits[b] == 0) // four nonexistent objects
            continue;
        for (int k = 0; k < 4; k++) {
            const uint64_t obj = first + b * 4 + k;
            if (obj >= entries)
                return used;
            const unsigned state = (bits[b] >> ((3 - k) * 2)) & 3;
            const uint64_t off = obj * object_size;
            if (state != 0 && off < size)
                used += std::min(object_size, size - off);
        }
    }
    return used;
}

std::optional<bool> head_equals_newest_snapshot(const char *head_map, size_t head_len, const char *snap_map,
                                                size_t snap_len, uint64_t objects)
{
    const size_t bytes = static_cast<size_t>((objects + 3) / 4);
    auto head_entries = object_map_entries(head_map, head_len);
    auto snap_entries = object_map_entries(snap_map, snap_len);
    if (!head_entries || !snap_entries || *head_entries != objects || *snap_entries != objects ||
        head_len < kObjectMapHeader + bytes || snap_len < kObjectMapHeader + bytes)
        return std::nullopt;
    const auto *h = reinterpret_cast<const unsigned char *>(head_map + kObjectMapHeader);
    const auto *sn = reinterpret_cast<const unsigned char *>(snap_map + kObjectMapHeader);
    for (uint64_t obj = 0; obj < objects; obj++) {
        const size_t b = static_cast<size_t>(obj / 4);
        const unsigned shift = static_cast<unsigned>((3 - obj % 4) * 2);
        const unsigned head = (h[b] >> shift) & 3, snap = (sn[b] >> shift) & 3;
        if (head == kObjectNonexistent ? snap != kObjectNonexistent
                                       : head != kObjectExistsClean || snap == kObjectNonexistent)
            return false;
    }
    return true;
}

} // namespace rbdclone::wire
