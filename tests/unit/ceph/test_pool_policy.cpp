#include <gtest/gtest.h>

#include "ceph/pool_policy.hpp"

using namespace rbdclone;

namespace {

Result<PoolPolicy> parse(std::vector<PolicyAttribute> a) { return parse_pool_policy(a); }

PolicyAttribute clone_attr(const std::string &name, const std::string &value) { return {"clone", name, value}; }

void expect_error(const Result<PoolPolicy> &r, std::initializer_list<const char *> words)
{
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, RBDC_ERR_INVALID_ARG);
    for (const char *w : words)
        EXPECT_NE(r.error().message.find(w), std::string::npos) << "'" << w << "' not in: " << r.error().message;
}

} // namespace

TEST(PoolPolicy, DefaultsAreTheStockBehaviour)
{
    auto p = parse({});
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->clone_format, CloneFormat::Auto);
    EXPECT_EQ(p->flatten, FlattenPolicy::Never);
    EXPECT_EQ(p->on_delete, DeletePolicy::Refuse);
}

TEST(PoolPolicy, EveryAttributeIsRead)
{
    auto p = parse({clone_attr("format", "1"), clone_attr("max_depth", "3"), clone_attr("flatten", "depth"),
                    clone_attr("delete", "deferred")});
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->clone_format, CloneFormat::V1);
    EXPECT_EQ(p->flatten, FlattenPolicy::Depth);
    EXPECT_EQ(p->max_depth, 3u);
    EXPECT_EQ(p->on_delete, DeletePolicy::Deferred);
}

TEST(PoolPolicy, MaxDepthAloneMeansFlattenByDepth)
{
    auto p = parse({clone_attr("max_depth", "0")});
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->flatten, FlattenPolicy::Depth);
    EXPECT_EQ(p->max_depth, 0u);
}

TEST(PoolPolicy, FlattenByDepthAloneUsesCindersDefaultDepth)
{
    auto p = parse({clone_attr("flatten", "depth")});
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->max_depth, 5u);
}

TEST(PoolPolicy, BadValuesNameTheAttributeAndWhatIsAccepted)
{
    expect_error(parse({clone_attr("format", "3")}), {"'3'", "'format'", "<rbd:clone>", "'auto', '1' or '2'"});
    expect_error(parse({clone_attr("flatten", "sometimes")}),
                 {"'sometimes'", "'flatten'", "'never', 'depth' or 'always'"});
    expect_error(parse({clone_attr("delete", "trash")}), {"'trash'", "'delete'", "'refuse' or 'deferred'"});
    for (const char *v : {"-1", "", "two", "1001", "99999999999", "3 ", "0x3"})
        expect_error(parse({clone_attr("max_depth", v)}), {"'max_depth'", "from 0 to 1000"});
}

TEST(PoolPolicy, UnknownAttributesAndElementsAreNamed)
{
    expect_error(parse({clone_attr("depth", "3")}), {"unknown attribute 'depth'", "known: delete, flatten, format, max_depth"});
    expect_error(parse({{"clones", "format", "2"}}), {"unknown element <rbd:clones>", "<rbd:image_cache>"});
    expect_error(parse({{"image_cache", "size", "2"}}), {"unknown attribute 'size' of <rbd:image_cache>",
                                                         "known: enabled, max_size"});
}

TEST(PoolPolicy, RepeatsAndContradictionsAreErrors)
{
    expect_error(parse({clone_attr("format", "1"), clone_attr("format", "2")}), {"'format'", "twice"});
    expect_error(parse({clone_attr("max_depth", "2"), clone_attr("flatten", "never")}),
                 {"'max_depth'", "flatten='depth'", "flatten='never'"});
    expect_error(parse({clone_attr("max_depth", "2"), clone_attr("flatten", "always")}), {"flatten='always'"});
}

TEST(PoolPolicy, ImageCacheIsReadWithSizesInBinaryUnits)
{
    EXPECT_FALSE(parse({})->cache_enabled);
    auto p = parse({{"image_cache", "enabled", "yes"}, {"image_cache", "max_size", "20G"}});
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p->cache_enabled);
    EXPECT_EQ(p->cache_max_size, 20ull << 30);
    EXPECT_EQ(parse({{"image_cache", "max_size", "512MiB"}})->cache_max_size, 512ull << 20);
    EXPECT_EQ(parse({{"image_cache", "max_size", "4096"}})->cache_max_size, 4096u);
    EXPECT_FALSE(parse({{"image_cache", "enabled", "no"}})->cache_enabled);
}

TEST(PoolPolicy, BadImageCacheValuesNameTheAttribute)
{
    expect_error(parse({{"image_cache", "enabled", "true"}}),
                 {"'true'", "'enabled' of <rbd:image_cache>", "'no' or 'yes'"});
    for (const char *v : {"", "G", "20 G", "20GB", "-1", "1.5G", "99999999999999999999"})
        expect_error(parse({{"image_cache", "max_size", v}}), {"'max_size' of <rbd:image_cache>"});
    expect_error(parse({{"image_cache", "max_size", "100000P"}}), {"too large"});
}
