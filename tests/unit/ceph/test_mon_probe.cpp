#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ceph/mon_probe.hpp"

using namespace rbdclone;

TEST(ParseMonHost, HostsWithAndWithoutPorts)
{
    auto eps = parse_mon_host("10.0.0.1:6789,mon2,[::1]:3300");
    ASSERT_EQ(eps.size(), 4u);
    EXPECT_EQ(eps[0], (MonEndpoint{"10.0.0.1", 6789}));
    EXPECT_EQ(eps[1], (MonEndpoint{"mon2", 3300}));
    EXPECT_EQ(eps[2], (MonEndpoint{"mon2", 6789}));
    EXPECT_EQ(eps[3], (MonEndpoint{"::1", 3300}));
}

TEST(ParseMonHost, TrailingCommaAndEmptyItemsIgnored)
{
    auto eps = parse_mon_host("127.0.0.1:1,,");
    ASSERT_EQ(eps.size(), 1u);
    EXPECT_EQ(eps[0], (MonEndpoint{"127.0.0.1", 1}));
}

TEST(ParseMonHost, BareIPv6WithoutBracketsIsAHost)
{
    auto eps = parse_mon_host("fe80::1");
    ASSERT_EQ(eps.size(), 2u);
    EXPECT_EQ(eps[0].host, "fe80::1");
}

TEST(MonitorReachable, ListeningSocketIsReachableClosedPortIsNot)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &l);
    int port = ntohs(a.sin_port);
    EXPECT_TRUE(any_monitor_reachable({{"127.0.0.1", port}}, 500));
    close(fd);
    EXPECT_FALSE(any_monitor_reachable({{"127.0.0.1", port}}, 500));
}

TEST(NormalizeMonHost, WellKnownPortsGetTheirProtocol)
{
    EXPECT_EQ(normalize_mon_host("10.0.0.1:6789,10.0.0.2:3300,mon3,[::1]:6789,h:7000"),
              "v1:10.0.0.1:6789,v2:10.0.0.2:3300,mon3,v1:[::1]:6789,h:7000");
    EXPECT_EQ(normalize_mon_host("v2:h:6789"), "v2:h:6789");
    EXPECT_EQ(normalize_mon_host("a:1,"), "a:1");
}

TEST(ParseMonHost, ProtocolPrefixIsNotPartOfTheHost)
{
    auto eps = parse_mon_host("v1:10.0.0.1:6789");
    ASSERT_EQ(eps.size(), 1u);
    EXPECT_EQ(eps[0], (MonEndpoint{"10.0.0.1", 6789}));
}
