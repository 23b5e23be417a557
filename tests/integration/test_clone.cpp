// Creating VM disks from images by copy-on-write clone: across pools of one
// cluster, with --reflink, from <backingStore> locations, concurrently; and
// refusing to clone what must not be cloned.  Our module only.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "lab_client.hpp"

using namespace lab;

namespace {

class Clone : public ::testing::Test {
  protected:
    void SetUp() override
    {
        if (testing_stock())
            GTEST_SKIP() << "the stock backend cannot do these";
        images_ = std::make_unique<Pool>(unique("images"));
        ASSERT_TRUE(images_->ok()) << last_error().message;
        PoolSpec vms{unique("vms")};
        vms.ceph_pool = "rbd2";
        vms.user = "libvirt"; // another Ceph user than the image pool's
        vms_ = std::make_unique<Pool>(vms);
        ASSERT_TRUE(vms_->ok()) << last_error().message;
    }
    void TearDown() override
    {
        images_.reset();
        vms_.reset();
        for (auto it = created_.rbegin(); it != created_.rend(); ++it)
            ceph().remove(it->first, it->second);
    }
    std::string track(const std::string &pool, const std::string &name)
    {
        created_.emplace_back(pool, name);
        return name;
    }
    // A source image in Ceph pool "rbd" with recognisable data.
    Vol source(const std::string &name, const std::string &data = "golden image data", uint64_t size = 32 * MiB)
    {
        track("rbd", name);
        ceph().create("rbd", name, size);
        ceph().write("rbd", name, 0, data);
        virStoragePoolRefresh(images_->get(), 0);
        return Vol(virStorageVolLookupByName(images_->get(), name.c_str()));
    }
    Vol create_from(Pool &dst, const std::string &name, virStorageVolPtr src, unsigned flags = 0,
                    uint64_t cap = 32 * MiB)
    {
        return Vol(virStorageVolCreateXMLFrom(dst.get(), vol_xml(name, cap).c_str(), src, flags));
    }
    // A reflink clone (no copy instead) of SRC, CAP bytes, into rbd2, which must be refused
    // with CODE and a message holding WHY, leaving nothing there.
    void expect_reflink_refused(virStorageVolPtr src, uint64_t cap, int code, const std::string &why)
    {
        const std::string disk = track("rbd2", unique("disk"));
        Vol v = create_from(*vms_, disk, src, VIR_STORAGE_VOL_CREATE_REFLINK, cap);
        EXPECT_FALSE(v);
        auto e = last_error();
        EXPECT_EQ(e.code, code) << e.message;
        EXPECT_NE(e.message.find(why), std::string::npos) << e.message;
        EXPECT_FALSE(ceph().exists("rbd2", disk));
    }
    std::unique_ptr<Pool> images_, vms_;
    std::vector<std::pair<std::string, std::string>> created_;
};

std::string backing_xml(const std::string &name, const std::string &path, const std::string &cap = "",
                        const std::string &format = "")
{
    return "<volume><name>" + name + "</name>" +
           (cap.empty() ? "" : "<capacity unit='bytes'>" + cap + "</capacity>") +
           "<target><format type='raw'/></target><backingStore><path>" + path + "</path>" +
           (format.empty() ? "" : "<format type='" + format + "'/>") + "</backingStore></volume>";
}

std::string libvirtd_log()
{
    std::ifstream f(env("LIBVIRTD_LOG"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace

TEST_F(Clone, CrossPoolCreateFromIsACloneReadableThroughTheChild)
{
    Vol src = source(unique("golden"));
    ASSERT_TRUE(src) << last_error().message;
    const std::string disk = track("rbd2", unique("disk"));
    Vol v = create_from(*vms_, disk, src.get());
    ASSERT_TRUE(v) << last_error().message;
    std::string parent = ceph().parent("rbd2", disk);
    EXPECT_EQ(parent.rfind("rbd/" + created_[0].second + "@rbdclone-", 0), 0u) << parent;
    EXPECT_EQ(ceph().read("rbd2", disk, 0, 17), "golden image data");
    EXPECT_EQ(std::string(virStorageVolGetKey(v.get())), "rbd2/" + disk);
    // Decision logged at INFO with its reason.
    std::string log = libvirtd_log();
    EXPECT_NE(log.find("decision for RBD image 'rbd2/" + disk + "' from RBD image 'rbd/" + created_[0].second +
                       "': clone (same cluster " + env("CEPH_FSID")),
              std::string::npos);
}

TEST_F(Clone, ReflinkClonesWhenPossible)
{
    Vol src = source(unique("golden"));
    ASSERT_TRUE(src);
    const std::string disk = track("rbd2", unique("disk"));
    Vol v = create_from(*vms_, disk, src.get(), VIR_STORAGE_VOL_CREATE_REFLINK);
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_NE(ceph().parent("rbd2", disk), "");
}

TEST_F(Clone, Qcow2BytesInRbdAreNeverClonedAndReflinkSaysWhy)
{
    Vol src = source(unique("qcow-in-rbd"), std::string("QFI\xfb\0\0\0\x03", 8));
    ASSERT_TRUE(src);
    const std::string disk = track("rbd2", unique("disk"));
    Vol v = create_from(*vms_, disk, src.get(), VIR_STORAGE_VOL_CREATE_REFLINK);
    EXPECT_FALSE(v);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_OPERATION_UNSUPPORTED);
    EXPECT_NE(e.message.find("first bytes are a qcow2 header"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("rbd2/" + disk), std::string::npos) << e.message;
    EXPECT_FALSE(ceph().exists("rbd2", disk));
    // Without reflink it is still never a clone.
    Vol v2 = create_from(*vms_, disk, src.get());
    if (ceph().exists("rbd2", disk)) {
        EXPECT_EQ(ceph().parent("rbd2", disk), "");
    }
    EXPECT_EQ(ceph().snapshots("rbd", created_[0].second).size(), 0u) << "the source was not touched";
}

TEST_F(Clone, ImageWithoutLayeringIsNotCloned)
{
    const std::string name = track("rbd", unique("nolayer"));
    ceph().create("rbd", name, 8 * MiB, RBD_FEATURE_EXCLUSIVE_LOCK);
    virStoragePoolRefresh(images_->get(), 0);
    Vol src(virStorageVolLookupByName(images_->get(), name.c_str()));
    ASSERT_TRUE(src);
    expect_reflink_refused(src.get(), 8 * MiB, VIR_ERR_OPERATION_UNSUPPORTED, "lacks the RBD 'layering' feature");
}

TEST_F(Clone, FileVolumeOfADirPoolIsNotClonedAndItsRefreshDoesNotFail)
{
    TempDir dir("dirpool");
    ASSERT_TRUE(dir.ok());
    {
        std::ofstream f(dir.file("base.img"), std::ios::binary);
        f << std::string(1 * MiB, 'r');
    }
    DirPool dp(dir.path());
    ASSERT_TRUE(dp.ok()) << last_error().message;
    Vol src(virStorageVolLookupByName(dp.get(), "base.img"));
    ASSERT_TRUE(src) << last_error().message;
    expect_reflink_refused(src.get(), 1 * MiB, VIR_ERR_OPERATION_UNSUPPORTED,
                           "'" + dir.file("base.img") + "' is a file volume, not an RBD image");
}

TEST_F(Clone, MissingSourceImageIsNoStorageVol)
{
    Vol src = source(unique("vanishing"));
    ASSERT_TRUE(src);
    ceph().remove("rbd", created_[0].second);
    const std::string disk = track("rbd2", unique("disk"));
    Vol v = create_from(*vms_, disk, src.get());
    EXPECT_FALSE(v);
    EXPECT_EQ(last_error().code, VIR_ERR_NO_STORAGE_VOL) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd2", disk));
}

TEST_F(Clone, BackingStorePoolImageIsCloned)
{
    Vol src = source(unique("golden"));
    ASSERT_TRUE(src);
    const std::string disk = track("rbd2", unique("disk"));
    Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, "rbd/" + created_[0].second).c_str(), 0));
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().read("rbd2", disk, 0, 17), "golden image data");
    EXPECT_EQ(ceph().size("rbd2", disk), 32 * MiB) << "capacity omitted: the source's";
    EXPECT_NE(ceph().parent("rbd2", disk), "");
}

TEST_F(Clone, BackingStoreWithSnapshotClonesThatSnapshot)
{
    Vol src = source(unique("golden"), "version one");
    ASSERT_TRUE(src);
    const std::string img = created_[0].second;
    ceph().snapshot("rbd", img, "v1", true);
    ceph().write("rbd", img, 0, "VERSION TWO");
    const std::string disk = track("rbd2", unique("disk"));
    Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, "rbd/" + img + "@v1", "67108864").c_str(), 0));
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().read("rbd2", disk, 0, 11), "version one");
    EXPECT_EQ(ceph().parent("rbd2", disk), "rbd/" + img + "@v1");
    EXPECT_EQ(ceph().size("rbd2", disk), 64 * MiB) << "a larger capacity grows the clone";
    EXPECT_EQ(ceph().snapshots("rbd", img).size(), 1u) << "no snapshot of ours was made";
}

TEST_F(Clone, BackingStoreGlanceLocationIsCloned)
{
    Vol src = source(unique("glance"));
    ASSERT_TRUE(src);
    const std::string img = created_[0].second;
    ceph().snapshot("rbd", img, "snap", true);
    const std::string disk = track("rbd2", unique("disk"));
    std::string loc = "rbd://" + env("CEPH_FSID") + "/rbd/" + img + "/snap";
    Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, loc).c_str(), 0));
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().parent("rbd2", disk), "rbd/" + img + "@snap");
}

TEST_F(Clone, BackingStoreInAnotherClusterIsNotCloned)
{
    Vol src = source(unique("glance"));
    ASSERT_TRUE(src);
    const std::string disk = track("rbd2", unique("disk"));
    std::string loc = "rbd://00000000-0000-0000-0000-000000000000/rbd/" + created_[0].second + "/snap";
    Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, loc).c_str(), 0));
    EXPECT_FALSE(v);
    EXPECT_NE(last_error().message.find("cluster 00000000-0000-0000-0000-000000000000"), std::string::npos)
        << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd2", disk));
}

TEST_F(Clone, BackingStoreSmallerCapacityIsAnErrorNamingBothSizes)
{
    Vol src = source(unique("golden"));
    ASSERT_TRUE(src);
    const std::string disk = track("rbd2", unique("disk"));
    Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, "rbd/" + created_[0].second, "1048576").c_str(), 0));
    EXPECT_FALSE(v);
    auto e = last_error();
    EXPECT_NE(e.message.find("1048576"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(std::to_string(32 * MiB)), std::string::npos) << e.message;
    EXPECT_FALSE(ceph().exists("rbd2", disk));
}

TEST_F(Clone, BackingStoreErrorsNameWhatIsWrong)
{
    const std::string disk = track("rbd2", unique("disk"));
    struct {
        std::string path;
        int code;
        std::string words;
    } cases[] = {
        {"rbd/no-such-image", VIR_ERR_NO_STORAGE_VOL, "RBD image 'rbd/no-such-image' does not exist"},
        {"no-such-pool/img", VIR_ERR_NO_STORAGE_POOL, "Ceph pool 'no-such-pool'"},
        {"just-a-name", VIR_ERR_INVALID_ARG, "invalid RBD location 'just-a-name'"},
    };
    for (auto &c : cases) {
        Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, c.path, "1048576").c_str(), 0));
        EXPECT_FALSE(v) << c.path;
        auto e = last_error();
        EXPECT_EQ(e.code, c.code) << c.path << ": " << e.message;
        EXPECT_NE(e.message.find(c.words), std::string::npos) << e.message;
        EXPECT_FALSE(ceph().exists("rbd2", disk));
    }
    Vol src = source(unique("golden"));
    ASSERT_TRUE(src);
    Vol v(virStorageVolCreateXML(vms_->get(), backing_xml(disk, "rbd/" + created_.back().second + "@nosnap").c_str(), 0));
    EXPECT_FALSE(v);
    EXPECT_EQ(last_error().code, VIR_ERR_NO_STORAGE_VOL);
    EXPECT_NE(last_error().message.find("@nosnap' does not exist"), std::string::npos) << last_error().message;
}

TEST_F(Clone, ReadOnlyCephUserCannotSnapshotSoTheImageIsNotCloned)
{
    // The image pool is used with a read-only Ceph user (profile rbd-read-only).
    ReadOnlyUserPool ro_pool(unique("images-ro"));
    ASSERT_TRUE(ro_pool.ok()) << last_error().message;
    const std::string img = track("rbd", unique("golden"));
    ceph().create("rbd", img, 8 * MiB);
    virStoragePoolRefresh(ro_pool.get(), 0);
    Vol src(virStorageVolLookupByName(ro_pool.get(), img.c_str()));
    ASSERT_TRUE(src) << last_error().message;
    expect_reflink_refused(src.get(), 8 * MiB, VIR_ERR_OPERATION_UNSUPPORTED,
                           "may not create a snapshot of RBD image 'rbd/" + img + "'");
    EXPECT_EQ(ceph().snapshots("rbd", img).size(), 0u);
}

// In one pool: libvirt 9.0's storageVolCreateXMLFrom locks the source and
// destination pools in opposite orders before and after buildVolFrom, so
// concurrent cross-pool requests can deadlock in the driver itself (seen
// here with 16); same-pool requests lock one pool and are safe.
TEST_F(Clone, SixteenParallelCreateFromShareOneSnapshot)
{
    Vol src = source(unique("popular"), "shared parent");
    ASSERT_TRUE(src);
    const std::string img = created_[0].second;
    const std::string srcname = img;
    std::vector<std::string> disks;
    for (int i = 0; i < 16; i++)
        disks.push_back(track("rbd", unique("par")));
    std::vector<std::string> errors(16);
    std::vector<std::thread> ts;
    const std::string vms_name = images_->name(), images_name = images_->name();
    for (int i = 0; i < 16; i++)
        ts.emplace_back([&, i] {
            virConnectPtr c = virConnectOpen(env("LIBVIRT_STORAGE_URI").c_str());
            virStoragePoolPtr dp = virStoragePoolLookupByName(c, vms_name.c_str());
            virStoragePoolPtr sp = virStoragePoolLookupByName(c, images_name.c_str());
            virStorageVolPtr sv = virStorageVolLookupByName(sp, srcname.c_str());
            virStorageVolPtr v = virStorageVolCreateXMLFrom(dp, vol_xml(disks[i], 32 * MiB).c_str(), sv, 0);
            if (!v)
                errors[i] = last_error().message;
            else
                virStorageVolFree(v);
            virStorageVolFree(sv);
            virStoragePoolFree(sp);
            virStoragePoolFree(dp);
            virConnectClose(c);
        });
    for (auto &t : ts)
        t.join();
    for (int i = 0; i < 16; i++) {
        EXPECT_EQ(errors[i], "") << "request " << i;
        EXPECT_EQ(ceph().read("rbd", disks[i], 0, 13), "shared parent") << disks[i];
    }
    auto snaps = ceph().snapshots("rbd", img);
    EXPECT_EQ(snaps.size(), 1u);
    for (int i = 1; i < 16; i++)
        EXPECT_EQ(ceph().parent("rbd", disks[i]), ceph().parent("rbd", disks[0]));
}

// Changes the cluster (clone format 2 from here on): keep it last.
TEST_F(Clone, ZZCloneFormat2WhenTheClusterRequiresMimic)
{
    ASSERT_EQ(require_mimic_clients(), "");
    Vol src = source(unique("golden"));
    ASSERT_TRUE(src);
    const std::string img = created_[0].second;
    const std::string disk = track("rbd2", unique("disk"));
    Vol v = create_from(*vms_, disk, src.get());
    ASSERT_TRUE(v) << last_error().message;
    auto snaps = ceph().snapshots("rbd", img);
    ASSERT_EQ(snaps.size(), 1u);
    rbd_image_t h;
    ASSERT_EQ(rbd_open(ceph().io("rbd"), img.c_str(), &h, nullptr), 0);
    int prot = -1;
    EXPECT_EQ(rbd_snap_is_protected(h, snaps[0].c_str(), &prot), 0);
    EXPECT_EQ(prot, 0) << "clone format 2 needs no protected snapshot";
    rbd_close(h);
    EXPECT_EQ(ceph().read("rbd2", disk, 0, 17), "golden image data");
    // Clean the v2 child first (it holds the parent's snapshot).
    ceph().remove("rbd2", disk);
}
