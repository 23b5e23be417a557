// What qemu-img prints with --output=json, as the module reads it: a table
// of real outputs (qemu 7.2 as in Debian 12, qemu 10 as in Debian 13, whose
// "children" come first and hold their own "virtual-size"), malformed
// JSON and missing keys.  No qemu runs here.
#include <gtest/gtest.h>

#include <string>

#include "io/qemu_reader.hpp"

using namespace rbdclone;

namespace {

// The "format-specific" of a qcow2 (compat 1.1, zlib) at the top level, as
// qemu-img 7.2 and 10 print it.
const std::string kQcow2FormatSpecific = R"(    "format-specific": {
        "type": "qcow2",
        "data": {
            "compat": "1.1",
            "compression-type": "zlib",
            "lazy-refcounts": false,
            "refcount-bits": 16,
            "corrupt": false,
            "extended-l2": false
        }
    },
)";

// qemu-img 7.2 info of a 1 GiB qcow2.
const std::string kQemu7Qcow2 = R"({
    "virtual-size": 1073741824,
    "filename": "x.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
)" + kQcow2FormatSpecific + R"(    "dirty-flag": false
}
)";

// qemu-img 7.2 info of a 64 MiB qcow2 naming a backing file.
const std::string kQemu7Backed = R"({
    "backing-filename-format": "raw",
    "virtual-size": 67108864,
    "filename": "y.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
)" + kQcow2FormatSpecific + R"(    "full-backing-filename": "b.raw",
    "backing-filename": "b.raw",
    "dirty-flag": false
}
)";

// A node of qemu-img 10's "children" for a plain file: the file's own sizes.
std::string file_child(const std::string &name, uint64_t size, const std::string &filename, uint64_t actual)
{
    return R"(        {
            "name": ")" + name + R"(",
            "info": {
                "children": [
                ],
                "virtual-size": )" + std::to_string(size) + R"(,
                "filename": ")" + filename + R"(",
                "format": "file",
                "actual-size": )" + std::to_string(actual) + R"(,
                "format-specific": {
                    "type": "file",
                    "data": {
                    }
                },
                "dirty-flag": false
            }
        })";
}

// What qemu-img 10 prints for the image qemu-img 7.2 printed as INFO: a
// "children" list of NODES first, then the same keys.
std::string children_first(const std::string &nodes, const std::string &info)
{
    return "{\n    \"children\": [\n" + nodes + "\n    ],\n" + info.substr(std::string("{\n").size());
}

// qemu-img 10 info of the same 1 GiB qcow2: its file node comes first, with
// the file's own size (197120 bytes).
const std::string kQemu10Qcow2 = children_first(file_child("file", 197120, "x.qcow2", 200704), kQemu7Qcow2);

// qemu-img 10 info of a 2 GiB monolithicSparse vmdk: two children (extent
// and file) and, inside format-specific, an extent with its own size.
const std::string kQemu10Vmdk = children_first(file_child("extent.0", 327680, "d.vmdk", 12288) + ",\n" +
                                                   file_child("file", 327680, "d.vmdk", 12288),
                                               R"({
    "virtual-size": 2147483648,
    "filename": "d.vmdk",
    "cluster-size": 65536,
    "format": "vmdk",
    "actual-size": 12288,
    "format-specific": {
        "type": "vmdk",
        "data": {
            "cid": 1591722107,
            "parent-cid": 4294967295,
            "create-type": "monolithicSparse",
            "extents": [
                {
                    "virtual-size": 2147483648,
                    "filename": "d.vmdk",
                    "cluster-size": 65536,
                    "format": ""
                }
            ]
        }
    },
    "dirty-flag": false
}
)");

struct InfoRow {
    const char *name;
    std::string json;
    uint64_t size;       // when error is empty
    const char *error;   // a part of the message, or "" for success
};

std::ostream &operator<<(std::ostream &os, const InfoRow &r) { return os << r.name; }

class QemuInfoJson : public ::testing::TestWithParam<InfoRow> {};

} // namespace

TEST_P(QemuInfoJson, GivesTheImagesOwnSize)
{
    const InfoRow &r = GetParam();
    auto size = qemu_info_virtual_size(r.json, "'/images/x.qcow2'");
    if (*r.error == '\0') {
        ASSERT_TRUE(size.ok()) << size.error().message;
        EXPECT_EQ(*size, r.size);
        return;
    }
    ASSERT_FALSE(size.ok()) << "read a size of " << *size;
    EXPECT_EQ(size.error().kind, RBDC_ERR_INVALID_ARG);
    EXPECT_NE(size.error().message.find("'/images/x.qcow2'"), std::string::npos)
        << "the message names the image: " << size.error().message;
    EXPECT_NE(size.error().message.find(r.error), std::string::npos) << size.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Outputs, QemuInfoJson,
    ::testing::Values(
        InfoRow{"qemu7_qcow2", kQemu7Qcow2, 1073741824, ""},
        InfoRow{"qemu7_backed_qcow2", kQemu7Backed, 67108864, ""},
        InfoRow{"qemu10_children_first", kQemu10Qcow2, 1073741824, ""},
        InfoRow{"qemu10_vmdk_extents", kQemu10Vmdk, 2147483648, ""},
        InfoRow{"compact", R"({"format":"raw","virtual-size":5})", 5, ""},
        InfoRow{"zero_size", R"({"virtual-size": 0, "format": "raw"})", 0, ""},
        // Only a child knows a size: that is not the image's.
        InfoRow{"only_a_child_has_one",
                R"({"children": [{"name": "file", "info": {"virtual-size": 197120}}], "format": "qcow2"})", 0,
                "no top-level \"virtual-size\""},
        InfoRow{"missing", R"({"filename": "x.qcow2", "format": "qcow2"})", 0, "no top-level \"virtual-size\""},
        InfoRow{"a_string", R"({"virtual-size": "1073741824"})", 0, "\"virtual-size\" is not a whole number"},
        InfoRow{"a_fraction", R"({"virtual-size": 1.5})", 0, "\"virtual-size\" is not a whole number"},
        InfoRow{"negative", R"({"virtual-size": -1})", 0, "\"virtual-size\" is negative"},
        InfoRow{"null", R"({"virtual-size": null})", 0, "\"virtual-size\" is not a whole number"},
        InfoRow{"an_array", R"([{"virtual-size": 1}])", 0, "not a JSON object"},
        InfoRow{"empty", "", 0, "is not JSON"},
        InfoRow{"truncated", kQemu10Qcow2.substr(0, 400), 0, "is not JSON"},
        InfoRow{"not_json", "qemu-img: Could not open 'x': No such file", 0, "is not JSON"},
        InfoRow{"invalid_utf8", "{\"virtual-size\": 1, \"filename\": \"\xff\xfe\"}", 0, "is not JSON"}),
    [](const ::testing::TestParamInfo<InfoRow> &i) { return std::string(i.param.name); });

TEST(QemuCheckJson, ReadsTheTopLevelCounts)
{
    // qemu-img 7.2 check of a sound qcow2, as printed.
    const std::string sound = R"({
    "image-end-offset": 262144,
    "total-clusters": 16384,
    "check-errors": 0,
    "filename": "x.qcow2",
    "format": "qcow2"
}
)";
    EXPECT_EQ(qemu_check_problems(sound, 0), "");
    EXPECT_EQ(qemu_check_problems(R"({"check-errors": 0, "corruptions": 2, "leaks": 1, "format": "qcow2"})", 2),
              "2 corruption(s) found by qemu-img check");
    // A key of the same name deeper down is not the image's count.
    EXPECT_EQ(qemu_check_problems(R"({"x": {"corruptions": 5}, "check-errors": 0, "leaks": 7})", 3), "");
}

TEST(QemuCheckJson, AnUnreadableReportIsAProblem)
{
    // qemu-img said 0 but printed nothing we can read: not taken as sound.
    EXPECT_NE(qemu_check_problems("garbage", 0).find("report is not JSON"), std::string::npos)
        << qemu_check_problems("garbage", 0);
    EXPECT_NE(qemu_check_problems("", 0).find("report is not JSON"), std::string::npos);
    EXPECT_NE(qemu_check_problems(R"({"corruptions": "many"})", 0).find("\"corruptions\" is not a whole number"),
              std::string::npos)
        << qemu_check_problems(R"({"corruptions": "many"})", 0);
    // The exit status still says why when qemu-img could not check.
    EXPECT_NE(qemu_check_problems("garbage", 1).find("could not check it (exit status 1)"), std::string::npos);
}
