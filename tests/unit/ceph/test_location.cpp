#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "ceph/location.hpp"

using namespace rbdclone;

namespace {

// What a case expects of a location parse_rbd_location accepts; a field left
// out is not checked.
struct Expected {
    std::optional<std::string> fsid = {}, pool = {}, image = {}, snap = {};
};

void expect_accepted(const std::string &text, const Expected &e)
{
    auto l = parse_rbd_location(text);
    ASSERT_TRUE(l.ok());
    if (e.fsid) {
        EXPECT_EQ(l->fsid, *e.fsid);
    }
    if (e.pool) {
        EXPECT_EQ(l->pool, *e.pool);
    }
    if (e.image) {
        EXPECT_EQ(l->image, *e.image);
    }
    if (e.snap) {
        EXPECT_EQ(l->snap, *e.snap);
    }
}

} // namespace

TEST(RbdLocation, PoolImage)
{
    expect_accepted("images/golden", {.fsid = "", .pool = "images", .image = "golden", .snap = ""});
}

TEST(RbdLocation, PoolImageSnap)
{
    expect_accepted("images/golden@v1", {.image = "golden", .snap = "v1"});
}

TEST(RbdLocation, GlanceStyle)
{
    expect_accepted("rbd://0b4e0a2c-1111-2222-3333-444455556666/images/golden/snap",
                    {.fsid = "0b4e0a2c-1111-2222-3333-444455556666",
                     .pool = "images",
                     .image = "golden",
                     .snap = "snap"});
}

TEST(RbdLocation, QemuPrefixAccepted)
{
    expect_accepted("rbd:images/golden", {.pool = "images"});
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
