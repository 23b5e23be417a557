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

std::string head_snap_arg()
{
    // CEPH_NOSNAP = (uint64_t)-2, little-endian.
    std::string s(8, '\xff');
    s[0] = '\xfe';
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

std::optional<std::string> decode_id(const char *buf, size_t len)
{
    if (!buf || len < 4)
        return std::nullopt;
    const uint32_t n = le32(buf);
    // librbd's ids are short hex strings; anything else is not an id.
    if (n == 0 || n > 64 || n != len - 4)
        return std::nullopt;
    return std::string(buf + 4, n);
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

} // namespace rbdclone::wire
