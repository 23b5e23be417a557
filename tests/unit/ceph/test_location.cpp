#include <gtest/gtest.h>

#include "ceph/location.hpp"

using namespace rbdclone;

TEST(RbdLocation, PoolImage)
{
    auto l = parse_rbd_location("images/golden");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->pool, "images");
    EXPECT_EQ(l->image, "golden");
    EXPECT_EQ(l->snap, "");
    EXPECT_EQ(l->fsid, "");
}

TEST(RbdLocation, PoolImageSnap)
{
    auto l = parse_rbd_location("images/golden@v1");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->image, "golden");
    EXPECT_EQ(l->snap, "v1");
}

TEST(RbdLocation, GlanceStyle)
{
    auto l = parse_rbd_location("rbd://0b4e0a2c-1111-2222-3333-444455556666/images/golden/snap");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->fsid, "0b4e0a2c-1111-2222-3333-444455556666");
    EXPECT_EQ(l->pool, "images");
    EXPECT_EQ(l->image, "golden");
    EXPECT_EQ(l->snap, "snap");
}

TEST(RbdLocation, QemuPrefixAccepted)
{
    auto l = parse_rbd_location("rbd:images/golden");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->pool, "images");
}

TEST(RbdLocation, RejectsWhatIsAmbiguous)
{
    for (const char *bad : {"golden", "a/b/c", "/abs/path", "images/", "/golden", "images/golden@",
                            "rbd://fsid/images/golden", "rbd://fsid//golden/snap", "images/a@b@c",
                            "rbd:images/golden:id=admin"}) {
        auto l = parse_rbd_location(bad);
        EXPECT_FALSE(l.ok()) << bad;
        if (!l.ok()) {
            EXPECT_EQ(l.error().kind, RBDC_ERR_INVALID_ARG);
            EXPECT_NE(l.error().message.find(bad), std::string::npos) << l.error().message;
        }
    }
}

TEST(RbdLocation, LabelNamesPoolAndImageAndTheSnapshotWhenGiven)
{
    RbdLocation l{"fsid", "images", "", "golden", ""};
    EXPECT_EQ(l.label(), "RBD image 'images/golden'");
    EXPECT_EQ(l.label_at(), "RBD image 'images/golden'");
    l.snap = "v1";
    EXPECT_EQ(l.label(), "RBD image 'images/golden'");
    EXPECT_EQ(l.label_at(), "RBD image 'images/golden' at snapshot 'v1'");
    l.ns = "tenant1";
    EXPECT_EQ(l.label(), "RBD image 'images/tenant1/golden'");
}
