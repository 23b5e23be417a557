#include <gtest/gtest.h>

#include "test_files.hpp"

#include "create/decision.hpp"

using namespace rbdclone;

namespace {

// A source that can be cloned; each row changes one fact.
CloneFacts cloneable()
{
    CloneFacts f;
    f.source_label = "RBD image 'images/golden'";
    f.source_is_rbd = true;
    f.source_fsid = "fsid-a";
    f.dest_fsid = "fsid-a";
    f.declared_format = "raw";
    f.sniffed_format = "raw";
    return f;
}

struct Row {
    const char *name;
    void (*change)(CloneFacts &);
    Method method;
    const char *reason_part;
};

} // namespace

class DecisionTable : public ::testing::TestWithParam<Row> {};

TEST_P(DecisionTable, MethodAndReason)
{
    const Row &r = GetParam();
    CloneFacts f = cloneable();
    r.change(f);
    Decision d = decide_clone(f);
    EXPECT_EQ(d.method, r.method) << r.name << ": " << d.reason;
    EXPECT_NE(d.reason.find(r.reason_part), std::string::npos) << r.name << ": " << d.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, DecisionTable,
    ::testing::Values(
        Row{"cloneable", [](CloneFacts &) {}, Method::Clone, "same cluster fsid-a"},
        Row{"iso", [](CloneFacts &f) { f.declared_format = "iso"; f.sniffed_format = "iso"; }, Method::Clone, "iso"},
        Row{"no declared format", [](CloneFacts &f) { f.declared_format = ""; }, Method::Clone, "raw"},
        Row{"file source", [](CloneFacts &f) { f.source_is_rbd = false; f.source_kind = "file"; f.source_label = "'/x.qcow2'"; },
            Method::Copy, "'/x.qcow2' is a file volume, not an RBD image"},
        Row{"other cluster", [](CloneFacts &f) { f.source_fsid = "fsid-b"; }, Method::Copy,
            "cluster fsid-b, the destination in cluster fsid-a"},
        Row{"unknown cluster", [](CloneFacts &f) { f.source_fsid = ""; }, Method::Copy, "(unknown)"},
        Row{"declared qcow2", [](CloneFacts &f) { f.declared_format = "qcow2"; }, Method::CopyConvert,
            "declared as qcow2"},
        Row{"qcow2 bytes in a raw image", [](CloneFacts &f) { f.sniffed_format = "qcow2"; }, Method::CopyConvert,
            "declared raw but its first bytes are a qcow2 header"},
        Row{"luks bytes", [](CloneFacts &f) { f.sniffed_format = "luks"; }, Method::CopyConvert, "luks header"},
        Row{"image format 1", [](CloneFacts &f) { f.image_format_1 = true; }, Method::Copy, "format 1"},
        Row{"no layering", [](CloneFacts &f) { f.has_layering = false; }, Method::Copy, "'layering'"},
        Row{"no snapshot permission", [](CloneFacts &f) { f.may_snapshot = false; }, Method::Copy,
            "may not create a snapshot"},
        Row{"no permission but snapshot given",
            [](CloneFacts &f) { f.may_snapshot = false; f.snapshot_given = true; }, Method::Clone, "same cluster"},
        Row{"other cluster wins over format", [](CloneFacts &f) { f.source_fsid = "b"; f.sniffed_format = "qcow2"; },
            Method::Copy, "cluster b"}),
    [](const auto &info) { return testfiles::param_name(info.param.name); });

TEST(MethodName, Names)
{
    EXPECT_STREQ(method_name(Method::Clone), "clone");
    EXPECT_STREQ(method_name(Method::Copy), "copy");
    EXPECT_STREQ(method_name(Method::CopyConvert), "copy+convert");
}
