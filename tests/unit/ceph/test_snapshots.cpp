#include <gtest/gtest.h>

#include "ceph/snapshots.hpp"

using namespace rbdclone;

TEST(OurSnapshots, RecognisedByPrefixOnly)
{
    EXPECT_TRUE(is_our_snapshot("rbdclone-base"));
    EXPECT_TRUE(is_our_snapshot("rbdclone-after-12"));
    EXPECT_FALSE(is_our_snapshot("libvirt-1234"));
    EXPECT_FALSE(is_our_snapshot("my-rbdclone-x"));
    EXPECT_FALSE(is_our_snapshot(""));
}

TEST(ChooseCloneSnapshot, NoSnapshotsCreatesTheBaseSnapshot)
{
    auto c = choose_clone_snapshot({}, 1024, false);
    EXPECT_EQ(c.name, "rbdclone-base");
    EXPECT_FALSE(c.reuse);
}

TEST(ChooseCloneSnapshot, ReusesOurNewestWhenHeadUnchanged)
{
    std::vector<SnapshotInfo> s = {{4, "user-snap", 1024}, {9, "rbdclone-after-4", 1024}};
    auto c = choose_clone_snapshot(s, 1024, true);
    EXPECT_EQ(c.name, "rbdclone-after-4");
    EXPECT_TRUE(c.reuse);
}

TEST(ChooseCloneSnapshot, HeadWrittenSinceMakesANewSnapshotNamedAfterTheNewest)
{
    std::vector<SnapshotInfo> s = {{9, "rbdclone-base", 1024}};
    auto c = choose_clone_snapshot(s, 1024, false);
    EXPECT_EQ(c.name, "rbdclone-after-9");
    EXPECT_FALSE(c.reuse);
}

TEST(ChooseCloneSnapshot, HeadResizedSinceIsNotReused)
{
    std::vector<SnapshotInfo> s = {{9, "rbdclone-base", 1024}};
    auto c = choose_clone_snapshot(s, 2048, true);
    EXPECT_FALSE(c.reuse);
    EXPECT_EQ(c.name, "rbdclone-after-9");
}

TEST(ChooseCloneSnapshot, NeverReusesAUsersSnapshot)
{
    std::vector<SnapshotInfo> s = {{3, "nightly", 1024}};
    auto c = choose_clone_snapshot(s, 1024, true);
    EXPECT_FALSE(c.reuse);
    EXPECT_EQ(c.name, "rbdclone-after-3");
}

TEST(ChooseCloneSnapshot, OnlyTheNewestCountsWhateverTheOrderListed)
{
    std::vector<SnapshotInfo> s = {{20, "rbdclone-after-7", 1024}, {7, "rbdclone-base", 1024}};
    auto c = choose_clone_snapshot(s, 1024, true);
    EXPECT_EQ(c.name, "rbdclone-after-7");
    EXPECT_TRUE(c.reuse);
}

TEST(ChooseCloneSnapshot, ConcurrentRequestsComputeTheSameName)
{
    std::vector<SnapshotInfo> s = {{5, "x", 10}};
    EXPECT_EQ(choose_clone_snapshot(s, 10, false).name, choose_clone_snapshot(s, 10, false).name);
}
