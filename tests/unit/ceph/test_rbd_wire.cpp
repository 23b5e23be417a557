// The decoders of rbd_wire.hpp: what a refresh reads of an image without
// opening it.  The object map below is the head of a real one (Ceph 16.2,
// a 1 GiB image with 4 MiB objects and one 64 KiB write at 4 MiB).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ceph/rbd_wire.hpp"

using namespace rbdclone::wire;

namespace {

std::string le64(uint64_t v)
{
    std::string s;
    for (int i = 0; i < 8; i++)
        s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
}

std::string map_header(uint64_t entries)
{
    return std::string("\x0e\x00\x00\x00\x01\x01\x08\x00\x00\x00", 10) + le64(entries);
}

} // namespace

TEST(RbdWire, HeadSnapshotArgumentIsCephNoSnapLittleEndian)
{
    EXPECT_EQ(snap_arg(kHeadSnapId), le64(0xfffffffffffffffeull));
}

TEST(RbdWire, SizeReplyIsOrderThenSize)
{
    std::string reply = std::string(1, '\x16') + le64(1ull << 30);
    auto r = decode_size(reply.data(), reply.size());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->order, 22);
    EXPECT_EQ(r->size, 1ull << 30);
}

TEST(RbdWire, ShortOrImpossibleRepliesAreUnknownNotGuessed)
{
    std::string reply = std::string(1, '\x16') + le64(5);
    EXPECT_FALSE(decode_size(reply.data(), 8));
    EXPECT_FALSE(decode_size(nullptr, 0));
    std::string bad_order = std::string(1, '\x40') + le64(5);
    EXPECT_FALSE(decode_size(bad_order.data(), bad_order.size()));
    EXPECT_FALSE(decode_u64("1234567", 7));
    std::string zero_stripe = le64(0) + le64(1);
    EXPECT_FALSE(decode_stripe(zero_stripe.data(), zero_stripe.size()));
    std::string stripe = le64(65536) + le64(16);
    auto st = decode_stripe(stripe.data(), stripe.size());
    ASSERT_TRUE(st);
    EXPECT_EQ(st->unit, 65536u);
    EXPECT_EQ(st->count, 16u);
}

TEST(RbdWire, FeaturesAreTheFirstWordOfTheReply)
{
    std::string reply = le64(61) + le64(0); // features, incompatible features (Ceph >= 12)
    auto f = decode_u64(reply.data(), reply.size());
    ASSERT_TRUE(f);
    EXPECT_EQ(*f, 61u);
}

TEST(RbdWire, ObjectCountAsRbdStat)
{
    const uint64_t M = 1 << 20;
    struct Row {
        uint64_t size, object, unit, count, expect;
    } rows[] = {
        {0, 4 * M, 4 * M, 1, 0},
        {1, 4 * M, 4 * M, 1, 1},
        {4 * M, 4 * M, 4 * M, 1, 1},
        {4 * M + 1, 4 * M, 4 * M, 1, 2},
        {1ull << 30, 4 * M, 4 * M, 1, 256},
        // fancy striping: 64 KiB units over 16 objects of 4 MiB (a period of 64 MiB)
        {64 * M, 4 * M, 64 * 1024, 16, 16},
        {64 * 1024, 4 * M, 64 * 1024, 16, 1},       // only the first object reached
        {3 * 64 * 1024 + 1, 4 * M, 64 * 1024, 16, 4},
        {64 * M + 64 * 1024, 4 * M, 64 * 1024, 16, 17},
        {65 * M, 4 * M, 64 * 1024, 16, 32},          // a whole stripe row of the second period
    };
    for (const auto &r : rows)
        EXPECT_EQ(object_count(r.size, r.object, r.unit, r.count), r.expect)
            << r.size << " bytes, " << r.object << "-byte objects, " << r.unit << " x " << r.count;
}

TEST(RbdWire, ObjectMapHeaderOfARealMap)
{
    std::string head = map_header(256);
    ASSERT_EQ(head.size(), kObjectMapHeader);
    auto n = object_map_entries(head.data(), head.size());
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 256u);
    EXPECT_FALSE(object_map_entries(head.data(), head.size() - 1));
    std::string v2 = head;
    v2[4] = 2; // a version this module does not know
    EXPECT_FALSE(object_map_entries(v2.data(), v2.size()));
}

TEST(RbdWire, AllocatedBytesCountEveryStateButNonexistent)
{
    const uint64_t M = 1 << 20;
    // The real map: object 1 exists (0x10: objects 0..3 = 0, 1, 0, 0).
    std::vector<unsigned char> bits(64, 0);
    bits[0] = 0x10;
    EXPECT_EQ(allocated_bytes(bits.data(), bits.size(), 0, 256, 1ull << 30, 4 * M), 4 * M);
    // exists (1), pending (2), exists-clean (3): all count, as rbd_diff_iterate2 reports them.
    bits[0] = 0x6c; // 01 10 11 00
    EXPECT_EQ(allocated_bytes(bits.data(), bits.size(), 0, 256, 1ull << 30, 4 * M), 12 * M);
    // The last object is cut at the image's end; entries past it are ignored.
    unsigned char last = 0xff;
    EXPECT_EQ(allocated_bytes(&last, 1, 0, 2, 4 * M + 100, 4 * M), 4 * M + 100);
    // A piece further in the map counts from its first object.
    EXPECT_EQ(allocated_bytes(&last, 1, 8, 12, 40 * M, 4 * M), 2 * 4 * M);
}

TEST(RbdWire, IdReplyIsALengthThenTheId)
{
    // get_id's reply for an image of id 10a66b8b4567 (Ceph 16).
    const std::string reply("\x0c\x00\x00\x00" "10a66b8b4567", 16);
    auto id = decode_id(reply.data(), reply.size());
    ASSERT_TRUE(id);
    EXPECT_EQ(*id, "10a66b8b4567");
    EXPECT_FALSE(decode_id(reply.data(), 3));                   // short
    EXPECT_FALSE(decode_id(reply.data(), reply.size() - 1));    // cut
    EXPECT_FALSE(decode_id(std::string(4, '\0').data(), 4));    // empty id
    EXPECT_FALSE(decode_id(nullptr, 0));
}

// --- what the clone path reads of a source (ceph/header_view.hpp) ---------
// Replies captured from a real Ceph 16.2 OSD (python rados execute): an image
// with snapshots 57 ('a') and 58 ('rbdclone-b', protected), a clone of it in
// pool 2, and a 16-object image whose head and snapshot maps are below.

namespace {
std::string unhex(const std::string &h)
{
    std::string s;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        s.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return s;
}
} // namespace

TEST(RbdWire, SnapshotArgumentIsTheIdLittleEndian)
{
    EXPECT_EQ(snap_arg(58), le64(58));
}

TEST(RbdWire, SnapContextIsTheSequenceThenTheIdsNewestFirst)
{
    const std::string reply = unhex("3a00000000000000020000003a000000000000003900000000000000");
    auto c = decode_snapcontext(reply.data(), reply.size());
    ASSERT_TRUE(c);
    EXPECT_EQ(c->seq, 58u);
    EXPECT_EQ(c->snaps, (std::vector<uint64_t>{58, 57}));
    // Truncated, a count the bytes do not hold, an id above the sequence,
    // ids out of order: not a context.
    EXPECT_FALSE(decode_snapcontext(reply.data(), reply.size() - 1));
    const std::string no_snaps = le64(0) + std::string("\0\0\0\0", 4);
    auto empty = decode_snapcontext(no_snaps.data(), no_snaps.size());
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->snaps.empty());
    const std::string above = le64(5) + std::string("\x01\0\0\0", 4) + le64(6);
    EXPECT_FALSE(decode_snapcontext(above.data(), above.size()));
    const std::string unordered = le64(9) + std::string("\x02\0\0\0", 4) + le64(3) + le64(4);
    EXPECT_FALSE(decode_snapcontext(unordered.data(), unordered.size()));
}

TEST(RbdWire, StringRepliesAreALengthThenTheBytes)
{
    const std::string prefix = unhex("150000007262645f646174612e313036633837363231666263");
    EXPECT_EQ(decode_string(prefix.data(), prefix.size()), std::optional<std::string>("rbd_data.106c87621fbc"));
    const std::string name = unhex("0a000000726264636c6f6e652d62");
    EXPECT_EQ(decode_string(name.data(), name.size()), std::optional<std::string>("rbdclone-b"));
    EXPECT_FALSE(decode_string(name.data(), name.size() - 1));
    EXPECT_EQ(decode_u8("\x02", 1), std::optional<uint8_t>(2));
    EXPECT_FALSE(decode_u8("\x02\x00", 2));
}

TEST(RbdWire, ParentPoolOfAnImageWithoutAndWithAParent)
{
    const std::string none = unhex("010118000000ffffffffffffffff0000000000000000feffffffffffffff");
    EXPECT_EQ(decode_parent_pool(none.data(), none.size()), std::optional<int64_t>(-1));
    const std::string child =
        unhex("0101240000000200000000000000000000000c0000003130366338373632316662633a00000000000000");
    EXPECT_EQ(decode_parent_pool(child.data(), child.size()), std::optional<int64_t>(2));
    // A length that does not match, a compat version we do not know.
    EXPECT_FALSE(decode_parent_pool(child.data(), child.size() - 1));
    std::string newer = child;
    newer[1] = 2;
    EXPECT_FALSE(decode_parent_pool(newer.data(), newer.size()));
}

TEST(RbdWire, HeadEqualsItsNewestSnapshotOnlyWhenNothingWasWrittenAddedOrRemoved)
{
    // The real pair: written at objects 0 and 5, snapshot, then object 9
    // written and object 0 discarded.
    const std::string head = unhex("0e0000000101080000001000000000000000003010000c000000e6b3c16e010000001f7723ae");
    const std::string snap = unhex("0e0000000101080000001000000000000000401000000c000000e6b3c16e010000006d2204db");
    EXPECT_EQ(head_equals_newest_snapshot(head.data(), head.size(), snap.data(), snap.size(), 16),
              std::optional<bool>(false));
    // One object at a time, head state against snapshot state (2 bits, object 0 in the high bits).
    auto one = [](unsigned head_state, unsigned snap_state) {
        const std::string h = map_header(4) + std::string(1, static_cast<char>(head_state << 6));
        const std::string s = map_header(4) + std::string(1, static_cast<char>(snap_state << 6));
        return head_equals_newest_snapshot(h.data(), h.size(), s.data(), s.size(), 4);
    };
    EXPECT_EQ(one(kObjectNonexistent, kObjectNonexistent), std::optional<bool>(true));
    EXPECT_EQ(one(kObjectExistsClean, kObjectExists), std::optional<bool>(true));      // written before it
    EXPECT_EQ(one(kObjectExistsClean, kObjectExistsClean), std::optional<bool>(true)); // and earlier
    EXPECT_EQ(one(kObjectExists, kObjectExists), std::optional<bool>(false));          // written since
    EXPECT_EQ(one(kObjectExists, kObjectNonexistent), std::optional<bool>(false));     // created since
    EXPECT_EQ(one(kObjectNonexistent, kObjectExists), std::optional<bool>(false));     // removed since
    EXPECT_EQ(one(kObjectPending, kObjectExists), std::optional<bool>(false));         // being removed
    EXPECT_EQ(one(kObjectExistsClean, kObjectNonexistent), std::optional<bool>(false)); // not a pair
    // Maps of another size than the image's, or cut short: not an answer.
    const std::string h = map_header(4) + std::string(1, '\0'), s = map_header(8) + std::string(2, '\0');
    EXPECT_FALSE(head_equals_newest_snapshot(h.data(), h.size(), s.data(), s.size(), 4));
    EXPECT_FALSE(head_equals_newest_snapshot(h.data(), h.size() - 1, h.data(), h.size(), 4));
}
