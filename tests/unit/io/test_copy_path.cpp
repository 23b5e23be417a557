// Pure parts of the copy path: zero detection, the header checks that keep
// qemu from following files an image names, the choice of format, and the
// reading of qemu-img's verdicts.
#include <gtest/gtest.h>

#include <string>

#include "base/subprocess.hpp"
#include "ceph/image_children.hpp"
#include "ceph/names.hpp"
#include "io/copy_engine.hpp"
#include "create/plan.hpp"
#include "source/image_safety.hpp"
#include "io/qemu_reader.hpp"

using namespace rbdclone;

namespace {

void put_be(std::string &s, size_t off, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        s[off + static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
}

void put_le(std::string &s, size_t off, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        s[off + static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
}

std::string qcow2_header(int version)
{
    std::string h(4096, '\0');
    h.replace(0, 4, "QFI\xfb");
    put_be(h, 4, static_cast<uint64_t>(version), 4);
    return h;
}

using ByteRun = std::pair<size_t, size_t>;

} // namespace

TEST(ZeroDetection, AllZeroAndNot)
{
    std::string z(100000, '\0');
    EXPECT_TRUE(is_all_zero(z.data(), z.size()));
    EXPECT_TRUE(is_all_zero(z.data(), 0));
    EXPECT_TRUE(is_all_zero(z.data(), 7));
    for (size_t pos : {0ul, 5ul, 15ul, 16ul, 17ul, 99999ul}) {
        std::string d = z;
        d[pos] = 1;
        EXPECT_FALSE(is_all_zero(d.data(), d.size())) << pos;
    }
}

TEST(ZeroDetection, RunsAtBlockGranularity)
{
    std::string b(10 * 4096, '\0');
    b[0] = 'a';          // block 0
    b[4096 + 1] = 'b';   // block 1 (joins block 0)
    b[4 * 4096] = 'c';   // block 4
    b[9 * 4096 + 4095] = 'd'; // last block
    auto runs = nonzero_runs(b.data(), b.size(), 4096);
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0], (ByteRun{0, 2 * 4096}));
    EXPECT_EQ(runs[1], (ByteRun{4 * 4096, 5 * 4096}));
    EXPECT_EQ(runs[2], (ByteRun{9 * 4096, 10 * 4096}));
}

TEST(ZeroDetection, ShortLastBlockAndEmpty)
{
    std::string b(5000, '\0');
    b[4999] = 'x';
    auto runs = nonzero_runs(b.data(), b.size(), 4096);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0], (ByteRun{4096, 5000}));
    EXPECT_TRUE(nonzero_runs(b.data(), 0, 4096).empty());
    std::string z(8192, '\0');
    EXPECT_TRUE(nonzero_runs(z.data(), z.size(), 4096).empty());
}

TEST(ExternalReference, PlainQcow2IsFine)
{
    EXPECT_EQ(external_reference("qcow2", qcow2_header(2)), "");
    EXPECT_EQ(external_reference("qcow2", qcow2_header(3)), "");
}

TEST(ExternalReference, Qcow2BackingFileIsNamed)
{
    std::string h = qcow2_header(3);
    put_be(h, 8, 1024, 8);
    put_be(h, 16, 11, 4);
    h.replace(1024, 11, "/etc/shadow");
    EXPECT_EQ(external_reference("qcow2", h), "it names a backing file '/etc/shadow', which is never followed");
}

TEST(ExternalReference, Qcow2BackingFileOutsideTheHeadIsStillRefused)
{
    std::string h = qcow2_header(2);
    put_be(h, 8, 1u << 20, 8);
    put_be(h, 16, 11, 4);
    EXPECT_EQ(external_reference("qcow2", h), "it names a backing file, which is never followed");
}

TEST(ExternalReference, Qcow2ExternalDataFile)
{
    std::string h = qcow2_header(3);
    put_be(h, 72, 1u << 2, 8);
    EXPECT_NE(external_reference("qcow2", h).find("external data file"), std::string::npos);
    // The same bit means nothing in a version 2 header (no such field).
    std::string v2 = qcow2_header(2);
    put_be(v2, 72, 1u << 2, 8);
    EXPECT_EQ(external_reference("qcow2", v2), "");
}

TEST(ExternalReference, TruncatedHeadersAreRefused)
{
    EXPECT_NE(external_reference("qcow2", std::string("QFI\xfb", 4)), "");
    EXPECT_NE(external_reference("qcow2", qcow2_header(3).substr(0, 40)), "");
    EXPECT_NE(external_reference("qed", "QED"), "");
}

TEST(ExternalReference, QedBackingFile)
{
    std::string h(4096, '\0');
    h.replace(0, 4, std::string("QED\0", 4));
    EXPECT_EQ(external_reference("qed", h), "");
    put_le(h, 16, 1, 8); // QED_F_BACKING_FILE
    put_le(h, 56, 512, 4);
    put_le(h, 60, 9, 4);
    h.replace(512, 9, "/dev/sda1");
    EXPECT_EQ(external_reference("qed", h), "it names a backing file '/dev/sda1', which is never followed");
}

TEST(ExternalReference, VmdkDescriptorsAndDeltaDisks)
{
    EXPECT_NE(external_reference("vmdk", "# Disk DescriptorFile\nRW 8 FLAT \"/etc/shadow\" 0\n"), "");
    EXPECT_NE(external_reference("vmdk", "COWD...."), "");
    std::string h(8192, '\0');
    h.replace(0, 4, "KDMV");
    put_le(h, 28, 1, 8); // descriptor at sector 1
    put_le(h, 36, 2, 8); // two sectors long
    h.replace(512, 30, "createType=\"monolithicSparse\"\n");
    EXPECT_EQ(external_reference("vmdk", h), "");
    h.replace(600, 40, "parentFileNameHint=\"/var/lib/base.vmdk\"\n");
    EXPECT_NE(external_reference("vmdk", h).find("names a parent file"), std::string::npos);
}

TEST(ExternalReference, FormatsWithoutReferences)
{
    EXPECT_EQ(external_reference("vdi", "anything"), "");
    EXPECT_EQ(external_reference("raw", ""), "");
}

struct FormatRow {
    const char *declared;
    const char *sniffed;
    const char *format;    // "" = refused
    const char *error_part;
};

class CopyFormatTable : public ::testing::TestWithParam<FormatRow> {};

TEST_P(CopyFormatTable, Row)
{
    const FormatRow &r = GetParam();
    CopyFormat cf = copy_format(r.declared, r.sniffed);
    EXPECT_EQ(cf.format, r.format) << r.declared << "/" << r.sniffed << ": " << cf.error;
    EXPECT_NE(cf.error.find(r.error_part), std::string::npos) << cf.error;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, CopyFormatTable,
    ::testing::Values(FormatRow{"raw", "raw", "raw", ""}, FormatRow{"", "raw", "raw", ""},
                      FormatRow{"", "", "raw", ""}, FormatRow{"iso", "iso", "raw", ""},
                      FormatRow{"raw", "iso", "raw", ""}, FormatRow{"qcow2", "qcow2", "qcow2", ""},
                      FormatRow{"raw", "qcow2", "qcow2", ""}, FormatRow{"", "vmdk", "vmdk", ""},
                      FormatRow{"vdi", "vdi", "vdi", ""},
                      FormatRow{"qcow2", "raw", "", "declared as qcow2 but its bytes are not a qcow2 image"},
                      FormatRow{"qcow2", "vmdk", "", "declared as qcow2 but its bytes are a vmdk image"},
                      FormatRow{"raw", "luks", "", "LUKS-encrypted"},
                      FormatRow{"luks", "luks", "", "LUKS-encrypted"}));

TEST(QemuCheck, Verdicts)
{
    const std::string sound = R"({"image-end-offset": 8716288, "total-clusters": 128, "check-errors": 0})";
    EXPECT_EQ(qemu_check_problems(sound, 0), "");
    EXPECT_EQ(qemu_check_problems(R"({"leaks": 3})", 3), "") << "leaked clusters do not hurt reading";
    EXPECT_EQ(qemu_check_problems(R"({"corruptions": 69, "check-errors": 0})", 2),
              "69 corruption(s) found by qemu-img check");
    EXPECT_NE(qemu_check_problems("", 1).find("could not check it (exit status 1)"), std::string::npos);
    EXPECT_NE(qemu_check_problems("", -1).find("could not check it"), std::string::npos);
}

TEST(Subprocess, JsonStringEscapes)
{
    EXPECT_EQ(json_string("/a/b c"), "\"/a/b c\"");
    EXPECT_EQ(json_string("x\"y\\z"), "\"x\\\"y\\\\z\"");
    EXPECT_EQ(json_string(std::string("a\nb\x01", 4)), "\"a\\u000ab\\u0001\"");
}

TEST(Subprocess, LastLine)
{
    EXPECT_EQ(last_line("one\ntwo\n\n"), "two");
    EXPECT_EQ(last_line("only"), "only");
    EXPECT_EQ(last_line("\n \n"), "");
}

TEST(Subprocess, RunsAToolAndCapturesItsOutput)
{
    auto dir = WorkDir::create("unittest");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 7"}, *dir, 10000);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->exit_status, 7);
    EXPECT_EQ(r->out, "out\n");
    EXPECT_EQ(r->err, "err\n");
    auto slow = run_process({"sleep", "10"}, *dir, 100);
    ASSERT_TRUE(slow.ok());
    EXPECT_EQ(slow->exit_status, -1);
    auto missing = run_process({"no-such-tool-rbdclone"}, *dir, 1000);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("cannot run no-such-tool-rbdclone"), std::string::npos)
        << missing.error().message;
}

TEST(Children, Description)
{
    std::vector<ChildRef> kids = {{"rbd2", "a", false}, {"rbd2", "b", true}, {"rbd", "c", false},
                                  {"rbd", "d", false}, {"rbd", "e", false}};
    EXPECT_EQ(describe_children({}), "");
    EXPECT_EQ(describe_children({kids[0]}), "rbd2/a");
    EXPECT_EQ(describe_children(kids), "rbd2/a, rbd2/b (in the trash), rbd/c and 2 more");
    EXPECT_EQ(describe_children(kids, 5), "rbd2/a, rbd2/b (in the trash), rbd/c, rbd/d, rbd/e");
}

TEST(ImageNames, AcceptedAndRefused)
{
    EXPECT_EQ(image_name_problem("vm-disk.1"), "");
    EXPECT_EQ(image_name_problem(" spaced name"), "");
    EXPECT_EQ(image_name_problem(std::string(kMaxImageNameBytes, 'x')), "");
    EXPECT_NE(image_name_problem(std::string(kMaxImageNameBytes + 1, 'x')).find("more than the 2041"), std::string::npos);
    EXPECT_EQ(image_name_problem(""), "an RBD image name must not be empty");
    EXPECT_NE(image_name_problem("a/b").find("'/' separates"), std::string::npos);
    EXPECT_EQ(image_name_problem("a@b"),
              "qemu reads '@' as a snapshot separator: it would open snapshot 'b' of image 'a'");
    EXPECT_NE(image_name_problem("a:b").find("':' as an option separator"), std::string::npos);
    EXPECT_NE(image_name_problem("a\nb").find("control character"), std::string::npos);
    EXPECT_NE(image_name_problem(".."), "");
}

TEST(ContentChecksum, PiecesInAnyOrderSumToTheWholeAndHolesCountAsZeros)
{
    std::string disk(64 * 1024, '\0');
    for (size_t i = 0; i < disk.size(); i += 7)
        disk[i] = static_cast<char>(i * 31 + 1);
    memset(&disk[8192], 0, 16384); // a zero range, read or not
    const uint64_t whole = content_checksum(disk.data(), disk.size(), 0);
    // Pieces split at multiples of 8, summed backwards, the zero range left out (a hole).
    const size_t cuts[] = {0, 8, 4096, 8192, 24576, 40000, 65536};
    uint64_t sum = 0;
    for (int i = 5; i >= 0; i--) {
        if (cuts[i] == 8192)
            continue;
        sum += content_checksum(disk.data() + cuts[i], cuts[i + 1] - cuts[i], cuts[i]);
    }
    EXPECT_EQ(sum, whole);
    // Where the bytes are matters, not only which bytes.
    EXPECT_NE(content_checksum(disk.data(), 4096, 0), content_checksum(disk.data(), 4096, 4096));
    std::string changed = disk;
    changed[100] ^= 1;
    EXPECT_NE(content_checksum(changed.data(), changed.size(), 0), whole);
    EXPECT_EQ(content_checksum(std::string(4096, '\0').data(), 4096, 123 * 8), 0u);
}

namespace {
std::vector<std::pair<uint64_t, uint64_t>> cut_all(const CopyOptions &o, uint64_t size,
                                                    const std::vector<Extent> &extents)
{
    PieceCutter cutter(o, size);
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (const auto &e : extents)
        cutter.cut(e, [&](const Extent &p) {
            out.emplace_back(p.offset, p.offset + p.length);
            return true;
        });
    return out;
}
constexpr uint64_t M = 1 << 20;
} // namespace

TEST(PieceCutter, PiecesEndAtChunkBoundaries)
{
    CopyOptions o; // 2 MiB chunks
    using V = std::vector<std::pair<uint64_t, uint64_t>>;
    EXPECT_EQ(cut_all(o, 16 * M, {{1 * M, 4 * M}}), (V{{1 * M, 2 * M}, {2 * M, 4 * M}, {4 * M, 5 * M}}));
    EXPECT_EQ(cut_all(o, 16 * M, {{0, 10}, {3 * M, 10}}), (V{{0, 10}, {3 * M, 3 * M + 10}}));
}

// An encrypted destination whose header is 2 MiB before 4 MiB objects: objects start at guest
// offsets 2, 6, 10 MiB...; every extent widens to whole objects, none is written twice, and the
// last stops at the source's end.
TEST(PieceCutter, DenseUnitsAreWholeObjectsShiftedByThePhase)
{
    CopyOptions o;
    o.dense_unit = o.chunk = 4 * M;
    o.dense_phase = 2 * M;
    using V = std::vector<std::pair<uint64_t, uint64_t>>;
    EXPECT_EQ(cut_all(o, 11 * M, {{1 * M, 10}, {1 * M + 100, 10}, {3 * M, 4 * M}, {10 * M + 5, 5}}),
              (V{{0, 2 * M}, {2 * M, 6 * M}, {6 * M, 10 * M}, {10 * M, 11 * M}}));
    o.dense_phase = 16 * M; // LUKS2's header: objects aligned with the guest's offsets
    EXPECT_EQ(cut_all(o, 12 * M, {{5 * M, 1}}), (V{{4 * M, 8 * M}}));
}
