#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ceph/cluster.hpp"

using namespace rbdclone;

namespace {

ClusterParams params(const std::string &mon, const std::string &user, const std::string &key)
{
    ClusterParams p;
    p.mon_host = mon;
    p.user = user;
    p.key = key;
    return p;
}

// A connection cache whose connector makes fake (null-handle) clusters and
// counts its calls.
struct FakeCache {
    std::atomic<int> calls{0};
    ConnectionCache cache{[this](const ClusterParams &p) -> Result<std::shared_ptr<Cluster>> {
        calls++;
        if (p.mon_host == "unreachable")
            return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT, "no monitor");
        return std::make_shared<Cluster>(RadosHandle(), "fsid-" + p.mon_host);
    }};
};

} // namespace

TEST(ClusterParams, SameClusterAndIdentityShareAKey)
{
    EXPECT_EQ(params("m:1", "admin", "K").cache_key(), params("m:1", "admin", "K").cache_key());
    EXPECT_NE(params("m:1", "admin", "K").cache_key(), params("m:1", "libvirt", "K").cache_key());
    EXPECT_NE(params("m:1", "admin", "K").cache_key(), params("m:1", "admin", "K2").cache_key());
    EXPECT_NE(params("m:1", "admin", "K").cache_key(), params("m:2", "admin", "K").cache_key());
    auto a = params("m:1", "admin", "K");
    auto b = a;
    b.options.emplace_back("rados_osd_op_timeout", "5");
    EXPECT_NE(a.cache_key(), b.cache_key());
}

TEST(ClusterParams, DescribeNeverShowsTheKey)
{
    EXPECT_EQ(params("m:1", "admin", "SECRETKEY").describe().find("SECRETKEY"), std::string::npos);
}

TEST(ConnectionSettings, StockDefaultsThenPoolOptionsWhichWin)
{
    auto p = params("127.0.0.1:6789", "admin", "K");
    p.options.emplace_back("client_mount_timeout", "5");
    auto s = connection_settings(p);
    ASSERT_GE(s.size(), 7u);
    EXPECT_EQ(s[0], (std::pair<std::string, std::string>{"key", "K"}));
    EXPECT_EQ(s[1], (std::pair<std::string, std::string>{"auth_supported", "cephx"}));
    // librados applies settings in order: the pool's option comes last.
    EXPECT_EQ(s.back(), (std::pair<std::string, std::string>{"client_mount_timeout", "5"}));
    bool stock_timeout = false;
    for (auto &kv : s)
        stock_timeout |= kv == std::pair<std::string, std::string>{"rados_osd_op_timeout", "30"};
    EXPECT_TRUE(stock_timeout);
}

TEST(ConnectionSettings, NoAuthWithoutUser)
{
    auto s = connection_settings(params("m", "", ""));
    EXPECT_EQ(s[0], (std::pair<std::string, std::string>{"auth_supported", "none"}));
    for (auto &kv : s)
        EXPECT_NE(kv.first, "key");
}

TEST(ConnectionCache, OneConnectionPerClusterAndIdentity)
{
    FakeCache f;
    auto a = f.cache.get(params("m:1", "admin", "K"));
    auto b = f.cache.get(params("m:1", "admin", "K"));
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(a.value().get(), b.value().get());
    EXPECT_EQ(f.calls.load(), 1);
    auto c = f.cache.get(params("m:1", "libvirt", "K"));
    ASSERT_TRUE(c.ok());
    EXPECT_NE(a.value().get(), c.value().get());
    EXPECT_EQ(f.cache.live_connections(), 2u);
}

TEST(ConnectionCache, ConnectionClosesWhenLastUserLetsGo)
{
    FakeCache f;
    {
        auto a = f.cache.get(params("m:1", "admin", "K"));
        ASSERT_TRUE(a.ok());
        EXPECT_EQ(f.cache.live_connections(), 1u);
    }
    EXPECT_EQ(f.cache.live_connections(), 0u);
    auto again = f.cache.get(params("m:1", "admin", "K"));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(f.calls.load(), 2);
}

TEST(ConnectionCache, FailureIsReturnedAndNotCached)
{
    FakeCache f;
    auto a = f.cache.get(params("unreachable", "admin", "K"));
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error().kind, RBDC_ERR_TIMEOUT);
    auto b = f.cache.get(params("unreachable", "admin", "K"));
    EXPECT_FALSE(b.ok());
    EXPECT_EQ(f.calls.load(), 2);
}

TEST(ConnectionCache, ConcurrentGetsEndWithOneSharedConnection)
{
    FakeCache f;
    std::vector<std::shared_ptr<Cluster>> got(8);
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; i++)
        ts.emplace_back([&, i] { got[i] = f.cache.get(params("m:1", "admin", "K")).value(); });
    for (auto &t : ts)
        t.join();
    // Racing connects may open extra connections, but every caller that
    // got one after the first insert shares it, and only one stays cached.
    auto last = f.cache.get(params("m:1", "admin", "K")).value();
    int same = 0;
    for (auto &g : got)
        same += g.get() == last.get();
    EXPECT_GE(same, 1);
    EXPECT_EQ(f.cache.live_connections(), 1u);
}
