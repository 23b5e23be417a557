// The pool policy of our XML namespace, <rbd:clone format= max_depth=
// flatten= delete=/>: round-tripped and validated by libvirt's pool
// parser, then honoured by clones, flattening and deferred deletion.  The
// cluster's state (images, trash, snapshots, parents) is checked after each
// case.  Our module only.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "lab_client.hpp"
#include "test_files.hpp"

using namespace lab;

namespace {

// The names of the images in the RBD trash of a Ceph pool.
std::vector<std::string> trash(const std::string &pool)
{
    std::vector<rbd_trash_image_info_t> e(64);
    size_t n = e.size();
    int r = rbd_trash_list(ceph().io(pool), e.data(), &n);
    std::vector<std::string> out;
    if (r < 0)
        return {"<rbd_trash_list failed: " + std::to_string(r) + ">"};
    for (int i = 0; i < r; i++)
        out.emplace_back(e[i].name);
    rbd_trash_list_cleanup(e.data(), r);
    return out;
}

bool in_trash(const std::string &pool, const std::string &image)
{
    for (const auto &n : trash(pool))
        if (n == image)
            return true;
    return false;
}

// Removes a trash entry by name (cleanup after a failed test).
void purge_from_trash(const std::string &pool, const std::string &image)
{
    std::vector<rbd_trash_image_info_t> e(64);
    size_t n = e.size();
    int r = rbd_trash_list(ceph().io(pool), e.data(), &n);
    for (int i = 0; i < r; i++) {
        if (image == e[i].name) {
            rbd_image_t img;
            if (rbd_open_by_id(ceph().io(pool), e[i].id, &img, nullptr) == 0) {
                rbd_snap_info_t snaps[16];
                int max = 16;
                int ns = rbd_snap_list(img, snaps, &max);
                for (int s = 0; s < ns; s++) {
                    rbd_snap_unprotect(img, snaps[s].name);
                    rbd_snap_remove(img, snaps[s].name);
                }
                if (ns >= 0)
                    rbd_snap_list_end(snaps);
                rbd_close(img);
            }
            rbd_trash_remove(ceph().io(pool), e[i].id, true);
        }
    }
    if (r >= 0)
        rbd_trash_list_cleanup(e.data(), r);
}

std::string clone_policy(const std::string &attrs) { return "  <rbd:clone " + attrs + "/>\n"; }

bool wait_until(const std::function<bool()> &cond, int seconds = 30)
{
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
}

class Policy : public ::testing::Test {
  protected:
    void SetUp() override { BEYOND_STOCK(); }
    void TearDown() override
    {
        vols_.clear();
        pools_.clear();
        // Children first: a parent with clones cannot go.
        for (auto it = images_.rbegin(); it != images_.rend(); ++it) {
            ceph().remove(it->first, it->second);
            purge_from_trash(it->first, it->second);
        }
    }
    Pool &pool(const std::string &policy, const std::string &ceph_pool = "rbd")
    {
        PoolSpec s{unique("pol")};
        s.ceph_pool = ceph_pool;
        s.extra = policy;
        pools_.push_back(std::make_unique<Pool>(s));
        return *pools_.back();
    }
    // A new image in `ceph_pool` with recognisable bytes, as a volume of p.
    virStorageVolPtr golden(Pool &p, const std::string &ceph_pool = "rbd", uint64_t size = 8 * MiB)
    {
        return keep(golden_volume(p.get(), track(ceph_pool, unique("golden")), ceph_pool, size));
    }
    virStorageVolPtr clone(Pool &into, virStorageVolPtr src, const std::string &ceph_pool = "rbd")
    {
        const std::string name = track(ceph_pool, unique("disk"));
        return keep(virStorageVolCreateXMLFrom(into.get(), vol_xml(name, 0).c_str(), src, 0));
    }
    std::string track(const std::string &ceph_pool, const std::string &name)
    {
        images_.emplace_back(ceph_pool, name);
        return name;
    }
    virStorageVolPtr keep(virStorageVolPtr v)
    {
        if (v)
            vols_.emplace_back(v);
        return v;
    }
    // What most cases start from: a pool P with POLICY, a golden image SRC as its volume, and
    // C, a clone of SRC made through P; the pool and the clone asserted.  Call it inside
    // ASSERT_NO_FATAL_FAILURE.
    void golden_and_clone(const std::string &policy, Pool *&p, virStorageVolPtr &src, virStorageVolPtr &c)
    {
        p = &pool(policy);
        ASSERT_TRUE(p->ok()) << last_error().message;
        src = golden(*p);
        c = clone(*p, src);
        ASSERT_TRUE(c) << last_error().message;
    }
    static std::string name(virStorageVolPtr v) { return virStorageVolGetName(v); }
    static bool listed(Pool &p, const std::string &image)
    {
        virStoragePoolRefresh(p.get(), 0);
        Vol v(virStorageVolLookupByName(p.get(), image.c_str()));
        return v != nullptr;
    }

    std::vector<std::unique_ptr<Pool>> pools_;
    std::vector<Vol> vols_;
    std::vector<std::pair<std::string, std::string>> images_;
};

std::string dumpxml(virStoragePoolPtr p)
{
    char *x = virStoragePoolGetXMLDesc(p, 0);
    std::string s = x ? x : "";
    free(x);
    return s;
}

} // namespace

TEST_F(Policy, PolicyRoundTripsInPoolDumpXmlNextToConfigOpts)
{
    PoolSpec s{unique("persist")};
    s.extra = clone_policy("format='1' max_depth='2' delete='deferred'");
    s.config_opts = {{"rbd_cache", "false"}};
    virStoragePoolPtr p = virStoragePoolDefineXML(storage(), pool_xml(s).c_str(), 0);
    ASSERT_TRUE(p) << last_error().message;
    const std::string x = dumpxml(p);
    EXPECT_NE(x.find("<rbd:clone format='1' max_depth='2' delete='deferred'/>"), std::string::npos) << x;
    EXPECT_NE(x.find("<rbd:option name='rbd_cache' value='false'/>"), std::string::npos) << x;
    // What dumpxml wrote defines the same pool again.
    virStoragePoolPtr again = virStoragePoolDefineXML(storage(), x.c_str(), 0);
    ASSERT_TRUE(again) << last_error().message;
    EXPECT_EQ(dumpxml(again), x);
    EXPECT_EQ(virStoragePoolUndefine(p), 0);
    virStoragePoolFree(again);
    virStoragePoolFree(p);
}

TEST_F(Policy, BadPolicyIsRejectedWithTheAttributeNamedAndNothingIsDefined)
{
    const std::pair<std::string, std::string> cases[] = {
        {clone_policy("format='3'"), "invalid value '3' of attribute 'format' of <rbd:clone>: expected 'auto', '1' or '2'"},
        {clone_policy("max_depth='-1'"), "attribute 'max_depth' of <rbd:clone>: expected a whole number from 0 to 1000"},
        {clone_policy("flatten='later'"), "'later' of attribute 'flatten'"},
        {clone_policy("delete='trash'"), "'trash' of attribute 'delete'"},
        {clone_policy("flatten='never' max_depth='3'"), "attribute 'max_depth' of <rbd:clone> needs flatten='depth'"},
        {clone_policy("depth='3'"), "unknown attribute 'depth' of <rbd:clone>"},
        {"  <rbd:clones format='1'/>\n", "unknown element <rbd:clones>"},
        {"  <rbd:clone/>\n", "element <rbd:clone> has no attributes"},
        {clone_policy("format='1'") + clone_policy("delete='deferred'"), "element <rbd:clone> is given twice"},
    };
    for (const auto &[policy, message] : cases) {
        PoolSpec s{unique("bad")};
        s.extra = policy;
        virStoragePoolPtr p = virStoragePoolDefineXML(storage(), pool_xml(s).c_str(), 0);
        EXPECT_FALSE(p) << policy;
        auto e = last_error();
        EXPECT_EQ(e.code, VIR_ERR_XML_ERROR) << policy;
        EXPECT_NE(e.message.find(message), std::string::npos) << e.message;
        if (p) {
            virStoragePoolUndefine(p);
            virStoragePoolFree(p);
        }
        virStoragePoolPtr left = virStoragePoolLookupByName(storage(), s.name.c_str());
        EXPECT_FALSE(left) << s.name << " was defined";
        if (left)
            virStoragePoolFree(left);
    }
}

TEST_F(Policy, CloneFormatOneProtectsTheParentSnapshot)
{
    Pool &p = pool(clone_policy("format='1'"));
    ASSERT_TRUE(p.ok()) << last_error().message;
    virStorageVolPtr src = golden(p);
    ASSERT_TRUE(src);
    virStorageVolPtr c = clone(p, src);
    ASSERT_TRUE(c) << last_error().message;
    const std::string parent = ceph().parent("rbd", name(c));
    ASSERT_NE(parent, "");
    const std::string snap = parent.substr(parent.find('@') + 1);
    rbd_image_t h;
    ASSERT_EQ(rbd_open(ceph().io("rbd"), name(src).c_str(), &h, nullptr), 0);
    int prot = -1;
    EXPECT_EQ(rbd_snap_is_protected(h, snap.c_str(), &prot), 0);
    rbd_close(h);
    EXPECT_EQ(prot, 1) << "clone format 1 needs a protected snapshot";
}

TEST_F(Policy, DeferredDeleteTrashesAnImageWithClonesAndPurgesItWithTheLastClone)
{
    Pool &p = pool(clone_policy("delete='deferred'"));
    Pool &vms = pool(clone_policy("delete='deferred'"), "rbd2");
    ASSERT_TRUE(p.ok() && vms.ok()) << last_error().message;
    virStorageVolPtr src = golden(p);
    ASSERT_TRUE(src);
    const std::string img = name(src);
    virStorageVolPtr a = clone(p, src);
    virStorageVolPtr b = clone(vms, src, "rbd2");
    ASSERT_TRUE(a && b) << last_error().message;

    ASSERT_EQ(virStorageVolDelete(src, 0), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", img));
    EXPECT_TRUE(in_trash("rbd", img));
    EXPECT_FALSE(listed(p, img)) << "a deferred image is no longer a volume";
    // The clones keep their data, and a new image may take the name.
    EXPECT_EQ(ceph().read("rbd", name(a), 0, 12), "golden bytes");
    EXPECT_EQ(ceph().read("rbd2", name(b), 0, 12), "golden bytes");
    Vol reuse(virStorageVolCreateXML(p.get(), vol_xml(img, 4 * MiB).c_str(), 0));
    ASSERT_TRUE(reuse) << last_error().message;
    ASSERT_EQ(virStorageVolDelete(reuse.get(), 0), 0) << last_error().message;

    ASSERT_EQ(virStorageVolDelete(a, 0), 0) << last_error().message;
    EXPECT_TRUE(in_trash("rbd", img)) << "one clone is left";
    EXPECT_EQ(ceph().read("rbd2", name(b), 0, 12), "golden bytes");
    ASSERT_EQ(virStorageVolDelete(b, 0), 0) << last_error().message;
    EXPECT_FALSE(in_trash("rbd", img)) << "purged with its last clone";
    EXPECT_FALSE(ceph().exists("rbd2", name(b)));
}

TEST_F(Policy, DeferredImageIsPurgedAtRefreshWhenItsLastCloneWentElsewhere)
{
    Pool *p;
    virStorageVolPtr src, a;
    ASSERT_NO_FATAL_FAILURE(golden_and_clone(clone_policy("delete='deferred'"), p, src, a));
    const std::string img = name(src), child = name(a);
    ASSERT_EQ(virStorageVolDelete(src, 0), 0) << last_error().message;
    ASSERT_TRUE(in_trash("rbd", img));
    // The clone is removed behind libvirt's back (e.g. with the rbd CLI).
    ASSERT_EQ(rbd_remove(ceph().io("rbd"), child.c_str()), 0);
    EXPECT_TRUE(in_trash("rbd", img));
    ASSERT_EQ(virStoragePoolRefresh(p->get(), 0), 0) << last_error().message;
    EXPECT_FALSE(in_trash("rbd", img)) << "a refresh purges deferred images nothing depends on";
}

TEST_F(Policy, DeferredDeleteStillNeedsTheFlagForAUsersSnapshots)
{
    Pool &p = pool(clone_policy("delete='deferred'"));
    ASSERT_TRUE(p.ok()) << last_error().message;
    virStorageVolPtr src = golden(p);
    const std::string img = name(src);
    ceph().snapshot("rbd", img, "users-backup", false);
    virStorageVolPtr a = clone(p, src);
    ASSERT_TRUE(a) << last_error().message;
    EXPECT_NE(virStorageVolDelete(src, 0), 0);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_OPERATION_INVALID);
    EXPECT_NE(e.message.find("has snapshots"), std::string::npos) << e.message;
    EXPECT_TRUE(ceph().exists("rbd", img));
    EXPECT_FALSE(in_trash("rbd", img));

    ASSERT_EQ(virStorageVolDelete(src, VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS), 0) << last_error().message;
    EXPECT_TRUE(in_trash("rbd", img));
    ASSERT_EQ(virStorageVolDelete(a, 0), 0) << last_error().message;
    EXPECT_FALSE(in_trash("rbd", img));
}

TEST_F(Policy, AnImageSomeoneElseTrashedIsNeverPurged)
{
    Pool *p;
    virStorageVolPtr src, a;
    ASSERT_NO_FATAL_FAILURE(golden_and_clone(clone_policy("delete='deferred'"), p, src, a));
    const std::string img = name(src);
    // Moved to the trash with the rbd CLI's API, not by us.
    ASSERT_EQ(rbd_trash_move(ceph().io("rbd"), img.c_str(), 0), 0);
    ASSERT_EQ(virStorageVolDelete(a, 0), 0) << last_error().message;
    virStoragePoolRefresh(p->get(), 0);
    EXPECT_TRUE(in_trash("rbd", img)) << "not ours to purge";
}

TEST_F(Policy, RefusePolicyNamesTheSettingThatWouldDefer)
{
    Pool &p = pool("");
    ASSERT_TRUE(p.ok()) << last_error().message;
    virStorageVolPtr src = golden(p);
    ASSERT_TRUE(clone(p, src)) << last_error().message;
    EXPECT_NE(virStorageVolDelete(src, 0), 0);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_OPERATION_INVALID);
    EXPECT_NE(e.message.find("delete='deferred'"), std::string::npos) << e.message;
    EXPECT_TRUE(ceph().exists("rbd", name(src)));
    EXPECT_TRUE(trash("rbd").empty() || !in_trash("rbd", name(src)));
}

TEST_F(Policy, CloneDeeperThanMaxDepthIsFlattenedInTheBackground)
{
    Pool *p;
    virStorageVolPtr src, c1;
    ASSERT_NO_FATAL_FAILURE(golden_and_clone(clone_policy("max_depth='1'"), p, src, c1));
    virStorageVolPtr c2 = clone(*p, c1);
    ASSERT_TRUE(c2) << last_error().message;
    // Usable at once, whatever the flatten's progress.
    EXPECT_EQ(ceph().read("rbd", name(c2), 0, 12), "golden bytes");
    EXPECT_TRUE(wait_until([&] { return ceph().parent("rbd", name(c2)).empty(); }))
        << "depth 2 > max_depth 1: still a clone of " << ceph().parent("rbd", name(c2));
    EXPECT_EQ(ceph().read("rbd", name(c2), 0, 12), "golden bytes");
    EXPECT_NE(ceph().parent("rbd", name(c1)), "") << "depth 1 stays a clone";
    // c1's snapshot served only c2: released once c2 was flattened.
    EXPECT_TRUE(wait_until([&] { return ceph().snapshots("rbd", name(c1)).empty(); }));
}

TEST_F(Policy, FlattenAlwaysAndDeleteRightAfterwardsLeaveNothing)
{
    Pool &p = pool(clone_policy("flatten='always'"));
    ASSERT_TRUE(p.ok()) << last_error().message;
    virStorageVolPtr src = golden(p, "rbd", 256 * MiB);
    ASSERT_TRUE(src);
    ceph().write("rbd", name(src), 200 * MiB, std::string(4 * MiB, 'x'));
    virStorageVolPtr c = clone(p, src);
    ASSERT_TRUE(c) << last_error().message;
    const std::string child = name(c);
    // The delete waits for the background flatten instead of failing on it.
    ASSERT_EQ(virStorageVolDelete(c, 0), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", child));
    EXPECT_TRUE(ceph().snapshots("rbd", name(src)).empty()) << "our snapshot outlived its only clone";

    virStorageVolPtr d = clone(p, src);
    ASSERT_TRUE(d) << last_error().message;
    EXPECT_TRUE(wait_until([&] { return ceph().parent("rbd", name(d)).empty(); }));
    EXPECT_EQ(ceph().read("rbd", name(d), 200 * MiB, 4), "xxxx");
}

TEST_F(Policy, VolResizeAllocateFlattensOnDemand)
{
    Pool *p;
    virStorageVolPtr src, c;
    ASSERT_NO_FATAL_FAILURE(golden_and_clone("", p, src, c));
    ASSERT_NE(ceph().parent("rbd", name(c)), "");
    // virsh vol-resize VOL 0 --delta --allocate
    ASSERT_EQ(virStorageVolResize(c, 0, VIR_STORAGE_VOL_RESIZE_DELTA | VIR_STORAGE_VOL_RESIZE_ALLOCATE), 0)
        << last_error().message;
    EXPECT_EQ(ceph().parent("rbd", name(c)), "");
    EXPECT_EQ(ceph().read("rbd", name(c), 0, 12), "golden bytes");
    EXPECT_EQ(ceph().size("rbd", name(c)), 8 * MiB);
    EXPECT_TRUE(ceph().snapshots("rbd", name(src)).empty()) << "our snapshot outlived its only clone";
    // With a new size: grown, then flattened.
    virStorageVolPtr d = clone(*p, src);
    ASSERT_TRUE(d) << last_error().message;
    ASSERT_EQ(virStorageVolResize(d, 16 * MiB, VIR_STORAGE_VOL_RESIZE_ALLOCATE), 0) << last_error().message;
    EXPECT_EQ(ceph().parent("rbd", name(d)), "");
    EXPECT_EQ(ceph().size("rbd", name(d)), 16 * MiB);
    // An image without parent: nothing to do, not an error.
    ASSERT_EQ(virStorageVolResize(src, 0, VIR_STORAGE_VOL_RESIZE_DELTA | VIR_STORAGE_VOL_RESIZE_ALLOCATE), 0)
        << last_error().message;
    EXPECT_EQ(ceph().read("rbd", name(src), 0, 12), "golden bytes");
}

TEST_F(Policy, FlatteningTheLastCloneOfADeferredImagePurgesIt)
{
    Pool *p;
    virStorageVolPtr src, c;
    ASSERT_NO_FATAL_FAILURE(golden_and_clone(clone_policy("delete='deferred'"), p, src, c));
    const std::string img = name(src);
    ASSERT_EQ(virStorageVolDelete(src, 0), 0) << last_error().message;
    ASSERT_TRUE(in_trash("rbd", img));
    ASSERT_EQ(virStorageVolResize(c, 0, VIR_STORAGE_VOL_RESIZE_DELTA | VIR_STORAGE_VOL_RESIZE_ALLOCATE), 0)
        << last_error().message;
    EXPECT_FALSE(in_trash("rbd", img));
    EXPECT_EQ(ceph().read("rbd", name(c), 0, 12), "golden bytes");
}

TEST_F(Policy, ExamplePoolsOfTheDataDirectoryDefineAndRoundTrip)
{
    for (const char *file : {"pool-images.xml", "pool-vms-policy.xml"}) {
        std::string x = testfiles::read_file(std::string(RBDCLONE_SOURCE_DIR) + "/data/" + file);
        ASSERT_FALSE(x.empty()) << file;
        // Unique name: the lab's libvirtd may already hold a pool of that name.
        const std::string n = unique("example");
        auto at = x.find("<name>");
        x.replace(at + 6, x.find("</name>") - at - 6, n);
        virStoragePoolPtr p = virStoragePoolDefineXML(storage(), x.c_str(), 0);
        ASSERT_TRUE(p) << file << ": " << last_error().message;
        const std::string back = dumpxml(p);
        if (std::string(file) == "pool-vms-policy.xml") {
            EXPECT_NE(back.find("<rbd:clone format='auto' max_depth='3' delete='deferred'/>"), std::string::npos)
                << back;
        }
        EXPECT_NE(back.find("<rbd:config_opts>"), std::string::npos) << back;
        virStoragePoolUndefine(p);
        virStoragePoolFree(p);
    }
}
