// When a new clone is flattened (flatten.hpp): the pool's policy and the
// clone's depth, as a table.
#include <gtest/gtest.h>

#include "test_files.hpp"

#include "lifecycle/flatten.hpp"

using namespace rbdclone;

namespace {

struct Row {
    const char *name;
    FlattenPolicy flatten;
    unsigned max_depth;
    unsigned depth;
    const char *reason; // nullptr: stays a clone
};

PoolPolicy policy(FlattenPolicy f, unsigned max_depth)
{
    PoolPolicy p;
    p.flatten = f;
    p.max_depth = max_depth;
    return p;
}

} // namespace

class FlattenReason : public ::testing::TestWithParam<Row> {};

TEST_P(FlattenReason, FlattenOrKeepAndWhy)
{
    const Row &r = GetParam();
    auto why = flatten_reason(policy(r.flatten, r.max_depth), r.depth);
    if (!r.reason) {
        EXPECT_FALSE(why) << r.name << ": " << *why;
        return;
    }
    ASSERT_TRUE(why) << r.name;
    EXPECT_EQ(*why, r.reason) << r.name;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, FlattenReason,
    ::testing::Values(
        Row{"never keeps a shallow clone", FlattenPolicy::Never, 5, 1, nullptr},
        Row{"never keeps even a very deep clone", FlattenPolicy::Never, 0, 1000, nullptr},
        Row{"always flattens a first clone", FlattenPolicy::Always, 5, 1,
            "the pool's policy is flatten='always'"},
        Row{"always ignores max_depth", FlattenPolicy::Always, 1000, 0, "the pool's policy is flatten='always'"},
        Row{"depth within max_depth stays", FlattenPolicy::Depth, 3, 2, nullptr},
        Row{"depth equal to max_depth stays", FlattenPolicy::Depth, 3, 3, nullptr},
        Row{"depth over max_depth is flattened", FlattenPolicy::Depth, 3, 4,
            "its clone depth 4 is more than the pool's max_depth 3"},
        Row{"max_depth 0 flattens every clone", FlattenPolicy::Depth, 0, 1,
            "its clone depth 1 is more than the pool's max_depth 0"},
        Row{"max_depth 0 keeps an image without parent", FlattenPolicy::Depth, 0, 0, nullptr},
        Row{"default max_depth is 5", FlattenPolicy::Depth, kDefaultMaxDepth, 6,
            "its clone depth 6 is more than the pool's max_depth 5"}),
    [](const auto &info) { return testfiles::param_name(info.param.name); });
