// ceph/header_view.hpp against a real OSD: the view of an image read
// without librbd opening it must say exactly what librbd says (its newest
// snapshot, whether the head still equals it, the first and last bytes a
// clone of it holds), and must give way (nullopt) in every case it is not
// made for.  Our module only.
#include <gtest/gtest.h>

#include <rbd/librbd.h>

#include <optional>
#include <string>

#include "ceph/header_view.hpp"
#include "ceph/image_open.hpp"
#include "ceph/names.hpp"
#include "ceph/snapshots.hpp"
#include "lab_client.hpp"
#include "source/format_sniff.hpp"

using namespace lab;

namespace {

constexpr uint64_t kFastDiff = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP |
                               RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;

std::optional<rbdclone::HeaderView> view_of(const std::string &image)
{
    std::string id;
    if (rbdclone::image_id_of(ceph().io("rbd"), image, id) != 0)
        return std::nullopt;
    return rbdclone::read_header_view(ceph().io("rbd"), id, rbdclone::kSniffHeadBytes, rbdclone::kSniffTailBytes);
}

// librbd's answer to the same question: is the newest snapshot `snap`, and
// does the head still equal it?
bool librbd_reuses(const std::string &image, const std::string &snap)
{
    rbdclone::ImageHandle img;
    EXPECT_EQ(rbdclone::open_image_by_name(ceph().io("rbd"), image, nullptr, true, img), 0);
    if (!img)
        return false;
    auto snaps = rbdclone::list_snapshots(img.get());
    EXPECT_TRUE(snaps);
    auto newest = snaps ? rbdclone::newest_snapshot(*snaps) : std::nullopt;
    uint64_t size = 0;
    rbd_get_size(img.get(), &size);
    if (!newest || newest->name != snap || newest->size != size)
        return false;
    auto same = rbdclone::head_unchanged_since(img.get(), snap, size);
    EXPECT_TRUE(same);
    return same && *same;
}

// An image of `size` bytes, written at its start and its end, with our
// snapshot as its newest.
std::string golden(uint64_t size, uint64_t features = kFastDiff)
{
    const std::string name = unique("view");
    ceph().create("rbd", name, size, features);
    ceph().write("rbd", name, 0, std::string(70 * 1024, 'h'));
    ceph().write("rbd", name, size - 700, std::string(700, 't'));
    ceph().snapshot("rbd", name, rbdclone::first_snapshot_name(), false);
    return name;
}

struct Cleanup {
    std::string name;
    ~Cleanup() { ceph().remove("rbd", name); }
};

} // namespace

TEST(HeaderView, AnUnchangedHeadIsReadAsItsNewestSnapshotOfOursWithTheBytesACloneHolds)
{
    BEYOND_STOCK();
    // 12 MiB + 100 bytes: the last 512 bytes straddle two objects.
    const uint64_t size = 12 * MiB + 100;
    Cleanup img{golden(size)};
    ASSERT_TRUE(librbd_reuses(img.name, rbdclone::first_snapshot_name()));
    auto v = view_of(img.name);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->size, size);
    EXPECT_EQ(v->newest.name, rbdclone::first_snapshot_name());
    EXPECT_EQ(v->newest.size, size);
    EXPECT_FALSE(v->newest_protected);
    EXPECT_TRUE(v->features & RBD_FEATURE_LAYERING);
    EXPECT_EQ(v->head, ceph().read("rbd", img.name, 0, rbdclone::kSniffHeadBytes));
    EXPECT_EQ(v->tail, ceph().read("rbd", img.name, size - rbdclone::kSniffTailBytes, rbdclone::kSniffTailBytes));
    // Protected (clone format 1), it says so.
    {
        rbdclone::ImageHandle rw;
        ASSERT_EQ(rbdclone::open_image_by_name(ceph().io("rbd"), img.name, nullptr, false, rw), 0);
        ASSERT_EQ(rbd_snap_protect(rw.get(), rbdclone::first_snapshot_name().c_str()), 0);
    }
    v = view_of(img.name);
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->newest_protected);
    // Older user snapshots do not matter; a newer one does.
    Cleanup other{golden(8 * MiB)};
    ceph().write("rbd", other.name, MiB, "x");
    ceph().snapshot("rbd", other.name, "user-1", false);
    ceph().snapshot("rbd", other.name, rbdclone::snapshot_after_name(1000000), false);
    EXPECT_TRUE(view_of(other.name));
    ceph().snapshot("rbd", other.name, "user-2", false);
    EXPECT_FALSE(librbd_reuses(other.name, rbdclone::snapshot_after_name(1000000)));
    EXPECT_FALSE(view_of(other.name));
}

TEST(HeaderView, AHeadWrittenDiscardedOrResizedSinceGivesWayAsLibrbdFindsIt)
{
    BEYOND_STOCK();
    const std::string snap = rbdclone::first_snapshot_name();
    Cleanup written{golden(16 * MiB)};
    ceph().write("rbd", written.name, 9 * MiB, "changed");
    EXPECT_FALSE(librbd_reuses(written.name, snap));
    EXPECT_FALSE(view_of(written.name));

    Cleanup discarded{golden(16 * MiB)};
    {
        rbdclone::ImageHandle rw;
        ASSERT_EQ(rbdclone::open_image_by_name(ceph().io("rbd"), discarded.name, nullptr, false, rw), 0);
        ASSERT_EQ(rbd_discard(rw.get(), 0, 4 * MiB), static_cast<ssize_t>(4 * MiB));
    }
    EXPECT_FALSE(librbd_reuses(discarded.name, snap));
    EXPECT_FALSE(view_of(discarded.name));

    Cleanup resized{golden(16 * MiB)};
    {
        rbdclone::ImageHandle rw;
        ASSERT_EQ(rbdclone::open_image_by_name(ceph().io("rbd"), resized.name, nullptr, false, rw), 0);
        ASSERT_EQ(rbd_resize(rw.get(), 20 * MiB), 0);
    }
    EXPECT_FALSE(view_of(resized.name));
}

TEST(HeaderView, WhatItIsNotMadeForIsLeftToLibrbd)
{
    BEYOND_STOCK();
    // No snapshot at all.
    Cleanup bare{unique("view")};
    ceph().create("rbd", bare.name, 8 * MiB, kFastDiff);
    EXPECT_FALSE(view_of(bare.name));
    // No fast-diff object map to compare.
    Cleanup plain{golden(8 * MiB, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK)};
    EXPECT_TRUE(librbd_reuses(plain.name, rbdclone::first_snapshot_name()));
    EXPECT_FALSE(view_of(plain.name));
    // A clone: its bytes are partly its parent's.
    Cleanup parent{golden(8 * MiB)};
    ceph().snapshot("rbd", parent.name, "base", true);
    Cleanup child{unique("view-child")};
    {
        rbdclone::ImageOptions opts;
        rbd_image_options_set_uint64(opts.get(), RBD_IMAGE_OPTION_FEATURES, kFastDiff);
        ASSERT_EQ(rbd_clone3(ceph().io("rbd"), parent.name.c_str(), "base", ceph().io("rbd"), child.name.c_str(),
                             opts.get()),
                  0);
    }
    ceph().snapshot("rbd", child.name, rbdclone::first_snapshot_name(), false);
    EXPECT_TRUE(librbd_reuses(child.name, rbdclone::first_snapshot_name()));
    EXPECT_FALSE(view_of(child.name));
    ceph().remove("rbd", child.name);
    // A missing image id: nothing to read.
    EXPECT_FALSE(rbdclone::read_header_view(ceph().io("rbd"), "0000deadbeef", rbdclone::kSniffHeadBytes,
                                            rbdclone::kSniffTailBytes));
}
