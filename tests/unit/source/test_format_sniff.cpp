#include <gtest/gtest.h>

#include "test_files.hpp"

#include "source/format_sniff.hpp"

using namespace rbdclone;

namespace {

std::string with_at(size_t off, const std::string &magic, size_t size = 65536)
{
    std::string s(size, '\0');
    s.replace(off, magic.size(), magic);
    return s;
}

struct Row {
    const char *name;
    std::string head;
    std::string tail;
    const char *expected;
};

} // namespace

class SniffTable : public ::testing::TestWithParam<Row> {};

TEST_P(SniffTable, RecognisesTheContainer)
{
    const Row &r = GetParam();
    EXPECT_EQ(sniff_format(r.head, r.tail), r.expected) << r.name;
}

INSTANTIATE_TEST_SUITE_P(
    Headers, SniffTable,
    ::testing::Values(
        Row{"zeros", std::string(65536, '\0'), "", "raw"},
        Row{"text", std::string(65536, 'a'), std::string(512, 'a'), "raw"},
        Row{"qcow2 v3", with_at(0, std::string("QFI\xfb\0\0\0\x03", 8)), "", "qcow2"},
        Row{"qcow2 v2", with_at(0, std::string("QFI\xfb\0\0\0\x02", 8)), "", "qcow2"},
        Row{"qcow v1", with_at(0, std::string("QFI\xfb\0\0\0\x01", 8)), "", "qcow"},
        Row{"qed", with_at(0, std::string("QED\0", 4)), "", "qed"},
        Row{"vmdk sparse", with_at(0, "KDMV"), "", "vmdk"},
        Row{"vmdk descriptor", with_at(0, "# Disk DescriptorFile\nversion=1\n"), "", "vmdk"},
        Row{"vdi", with_at(0x40, "\x7f\x10\xda\xbe"), "", "vdi"},
        Row{"vhdx", with_at(0, "vhdxfile"), "", "vhdx"},
        Row{"vpc dynamic", with_at(0, "conectix"), "", "vpc"},
        Row{"vpc fixed (footer)", std::string(65536, '\0'), with_at(0, "conectix", 512), "vpc"},
        Row{"luks", with_at(0, "LUKS\xba\xbe"), "", "luks"},
        Row{"parallels", with_at(0, "WithoutFreeSpace"), "", "parallels"},
        Row{"dmg (trailer)", std::string(65536, '\0'), with_at(0, "koly", 512), "dmg"},
        Row{"bochs", with_at(0, "Bochs Virtual HD Image"), "", "bochs"},
        Row{"iso", with_at(0x8001, "CD001"), "", "iso"},
        Row{"short image", std::string("QF"), "", "raw"},
        Row{"empty image", std::string(), "", "raw"}),
    [](const auto &info) { return testfiles::param_name(info.param.name); });

TEST(RawCompatible, OnlyRawAndIso)
{
    EXPECT_TRUE(is_raw_compatible("raw"));
    EXPECT_TRUE(is_raw_compatible("iso"));
    EXPECT_FALSE(is_raw_compatible("qcow2"));
    EXPECT_FALSE(is_raw_compatible("luks"));
    EXPECT_FALSE(is_raw_compatible(""));
}
