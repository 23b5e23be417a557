// Parity with libvirt's stock RBD backend: every operation it supports,
// through libvirt's public API against the lab's libvirtd, checked in Ceph.
// The same cases run against the stock module with LAB_BACKEND=stock;
// checks of behaviour stock lacks are marked BEYOND_STOCK().
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <csignal>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lab_client.hpp"

using namespace lab;

namespace {

class Parity : public ::testing::Test {
  protected:
    void SetUp() override
    {
        pool_ = std::make_unique<Pool>(unique("parity"));
        ASSERT_TRUE(pool_->ok()) << last_error().message;
    }
    void TearDown() override
    {
        pool_.reset();
        for (auto &i : images_)
            ceph().remove("rbd", i);
    }
    // An image name owned by this test, removed afterwards.
    std::string image(const std::string &prefix = "img")
    {
        images_.push_back(unique(prefix));
        return images_.back();
    }
    Vol create(const std::string &name, uint64_t cap, unsigned flags = 0)
    {
        return Vol(virStorageVolCreateXML(pool_->get(), vol_xml(name, cap).c_str(), flags));
    }
    // An image name for a clone this test makes, removed before the images it may clone.
    std::string clone_image(const std::string &prefix)
    {
        images_.insert(images_.begin(), unique(prefix));
        return images_.front();
    }
    // A volume of CAP bytes on a new image owned by this test, holding DATA at its start when
    // given: the image's name, and the volume (null when libvirt refused it).
    struct NewVol {
        std::string name;
        Vol vol;
    };
    NewVol new_volume(const std::string &prefix, uint64_t cap, const std::string &data = "")
    {
        std::string name = image(prefix);
        Vol v = create(name, cap);
        if (v && !data.empty())
            ceph().write("rbd", name, 0, data);
        return {name, std::move(v)};
    }
    // The same for a clone of SOURCE (virStorageVolCreateXMLFrom).
    NewVol new_clone(const Vol &source, const std::string &prefix, uint64_t cap)
    {
        std::string name = clone_image(prefix);
        return {name, Vol(virStorageVolCreateXMLFrom(pool_->get(), vol_xml(name, cap).c_str(), source.get(), 0))};
    }
    Vol lookup(const std::string &name) { return Vol(virStorageVolLookupByName(pool_->get(), name.c_str())); }
    void refresh() { ASSERT_EQ(virStoragePoolRefresh(pool_->get(), 0), 0) << last_error().message; }
    // Replaces the test's pool with one that reports the real allocation (fast-diff) of its
    // volumes; call it inside ASSERT_NO_FATAL_FAILURE.
    void use_pool_reporting_allocation(const std::string &prefix)
    {
        PoolSpec s{unique(prefix)};
        s.extra = "<refresh><volume allocation='default'/></refresh>";
        pool_ = std::make_unique<Pool>(s);
        ASSERT_TRUE(pool_->ok()) << last_error().message;
    }
    // Creates a volume of CAP bytes and reads its info into INFO, each step asserted; call it
    // inside ASSERT_NO_FATAL_FAILURE.
    void new_volume_info(const std::string &prefix, uint64_t cap, virStorageVolInfo &info)
    {
        auto [name, v] = new_volume(prefix, cap);
        ASSERT_TRUE(v);
        ASSERT_EQ(virStorageVolGetInfo(v.get(), &info), 0);
    }

    std::unique_ptr<Pool> pool_;
    std::vector<std::string> images_;
};

std::string dumpxml(virStorageVolPtr v)
{
    char *x = virStorageVolGetXMLDesc(v, 0);
    std::string s = x ? x : "";
    free(x);
    return s;
}

int free_port()
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &l);
    int port = ntohs(a.sin_port);
    close(fd); // nothing listens there afterwards
    return port;
}

// Starts pool S into P: how long that took, in whole seconds.
long seconds_to_start(const PoolSpec &s, std::optional<Pool> &p)
{
    auto t0 = std::chrono::steady_clock::now();
    p.emplace(s);
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

// ---- pools ---------------------------------------------------------------

TEST_F(Parity, PoolStartsWithHostAuthAndSecret)
{
    EXPECT_EQ(virStoragePoolIsActive(pool_->get()), 1);
    virStoragePoolInfo info;
    ASSERT_EQ(virStoragePoolGetInfo(pool_->get(), &info), 0);
    EXPECT_EQ(info.state, VIR_STORAGE_POOL_RUNNING);
    // Capacity and available come from the cluster's own statistics (they
    // are 0 in the lab: no ceph-mgr reports them, so compare, not guess).
    rados_cluster_stat_t cs;
    ASSERT_EQ(rados_cluster_stat(ceph().cluster(), &cs), 0);
    EXPECT_EQ(info.capacity, cs.kb * 1024);
    EXPECT_EQ(info.available, cs.kb_avail * 1024);
}

TEST_F(Parity, PoolWithRestrictedUserStarts)
{
    PoolSpec s{unique("parity-user")};
    s.user = "libvirt";
    Pool p(s);
    ASSERT_TRUE(p.ok()) << last_error().message;
}

TEST_F(Parity, PoolStopDeactivates)
{
    Pool p(unique("parity-stop"));
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(virStoragePoolDestroy(p.get()), 0) << last_error().message;
    // A transient pool is gone once destroyed.
    EXPECT_EQ(virStoragePoolLookupByName(storage(), p.name().c_str()), nullptr);
}

TEST_F(Parity, PoolDumpXmlRoundTripsConfigOpts)
{
    PoolSpec s{unique("parity-ns")};
    s.config_opts = {{"rbd_cache", "false"}, {"client_mount_timeout", "20"}};
    Pool p(s);
    ASSERT_TRUE(p.ok()) << last_error().message;
    char *x = virStoragePoolGetXMLDesc(p.get(), 0);
    ASSERT_NE(x, nullptr);
    std::string xml = x;
    free(x);
    EXPECT_NE(xml.find("xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<rbd:option name='rbd_cache' value='false'/>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<rbd:option name='client_mount_timeout' value='20'/>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<host name='127.0.0.1' port='" + env("CEPH_MON_V2_PORT") + "'/>"), std::string::npos);
    EXPECT_NE(xml.find("<auth type='ceph' username='admin'>"), std::string::npos);
}

TEST_F(Parity, PersistentPoolXmlRoundTrip)
{
    PoolSpec s{unique("parity-def")};
    s.config_opts = {{"rbd_cache", "false"}};
    virStoragePoolPtr p = virStoragePoolDefineXML(storage(), pool_xml(s).c_str(), 0);
    ASSERT_NE(p, nullptr) << last_error().message;
    char *x1 = virStoragePoolGetXMLDesc(p, VIR_STORAGE_XML_INACTIVE);
    virStoragePoolUndefine(p);
    virStoragePoolFree(p);
    ASSERT_NE(x1, nullptr);
    virStoragePoolPtr p2 = virStoragePoolDefineXML(storage(), x1, 0);
    ASSERT_NE(p2, nullptr) << last_error().message;
    char *x2 = virStoragePoolGetXMLDesc(p2, VIR_STORAGE_XML_INACTIVE);
    EXPECT_STREQ(x1, x2);
    virStoragePoolUndefine(p2);
    virStoragePoolFree(p2);
    free(x1);
    free(x2);
}

TEST_F(Parity, BadConfigOptIsRejectedWithItsName)
{
    std::string xml = "<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>"
                      "<name>" + unique("parity-bad") + "</name><source><host name='127.0.0.1'/>"
                      "<name>rbd</name></source><rbd:config_opts><rbd:option name='x' value=''/>"
                      "</rbd:config_opts></pool>";
    EXPECT_EQ(virStoragePoolDefineXML(storage(), xml.c_str(), 0), nullptr);
    EXPECT_NE(last_error().message.find("empty rbd option value specified for name 'x'"), std::string::npos)
        << last_error().message;
}

TEST_F(Parity, RefreshListsEveryImageWithCapacityAndAllocation)
{
    const std::string plain = image("plain"), withsnap = image("snap"), parent = image("parent"),
                      child = clone_image("child");
    ceph().create("rbd", plain, 8 * MiB);
    ceph().write("rbd", plain, 0, std::string(4096, 'x'));
    ceph().create("rbd", withsnap, 16 * MiB);
    ceph().snapshot("rbd", withsnap, "s1", false);
    ceph().create("rbd", parent, 4 * MiB);
    ceph().snapshot("rbd", parent, "base", true);
    int order = 0;
    ASSERT_EQ(rbd_clone(ceph().io("rbd"), parent.c_str(), "base", ceph().io("rbd"), child.c_str(),
                        RBD_FEATURE_LAYERING, &order), 0);
    refresh();
    for (auto [name, cap] : {std::pair{plain, 8 * MiB}, {withsnap, 16 * MiB}, {parent, 4 * MiB}, {child, 4 * MiB}}) {
        Vol v = lookup(name);
        ASSERT_TRUE(v) << name << ": " << last_error().message;
        virStorageVolInfo info;
        ASSERT_EQ(virStorageVolGetInfo(v.get(), &info), 0);
        EXPECT_EQ(info.capacity, cap) << name;
        EXPECT_EQ(info.type, VIR_STORAGE_VOL_NETWORK);
        EXPECT_GT(info.allocation, 0u) << name;
    }
}

TEST_F(Parity, RefreshSkipsAnImageThatVanishesWhileListed)
{
    // An image whose directory entry is still there but whose header is
    // gone is what a refresh sees when the image is deleted mid-listing.
    const std::string ok = image("ok"), ghost = image("ghost");
    ceph().create("rbd", ok, 1 * MiB);
    ceph().create("rbd", ghost, 1 * MiB);
    char id[64] = {0};
    {
        rbd_image_t img;
        ASSERT_EQ(rbd_open(ceph().io("rbd"), ghost.c_str(), &img, nullptr), 0);
        ASSERT_GT(rbd_get_id(img, id, sizeof(id)), -1);
        rbd_close(img);
    }
    ASSERT_EQ(rados_remove(ceph().io("rbd"), (std::string("rbd_header.") + id).c_str()), 0);
    refresh();
    EXPECT_TRUE(lookup(ok));
    EXPECT_FALSE(lookup(ghost));
    // Clean the directory entry by hand: the image cannot be opened.
    rbd_remove(ceph().io("rbd"), ghost.c_str());
}

// ---- volumes ---------------------------------------------------------------

TEST_F(Parity, VolCreateMakesARawImageWithStockFeatures)
{
    auto [name, v] = new_volume("new", 64 * MiB);
    ASSERT_TRUE(v) << last_error().message;
    ASSERT_TRUE(ceph().exists("rbd", name));
    EXPECT_EQ(ceph().size("rbd", name), 64 * MiB);
    // rbd_default_features of Ceph 16: layering, exclusive-lock, object-map,
    // fast-diff, deep-flatten.
    EXPECT_EQ(ceph().features("rbd", name), 61u);
}

TEST_F(Parity, VolKeyPathAndXmlFollowStockConventions)
{
    auto [name, v] = new_volume("conv", 8 * MiB);
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(std::string(virStorageVolGetKey(v.get())), "rbd/" + name);
    char *path = virStorageVolGetPath(v.get());
    EXPECT_EQ(std::string(path), "rbd/" + name);
    free(path);
    std::string xml = dumpxml(v.get());
    EXPECT_NE(xml.find("<volume type='network'>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<format type='raw'/>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<capacity unit='bytes'>8388608</capacity>"), std::string::npos) << xml;
    Vol byKey(virStorageVolLookupByKey(storage(), ("rbd/" + name).c_str()));
    EXPECT_TRUE(byKey);
    Vol byPath(virStorageVolLookupByPath(storage(), ("rbd/" + name).c_str()));
    EXPECT_TRUE(byPath);
}

TEST_F(Parity, VolCreateRejectsNonRawFormat)
{
    const std::string name = image("qcow");
    std::string xml = "<volume><name>" + name + "</name><capacity>1048576</capacity>"
                      "<target><format type='qcow2'/></target></volume>";
    EXPECT_EQ(virStorageVolCreateXML(pool_->get(), xml.c_str(), 0), nullptr);
    EXPECT_NE(last_error().message.find("only RAW volumes are supported"), std::string::npos);
    EXPECT_FALSE(ceph().exists("rbd", name));
}

TEST_F(Parity, VolCreateOfAnExistingImageFailsAndKeepsIt)
{
    const std::string name = image("dup");
    ceph().create("rbd", name, 2 * MiB);
    ceph().write("rbd", name, 0, "keep me");
    EXPECT_FALSE(create(name, 4 * MiB));
    ASSERT_TRUE(ceph().exists("rbd", name));
    EXPECT_EQ(ceph().read("rbd", name, 0, 7), "keep me");
}

TEST_F(Parity, VolInfoReportsCapacity)
{
    virStorageVolInfo info;
    ASSERT_NO_FATAL_FAILURE(new_volume_info("info", 12 * MiB, info));
    EXPECT_EQ(info.capacity, 12 * MiB);
}

TEST_F(Parity, VolDeleteRemovesTheImage)
{
    auto [name, v] = new_volume("del", 4 * MiB);
    ASSERT_TRUE(v);
    ASSERT_EQ(virStorageVolDelete(v.get(), 0), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", name));
}

TEST_F(Parity, VolDeleteWithSnapshotsNeedsTheFlag)
{
    auto [name, v] = new_volume("delsnap", 4 * MiB);
    ASSERT_TRUE(v);
    ceph().snapshot("rbd", name, "s1", false);
    ceph().snapshot("rbd", name, "s2", true);
    EXPECT_NE(virStorageVolDelete(v.get(), 0), 0);
    EXPECT_TRUE(ceph().exists("rbd", name));
    ASSERT_EQ(virStorageVolDelete(v.get(), VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", name));
}

TEST_F(Parity, VolDeleteWithoutFlagSaysTheImageHasSnapshots)
{
    BEYOND_STOCK(); // stock says "No such file or directory"
    auto [name, v] = new_volume("delsnap2", 4 * MiB);
    ASSERT_TRUE(v);
    ceph().snapshot("rbd", name, "s1", false);
    EXPECT_NE(virStorageVolDelete(v.get(), 0), 0);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_OPERATION_INVALID);
    EXPECT_NE(e.message.find("rbd/" + name), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("has snapshots"), std::string::npos) << e.message;
}

TEST_F(Parity, VolResizeGrows)
{
    auto [name, v] = new_volume("grow", 4 * MiB);
    ASSERT_TRUE(v);
    ASSERT_EQ(virStorageVolResize(v.get(), 32 * MiB, 0), 0) << last_error().message;
    EXPECT_EQ(ceph().size("rbd", name), 32 * MiB);
    ASSERT_EQ(virStorageVolResize(v.get(), 8 * MiB, VIR_STORAGE_VOL_RESIZE_DELTA), 0) << last_error().message;
    EXPECT_EQ(ceph().size("rbd", name), 40 * MiB);
}

TEST_F(Parity, VolResizeSmallerWithoutShrinkFails)
{
    auto [name, v] = new_volume("noshrink", 8 * MiB);
    ASSERT_TRUE(v);
    EXPECT_NE(virStorageVolResize(v.get(), 4 * MiB, 0), 0);
    EXPECT_EQ(ceph().size("rbd", name), 8 * MiB);
}

TEST_F(Parity, VolResizeShrinksWithTheFlag)
{
    BEYOND_STOCK(); // stock rejects every resize flag
    // libvirt refuses to shrink below the allocation, which is the capacity
    // unless the pool asks for the real allocation (fast-diff).
    ASSERT_NO_FATAL_FAILURE(use_pool_reporting_allocation("parity-alloc"));
    auto [name, v] = new_volume("shrink", 8 * MiB);
    ASSERT_TRUE(v);
    ASSERT_EQ(virStorageVolResize(v.get(), 4 * MiB, VIR_STORAGE_VOL_RESIZE_SHRINK), 0) << last_error().message;
    EXPECT_EQ(ceph().size("rbd", name), 4 * MiB);
}

TEST_F(Parity, VolWipeZeroes)
{
    auto [name, v] = new_volume("wipe", 8 * MiB);
    ASSERT_TRUE(v);
    ceph().write("rbd", name, 4096, std::string(8192, 'd'));
    ASSERT_EQ(virStorageVolWipe(v.get(), 0), 0) << last_error().message;
    EXPECT_EQ(ceph().read("rbd", name, 0, 16384), std::string(16384, '\0'));
    EXPECT_EQ(ceph().size("rbd", name), 8 * MiB);
}

TEST_F(Parity, VolWipeTrimDiscards)
{
    auto [name, v] = new_volume("trim", 8 * MiB, std::string(4 * MiB, 'd'));
    ASSERT_TRUE(v);
    ASSERT_EQ(virStorageVolWipePattern(v.get(), VIR_STORAGE_VOL_WIPE_ALG_TRIM, 0), 0) << last_error().message;
    EXPECT_EQ(ceph().read("rbd", name, 0, 4096), std::string(4096, '\0'));
}

TEST_F(Parity, VolWipeOtherAlgorithmsAreRejected)
{
    auto [name, v] = new_volume("wipealg", 1 * MiB, "data");
    ASSERT_TRUE(v);
    for (auto alg : {VIR_STORAGE_VOL_WIPE_ALG_NNSA, VIR_STORAGE_VOL_WIPE_ALG_DOD, VIR_STORAGE_VOL_WIPE_ALG_RANDOM}) {
        EXPECT_NE(virStorageVolWipePattern(v.get(), alg, 0), 0);
        auto e = last_error();
        EXPECT_EQ(e.code, VIR_ERR_INVALID_ARG);
        EXPECT_NE(e.message.find("unsupported algorithm " + std::to_string(alg)), std::string::npos) << e.message;
    }
    EXPECT_EQ(ceph().read("rbd", name, 0, 4), "data");
}

TEST_F(Parity, VolCloneInOnePoolIsACopyOnWriteClone)
{
    auto [src, s] = new_volume("src", 16 * MiB, "hello from the source image");
    ASSERT_TRUE(s);
    auto [dst, c] = new_clone(s, "clone", 16 * MiB);
    ASSERT_TRUE(c) << last_error().message;
    EXPECT_EQ(ceph().read("rbd", dst, 0, 27), "hello from the source image");
    std::string parent = ceph().parent("rbd", dst);
    EXPECT_EQ(parent.rfind("rbd/" + src + "@", 0), 0u) << parent;
    EXPECT_EQ(ceph().snapshots("rbd", src).size(), 1u);
    // The source is untouched by writes to the clone.
    ceph().write("rbd", dst, 0, "HELLO");
    EXPECT_EQ(ceph().read("rbd", src, 0, 5), "hello");
}

TEST_F(Parity, SecondCloneOfAnUnchangedImageReusesTheSnapshot)
{
    auto [src, s] = new_volume("src2", 8 * MiB, "abc");
    ASSERT_TRUE(s);
    auto [d1, c1] = new_clone(s, "c1", 8 * MiB);
    ASSERT_TRUE(c1) << last_error().message;
    auto [d2, c2] = new_clone(s, "c2", 8 * MiB);
    ASSERT_TRUE(c2) << last_error().message;
    EXPECT_EQ(ceph().snapshots("rbd", src).size(), 1u);
    EXPECT_EQ(ceph().parent("rbd", d1), ceph().parent("rbd", d2));
}

TEST_F(Parity, CloneOfAModifiedImageSeesTheNewData)
{
    BEYOND_STOCK(); // stock fails the second clone: "An error occurred, but the cause is unknown"
    auto [src, s] = new_volume("src3", 8 * MiB, "one");
    ASSERT_TRUE(s);
    auto [d1, c1] = new_clone(s, "m1", 8 * MiB);
    ASSERT_TRUE(c1) << last_error().message;
    ceph().write("rbd", src, 0, "two");
    auto [d2, c2] = new_clone(s, "m2", 8 * MiB);
    ASSERT_TRUE(c2) << last_error().message;
    EXPECT_EQ(ceph().read("rbd", d1, 0, 3), "one");
    EXPECT_EQ(ceph().read("rbd", d2, 0, 3), "two");
}

TEST_F(Parity, CloneLargerThanSourceIsGrown)
{
    BEYOND_STOCK(); // stock ignores the requested capacity
    auto [src, s] = new_volume("srcbig", 8 * MiB);
    ASSERT_TRUE(s);
    auto [dst, c] = new_clone(s, "big", 32 * MiB);
    ASSERT_TRUE(c) << last_error().message;
    EXPECT_EQ(ceph().size("rbd", dst), 32 * MiB);
}

// ---- errors ----------------------------------------------------------------

TEST_F(Parity, AllocationFromFastDiffWhenThePoolAsksForIt)
{
    ASSERT_NO_FATAL_FAILURE(use_pool_reporting_allocation("parity-fastdiff"));
    auto [name, v] = new_volume("alloc", 64 * MiB, std::string(4096, 'a'));
    ASSERT_TRUE(v);
    ceph().write("rbd", name, 32 * MiB, std::string(4096, 'b'));
    virStorageVolInfo info;
    ASSERT_EQ(virStorageVolGetInfo(v.get(), &info), 0);
    EXPECT_EQ(info.capacity, 64 * MiB);
    EXPECT_EQ(info.allocation, 8 * MiB); // two 4 MiB objects
}

TEST_F(Parity, AllocationIsTheCapacityByDefault)
{
    virStorageVolInfo info;
    ASSERT_NO_FATAL_FAILURE(new_volume_info("alloccap", 64 * MiB, info));
    EXPECT_EQ(info.allocation, 64 * MiB);
}

TEST_F(Parity, UnknownImageIsNoStorageVol)
{
    EXPECT_FALSE(lookup("no-such-image-here"));
    EXPECT_EQ(last_error().code, VIR_ERR_NO_STORAGE_VOL);
}

TEST_F(Parity, ImageDeletedBehindLibvirtsBackGivesAClearError)
{
    BEYOND_STOCK(); // stock reports errno, unrelated to librbd's code
    auto [name, v] = new_volume("gone", 1 * MiB);
    ASSERT_TRUE(v);
    ceph().remove("rbd", name);
    virStorageVolInfo info;
    EXPECT_NE(virStorageVolGetInfo(v.get(), &info), 0);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_NO_STORAGE_VOL);
    EXPECT_NE(e.message.find("rbd/" + name + "' does not exist"), std::string::npos) << e.message;
}

TEST_F(Parity, WrongSecretFailsPoolStart)
{
    // Another user's valid key: well-formed, but not admin's.
    CephSecret wrong(env("CEPH_RO_KEY"));
    ASSERT_TRUE(wrong.ok()) << last_error().message;
    PoolSpec s{unique("parity-badkey")};
    s.secret_uuid = wrong.uuid();
    s.config_opts = {{"client_mount_timeout", "10"}};
    std::optional<Pool> p;
    auto secs = seconds_to_start(s, p);
    EXPECT_FALSE(p->ok());
    auto e = last_error();
    EXPECT_LT(secs, 30);
    if (!testing_stock()) {
        EXPECT_EQ(e.code, VIR_ERR_AUTH_FAILED) << e.message;
        EXPECT_NE(e.message.find("refused authentication"), std::string::npos) << e.message;
        EXPECT_NE(e.message.find("client.admin"), std::string::npos) << e.message;
    }
    // The daemon is alive and other pools work.
    Pool ok(unique("parity-after-badkey"));
    EXPECT_TRUE(ok.ok()) << last_error().message;
}

TEST_F(Parity, UnreachableMonitorFailsPoolStartInBoundedTime)
{
    PoolSpec s{unique("parity-nomon")};
    s.port = free_port();
    s.config_opts = {{"client_mount_timeout", "5"}};
    std::optional<Pool> p;
    auto secs = seconds_to_start(s, p);
    EXPECT_FALSE(p->ok());
    EXPECT_LT(secs, 20);
    auto e = last_error();
    EXPECT_NE(e.message.find("127.0.0.1:" + std::to_string(s.port)), std::string::npos) << e.message;
    if (!testing_stock()) {
        EXPECT_EQ(e.code, VIR_ERR_OPERATION_TIMEOUT) << e.message;
        EXPECT_NE(e.message.find("no monitor"), std::string::npos) << e.message;
    }
    Pool ok(unique("parity-after-nomon"));
    EXPECT_TRUE(ok.ok()) << last_error().message;
}

TEST_F(Parity, MissingCephPoolFailsPoolStart)
{
    PoolSpec s{unique("parity-nopool")};
    s.ceph_pool = "no-such-ceph-pool";
    Pool p(s);
    EXPECT_FALSE(p.ok());
    auto e = last_error();
    EXPECT_NE(e.message.find("no-such-ceph-pool"), std::string::npos) << e.message;
    if (!testing_stock()) {
        EXPECT_EQ(e.code, VIR_ERR_NO_STORAGE_POOL) << e.message;
    }
}

