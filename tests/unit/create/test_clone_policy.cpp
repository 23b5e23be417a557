#include <gtest/gtest.h>

#include "create/clone.hpp"

using namespace rbdclone;

TEST(ParseRbdFeatures, Number)
{
    auto f = parse_rbd_features("61");
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f.value(), 61u);
}

TEST(ParseRbdFeatures, Names)
{
    auto f = parse_rbd_features("layering,exclusive-lock, object-map,fast-diff,deep-flatten");
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f.value(), uint64_t(RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                                   RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
                                   RBD_FEATURE_DEEP_FLATTEN));
}

TEST(ParseRbdFeatures, UnknownNameIsNamedInTheError)
{
    auto f = parse_rbd_features("layering,bogus");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error().message.find("'bogus'"), std::string::npos);
}

TEST(ParseRbdFeatures, EmptyIsAnError)
{
    EXPECT_FALSE(parse_rbd_features("").ok());
}

TEST(CloneFormat, MimicAndNewerUseFormat2)
{
    EXPECT_EQ(clone_format_for_release("luminous"), 1);
    EXPECT_EQ(clone_format_for_release("jewel"), 1);
    EXPECT_EQ(clone_format_for_release("mimic"), 2);
    EXPECT_EQ(clone_format_for_release("nautilus"), 2);
    EXPECT_EQ(clone_format_for_release("pacific"), 2);
    EXPECT_EQ(clone_format_for_release("reef"), 2);
}

TEST(CloneFormat, UnknownReleaseIsTheSafeFormat1)
{
    EXPECT_EQ(clone_format_for_release(""), 1);
}

TEST(OsdDump, ReadsRequireMinCompatClient)
{
    EXPECT_EQ(min_compat_client_from_osd_dump(
                  R"({"epoch":5,"require_min_compat_client":"luminous","min_compat_client":"jewel"})"),
              "luminous");
    EXPECT_EQ(min_compat_client_from_osd_dump(R"({"require_min_compat_client": "mimic"})"), "mimic");
    EXPECT_EQ(min_compat_client_from_osd_dump(R"({"epoch":5})"), "");
}

TEST(OsdDump, OnlyTheDumpsOwnKeyCountsNotOneNestedOrInAString)
{
    // Read as JSON, not searched as text.
    EXPECT_EQ(min_compat_client_from_osd_dump(R"({"pools":[{"require_min_compat_client":"jewel"}]})"), "");
    EXPECT_EQ(min_compat_client_from_osd_dump(R"({"note":"\"require_min_compat_client\": \"jewel\"", "epoch":1})"), "");
    EXPECT_EQ(min_compat_client_from_osd_dump(
                  R"({"pools":[{"require_min_compat_client":"jewel"}],"require_min_compat_client":"reef"})"),
              "reef");
    EXPECT_EQ(min_compat_client_from_osd_dump("not json"), "");
    EXPECT_EQ(min_compat_client_from_osd_dump(R"({"require_min_compat_client": 12})"), "");
}
