#include <gtest/gtest.h>

#include "test_files.hpp"

#include "create/plan.hpp"

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
            Method::Copy, "cluster b"},
        Row{"encrypted source", [](CloneFacts &f) { f.source_encrypted = true; f.layered_encryption = true; },
            Method::Copy, "is encrypted: it is read with its own key"},
        Row{"encrypted volume, Ceph 16", [](CloneFacts &f) { f.encrypt = true; }, Method::Copy,
            "no layered encryption"},
        Row{"encrypted volume, Ceph 18", [](CloneFacts &f) { f.encrypt = true; f.layered_encryption = true; },
            Method::Clone, "own key (layered encryption)"},
        Row{"encrypted volume of a qcow2", [](CloneFacts &f) { f.encrypt = true; f.layered_encryption = true;
                                                              f.sniffed_format = "qcow2"; },
            Method::CopyConvert, "qcow2 header"}),
    [](const auto &info) { return testfiles::param_name(info.param.name); });

TEST(MethodName, Names)
{
    EXPECT_STREQ(method_name(Method::Clone), "clone");
    EXPECT_STREQ(method_name(Method::Copy), "copy");
    EXPECT_STREQ(method_name(Method::CopyConvert), "copy+convert");
}

// The planner: one row per kind of request, each changing the facts of a
// cloneable request (same cluster, raw, layering, no flag, cache off).
namespace {

RequestFacts clonable_request()
{
    RequestFacts f;
    f.dst_label = "RBD image 'vms/disk1'";
    f.clone = cloneable();
    f.copy = {"raw", ""};
    return f;
}

struct PlanRow {
    const char *name;
    void (*change)(RequestFacts &);
    Step step;
    Method method;
    const char *format;      // "" = none
    const char *reason_part; // in the logged reason
    int rc;                  // Refuse: the error's rc
    const char *error_part;  // Refuse: in the error's message
    bool fill_cache;
};

void other_cluster(RequestFacts &f) { f.clone.source_fsid = "fsid-b"; }
void qcow2(RequestFacts &f)
{
    f.clone.declared_format = "qcow2";
    f.clone.sniffed_format = "qcow2";
    f.copy = {"qcow2", ""};
}
void cache_on(RequestFacts &f)
{
    f.cache_enabled = true;
    f.cache = {true, ""};
}

} // namespace

class PlanTable : public ::testing::TestWithParam<PlanRow> {};

TEST_P(PlanTable, StepMethodReasonAndError)
{
    const PlanRow &r = GetParam();
    RequestFacts f = clonable_request();
    r.change(f);
    const Plan p = plan_request(f);
    EXPECT_EQ(p.step, r.step) << r.name << ": " << p.reason;
    EXPECT_EQ(p.method, r.method) << r.name << ": " << p.reason;
    EXPECT_EQ(p.format, r.format) << r.name;
    EXPECT_NE(p.reason.find(r.reason_part), std::string::npos) << r.name << ": " << p.reason;
    EXPECT_EQ(p.fill_cache, r.fill_cache) << r.name;
    if (r.step == Step::Refuse) {
        EXPECT_EQ(p.refusal.rc, r.rc) << r.name << ": " << p.refusal.message;
        EXPECT_NE(p.refusal.message.find(r.error_part), std::string::npos) << r.name << ": " << p.refusal.message;
        EXPECT_NE(p.refusal.message.find("vms/disk1"), std::string::npos) << r.name << ": " << p.refusal.message;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Rows, PlanTable,
    ::testing::Values(
        PlanRow{"clone", [](RequestFacts &) {}, Step::Clone, Method::Clone, "", "same cluster fsid-a", 0, "", false},
        PlanRow{"clone with reflink", [](RequestFacts &f) { f.reflink = true; }, Step::Clone, Method::Clone, "",
                "layering", 0, "", false},
        PlanRow{"clone from a named snapshot the user may not snapshot",
                [](RequestFacts &f) {
                    f.clone.snapshot_given = true;
                    f.clone.may_snapshot = false;
                },
                Step::Clone, Method::Clone, "", "layering", 0, "", false},
        PlanRow{"clone with the cache on (a clone needs no cache)", cache_on, Step::Clone, Method::Clone, "",
                "layering", 0, "", false},
        PlanRow{"other cluster: copy", other_cluster, Step::Copy, Method::Copy, "raw", "cluster fsid-b", 0, "",
                false},
        PlanRow{"encrypted volume, Ceph 16, reflink: refused",
                [](RequestFacts &f) {
                    f.clone.encrypt = true;
                    f.reflink = true;
                },
                Step::Refuse, Method::Copy, "", "no layered encryption", -ENOTSUP, "reflink requested", false},
        PlanRow{"encrypted volume, Ceph 16, cache on: an encrypted copy, not cached",
                [](RequestFacts &f) {
                    cache_on(f);
                    f.clone.encrypt = true;
                    f.clone.has_layering = false;
                },
                Step::Copy, Method::Copy, "raw", "not cached: an encrypted volume is not cloned here", 0, "", false},
        PlanRow{"encrypted volume, Ceph 18, cache on: via the cache",
                [](RequestFacts &f) {
                    cache_on(f);
                    f.clone.encrypt = true;
                    f.clone.layered_encryption = true;
                    f.clone.has_layering = false;
                },
                Step::ViaCache, Method::Copy, "raw", "layering", 0, "", true},
        PlanRow{"encrypted source, cache on: a copy, never cached in the clear",
                [](RequestFacts &f) {
                    cache_on(f);
                    f.clone.source_encrypted = true;
                },
                Step::Copy, Method::Copy, "raw", "not cached", 0, "", false},
        PlanRow{"encrypted source into an encrypted volume, cache on: the reason names the source's bytes",
                [](RequestFacts &f) {
                    cache_on(f);
                    f.clone.source_encrypted = true;
                    f.clone.encrypt = true;
                    f.clone.layered_encryption = true;
                },
                Step::Copy, Method::Copy, "raw", "never cached in the clear", 0, "", false},
        PlanRow{"other cluster with reflink: refused",
                [](RequestFacts &f) {
                    other_cluster(f);
                    f.reflink = true;
                },
                Step::Refuse, Method::Copy, "", "cluster fsid-b", -ENOTSUP, "reflink requested", false},
        PlanRow{"other cluster no pool reaches: refused",
                [](RequestFacts &f) {
                    other_cluster(f);
                    f.source_reachable = false;
                },
                Step::Refuse, Method::Copy, "", "cluster fsid-b", -ENOENT, "which no active RBD pool", false},
        PlanRow{"other cluster no pool reaches, reflink: the reflink refusal",
                [](RequestFacts &f) {
                    other_cluster(f);
                    f.source_reachable = false;
                    f.reflink = true;
                },
                Step::Refuse, Method::Copy, "", "cluster fsid-b", -ENOTSUP, "reflink requested", false},
        PlanRow{"may not snapshot, none given: copy",
                [](RequestFacts &f) { f.clone.may_snapshot = false; }, Step::Copy, Method::Copy, "raw",
                "may not create a snapshot", 0, "", false},
        PlanRow{"may not snapshot, reflink: refused",
                [](RequestFacts &f) {
                    f.clone.may_snapshot = false;
                    f.reflink = true;
                },
                Step::Refuse, Method::Copy, "", "may not create a snapshot", -ENOTSUP, "reflink requested", false},
        PlanRow{"qcow2: copy+convert", qcow2, Step::Copy, Method::CopyConvert, "qcow2", "declared as qcow2", 0, "",
                false},
        PlanRow{"qcow2 bytes declared raw: converted",
                [](RequestFacts &f) {
                    f.clone.sniffed_format = "qcow2";
                    f.copy = {"qcow2", ""};
                },
                Step::Copy, Method::CopyConvert, "qcow2", "first bytes are a qcow2 header", 0, "", false},
        PlanRow{"file holding a qcow2: converted",
                [](RequestFacts &f) {
                    f.clone.source_is_rbd = false;
                    f.clone.source_kind = "file";
                    f.clone.sniffed_format = "qcow2";
                    f.copy = {"qcow2", ""};
                },
                Step::Copy, Method::CopyConvert, "qcow2", "it is a qcow2 image, converted to raw", 0, "", false},
        PlanRow{"format 1: copy", [](RequestFacts &f) { f.clone.image_format_1 = true; }, Step::Copy, Method::Copy,
                "raw", "format 1", 0, "", false},
        PlanRow{"luks: refused",
                [](RequestFacts &f) {
                    f.clone.sniffed_format = "luks";
                    f.copy = {"", "it is a LUKS-encrypted image, which cannot be converted without its secret"};
                },
                Step::Refuse, Method::CopyConvert, "", "refused: it is a LUKS", -EINVAL, "LUKS-encrypted", false},
        PlanRow{"declared qcow2 but raw bytes: refused",
                [](RequestFacts &f) {
                    f.clone.declared_format = "qcow2";
                    f.copy = {"", "it is declared as qcow2 but its bytes are not a qcow2 image"};
                },
                Step::Refuse, Method::CopyConvert, "", "refused: it is declared as qcow2", -EINVAL,
                "not a qcow2 image", false},
        PlanRow{"qcow2 with a backing file: refused",
                [](RequestFacts &f) {
                    qcow2(f);
                    f.header_problem = "its header names a backing file ('/etc/shadow')";
                },
                Step::Refuse, Method::CopyConvert, "", "refused: its header names a backing file", -EPERM,
                "refusing to convert", false},
        PlanRow{"qcow2 with reflink: refused",
                [](RequestFacts &f) {
                    qcow2(f);
                    f.reflink = true;
                },
                Step::Refuse, Method::CopyConvert, "", "the pool's image cache is off", -ENOTSUP,
                "reflink requested", false},
        PlanRow{"qcow2, cache on: via the cache, a miss fills it",
                [](RequestFacts &f) {
                    qcow2(f);
                    cache_on(f);
                },
                Step::ViaCache, Method::CopyConvert, "qcow2", "declared as qcow2", 0, "", true},
        PlanRow{"qcow2, cache on, reflink: via the cache, a hit only",
                [](RequestFacts &f) {
                    qcow2(f);
                    cache_on(f);
                    f.reflink = true;
                },
                Step::ViaCache, Method::CopyConvert, "qcow2", "declared as qcow2", 0, "", false},
        PlanRow{"qcow2 with a backing file, cache on: refused before any fill",
                [](RequestFacts &f) {
                    qcow2(f);
                    cache_on(f);
                    f.header_problem = "its header names a backing file ('/etc/shadow')";
                },
                Step::Refuse, Method::CopyConvert, "", "refused: its header names", -EPERM, "refusing to convert",
                false},
        PlanRow{"qcow2, cache on, not cacheable: copy, says why",
                [](RequestFacts &f) {
                    qcow2(f);
                    f.cache_enabled = true;
                    f.cache = {false, "an RBD image's head can change under the same name"};
                },
                Step::Copy, Method::CopyConvert, "qcow2", "not cached: an RBD image's head can change", 0, "",
                false},
        PlanRow{"other cluster, cache on: via the cache",
                [](RequestFacts &f) {
                    other_cluster(f);
                    cache_on(f);
                },
                Step::ViaCache, Method::Copy, "raw", "cluster fsid-b", 0, "", true},
        PlanRow{"raw file, cache off: copy, says the cache is off",
                [](RequestFacts &f) {
                    f.clone.source_is_rbd = false;
                    f.clone.source_kind = "file";
                },
                Step::Copy, Method::Copy, "raw", "the pool's image cache is off", 0, "", false}),
    [](const ::testing::TestParamInfo<PlanRow> &i) { return "row" + std::to_string(i.index); });
