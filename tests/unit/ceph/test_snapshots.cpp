#include <gtest/gtest.h>

#include "ceph/snapshots.hpp"

using namespace rbdclone;

namespace {

// choose_clone_snapshot for SNAPS, a head of HEAD_SIZE bytes, NEWEST_UNCHANGED:
// the snapshot NAME, reused or to be made (REUSE).
void expect_choice(const std::vector<SnapshotInfo> &snaps, uint64_t head_size, bool newest_unchanged,
                   const std::string &name, bool reuse)
{
    auto c = choose_clone_snapshot(snaps, head_size, newest_unchanged);
    EXPECT_EQ(c.name, name);
    EXPECT_EQ(c.reuse, reuse);
}

} // namespace

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
    expect_choice({}, 1024, false, "rbdclone-base", false);
}

TEST(ChooseCloneSnapshot, ReusesOurNewestWhenHeadUnchanged)
{
    expect_choice({{4, "user-snap", 1024}, {9, "rbdclone-after-4", 1024}}, 1024, true, "rbdclone-after-4", true);
}

TEST(ChooseCloneSnapshot, HeadWrittenSinceMakesANewSnapshotNamedAfterTheNewest)
{
    expect_choice({{9, "rbdclone-base", 1024}}, 1024, false, "rbdclone-after-9", false);
}

TEST(ChooseCloneSnapshot, HeadResizedSinceIsNotReused)
{
    expect_choice({{9, "rbdclone-base", 1024}}, 2048, true, "rbdclone-after-9", false);
}

TEST(ChooseCloneSnapshot, NeverReusesAUsersSnapshot)
{
    expect_choice({{3, "nightly", 1024}}, 1024, true, "rbdclone-after-3", false);
}

TEST(ChooseCloneSnapshot, OnlyTheNewestCountsWhateverTheOrderListed)
{
    expect_choice({{20, "rbdclone-after-7", 1024}, {7, "rbdclone-base", 1024}}, 1024, true, "rbdclone-after-7", true);
}

TEST(ChooseCloneSnapshot, ConcurrentRequestsComputeTheSameName)
{
    std::vector<SnapshotInfo> s = {{5, "x", 10}};
    EXPECT_EQ(choose_clone_snapshot(s, 10, false).name, choose_clone_snapshot(s, 10, false).name);
}
