// Deleting images that have clones, and the snapshots clones come from:
// a clone's data is never lost, a user's snapshot is never touched, and our
// own snapshots go away with their last clone.  Our module only.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "lab_client.hpp"

using namespace lab;

namespace {

class Lifecycle : public ::testing::Test {
  protected:
    void SetUp() override
    {
        BEYOND_STOCK();
        images_ = std::make_unique<Pool>(unique("images"));
        ASSERT_TRUE(images_->ok()) << last_error().message;
        PoolSpec vms{unique("vms")};
        vms.ceph_pool = "rbd2";
        vms_ = std::make_unique<Pool>(vms);
        ASSERT_TRUE(vms_->ok()) << last_error().message;
        golden_ = unique("golden");
        src_.reset(golden_volume(images_->get(), golden_));
        ASSERT_TRUE(src_);
    }
    void TearDown() override
    {
        src_.reset();
        images_.reset();
        vms_.reset();
        for (auto &[pool, name] : clones_)
            ceph().remove(pool, name);
        if (!golden_.empty())
            ceph().remove("rbd", golden_);
    }
    Vol clone_into(Pool &pool, const std::string &ceph_pool)
    {
        std::string name = unique("disk");
        clones_.emplace_back(ceph_pool, name);
        return Vol(virStorageVolCreateXMLFrom(pool.get(), vol_xml(name, 8 * MiB).c_str(), src_.get(), 0));
    }
    std::vector<std::string> our_snapshots()
    {
        std::vector<std::string> out;
        for (auto &s : ceph().snapshots("rbd", golden_))
            if (s.rfind("rbdclone-", 0) == 0)
                out.push_back(s);
        return out;
    }

    std::unique_ptr<Pool> images_, vms_;
    std::string golden_;
    Vol src_;
    std::vector<std::pair<std::string, std::string>> clones_;
};

} // namespace

TEST_F(Lifecycle, ImageWithClonesIsNotDeletedAndTheErrorNamesThem)
{
    Vol a = clone_into(*vms_, "rbd2");
    Vol b = clone_into(*images_, "rbd");
    ASSERT_TRUE(a && b) << last_error().message;
    for (unsigned flags : {0u, unsigned(VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS)}) {
        EXPECT_NE(virStorageVolDelete(src_.get(), flags), 0);
        auto e = last_error();
        EXPECT_EQ(e.code, VIR_ERR_OPERATION_INVALID) << e.message;
        EXPECT_NE(e.message.find("rbd/" + golden_ + "': it has 2 clones"), std::string::npos) << e.message;
        EXPECT_NE(e.message.find("rbd2/" + clones_[0].second), std::string::npos) << e.message;
        EXPECT_NE(e.message.find("rbd/" + clones_[1].second), std::string::npos) << e.message;
    }
    EXPECT_TRUE(ceph().exists("rbd", golden_));
    EXPECT_EQ(our_snapshots().size(), 1u);
    EXPECT_EQ(ceph().read("rbd2", clones_[0].second, 0, 12), "golden bytes");
}

TEST_F(Lifecycle, LastCloneTakesOurSnapshotWithItThenTheImageDeletesCleanly)
{
    Vol a = clone_into(*vms_, "rbd2");
    Vol b = clone_into(*vms_, "rbd2");
    ASSERT_TRUE(a && b) << last_error().message;
    ASSERT_EQ(our_snapshots().size(), 1u);
    ASSERT_EQ(virStorageVolDelete(a.get(), 0), 0) << last_error().message;
    EXPECT_EQ(our_snapshots().size(), 1u) << "the other clone still needs it";
    EXPECT_EQ(ceph().read("rbd2", clones_[1].second, 0, 12), "golden bytes");
    ASSERT_EQ(virStorageVolDelete(b.get(), 0), 0) << last_error().message;
    EXPECT_TRUE(our_snapshots().empty()) << "our snapshot outlived its last clone";
    // Nothing depends on the image now: a plain delete works.
    ASSERT_EQ(virStorageVolDelete(src_.get(), 0), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", golden_));
}

TEST_F(Lifecycle, OurUnusedSnapshotsGoWithTheImageButAUsersSnapshotNeedsTheFlag)
{
    Vol a = clone_into(*vms_, "rbd2");
    ASSERT_TRUE(a) << last_error().message;
    ceph().snapshot("rbd", golden_, "mine", false);
    // Deleting the clone leaves the user's snapshot alone.
    ASSERT_EQ(virStorageVolDelete(a.get(), 0), 0) << last_error().message;
    EXPECT_TRUE(our_snapshots().empty());
    auto snaps = ceph().snapshots("rbd", golden_);
    ASSERT_EQ(snaps.size(), 1u);
    EXPECT_EQ(snaps[0], "mine");
    EXPECT_NE(virStorageVolDelete(src_.get(), 0), 0);
    EXPECT_NE(last_error().message.find("it has snapshots"), std::string::npos) << last_error().message;
    EXPECT_TRUE(ceph().exists("rbd", golden_));
    EXPECT_EQ(virStorageVolDelete(src_.get(), VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", golden_));
}

TEST_F(Lifecycle, ImageWhoseOnlySnapshotIsOursUnusedDeletesWithoutTheFlag)
{
    Vol a = clone_into(*vms_, "rbd2");
    ASSERT_TRUE(a) << last_error().message;
    // The clone goes away behind libvirt's back: our snapshot stays unused.
    a.reset();
    ceph().remove("rbd2", clones_[0].second);
    ASSERT_EQ(our_snapshots().size(), 1u);
    EXPECT_EQ(virStorageVolDelete(src_.get(), 0), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd", golden_));
}

TEST_F(Lifecycle, NamesRbdOrQemuWouldMisreadAreRefusedAndNothingIsCreated)
{
    const std::string base = unique("bad");
    const std::pair<std::string, const char *> cases[] = {
        {base + "@snap", "snapshot separator"},
        {base + ":opt", "option separator"},
        {base + "/sub", "separates the pool"},
        {std::string(2100, 'n'), "more than the 2041"},
    };
    for (const auto &[name, why] : cases) {
        Vol v(virStorageVolCreateXML(vms_->get(), vol_xml(name, 4 * MiB).c_str(), 0));
        EXPECT_FALSE(v) << name.substr(0, 40);
        auto e = last_error();
        if (name.find('/') != std::string::npos && e.message.find(why) == std::string::npos) {
            // libvirt itself may refuse a '/' before asking the backend.
            EXPECT_NE(e.code, 0);
        } else {
            EXPECT_EQ(e.code, VIR_ERR_INVALID_ARG) << e.message;
            EXPECT_NE(e.message.find(why), std::string::npos) << e.message;
        }
        EXPECT_FALSE(ceph().exists("rbd2", name)) << name.substr(0, 40);
    }
    // The same rules for the target of a clone.
    Vol c(virStorageVolCreateXMLFrom(vms_->get(), vol_xml(base + "@x", 8 * MiB).c_str(), src_.get(), 0));
    EXPECT_FALSE(c);
    EXPECT_EQ(last_error().code, VIR_ERR_INVALID_ARG);
    EXPECT_TRUE(our_snapshots().empty()) << "nothing was done to the source";
}

TEST_F(Lifecycle, ImagesWithSuchNamesMadeElsewhereAreStillListed)
{
    const std::string odd = unique("made") + "@elsewhere";
    clones_.emplace_back("rbd2", odd);
    ceph().create("rbd2", odd, 4 * MiB);
    ASSERT_EQ(virStoragePoolRefresh(vms_->get(), 0), 0) << last_error().message;
    Vol v(virStorageVolLookupByName(vms_->get(), odd.c_str()));
    ASSERT_TRUE(v) << last_error().message;
    virStorageVolInfo info;
    ASSERT_EQ(virStorageVolGetInfo(v.get(), &info), 0) << last_error().message;
    EXPECT_EQ(info.capacity, 4 * MiB);
}

TEST_F(Lifecycle, CapacityBeyondWhatRbdAcceptsIsAClearError)
{
    const std::string name = unique("huge");
    Vol v(virStorageVolCreateXML(vms_->get(), vol_xml(name, 1000ull << 40).c_str(), 0));
    EXPECT_FALSE(v);
    EXPECT_EQ(last_error().code, VIR_ERR_INVALID_ARG) << last_error().message;
    EXPECT_NE(last_error().message.find("larger than RBD accepts"), std::string::npos) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd2", name));
}

TEST_F(Lifecycle, ConcurrentCreatesAndDeletesLeaveAConsistentCluster)
{
    // Phase 1: 8 clones of the golden image requested in parallel while the
    // image itself is being deleted: every call succeeds fully or fails
    // with a message, and the cluster agrees with what the calls said.
    const int n = 8;
    std::vector<std::string> names(n), errors(n);
    for (auto &nm : names) {
        nm = unique("conc");
        clones_.emplace_back("rbd", nm);
    }
    std::string delete_error;
    bool deleted = false;
    const std::string pool_name = images_->name();
    auto on_own_connection = [&](auto &&fn) {
        virConnectPtr c = virConnectOpen(env("LIBVIRT_STORAGE_URI").c_str());
        virStoragePoolPtr p = virStoragePoolLookupByName(c, pool_name.c_str());
        fn(p);
        virStoragePoolFree(p);
        virConnectClose(c);
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < n; i++)
        ts.emplace_back([&, i] {
            on_own_connection([&](virStoragePoolPtr p) {
                virStorageVolPtr sv = virStorageVolLookupByName(p, golden_.c_str());
                virStorageVolPtr v =
                    sv ? virStorageVolCreateXMLFrom(p, vol_xml(names[i], 8 * MiB).c_str(), sv, 0) : nullptr;
                if (!v)
                    errors[i] = last_error().message.empty() ? "failed without a message" : last_error().message;
                if (v)
                    virStorageVolFree(v);
                if (sv)
                    virStorageVolFree(sv);
            });
        });
    ts.emplace_back([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        on_own_connection([&](virStoragePoolPtr p) {
            virStorageVolPtr sv = virStorageVolLookupByName(p, golden_.c_str());
            deleted = sv && virStorageVolDelete(sv, 0) == 0;
            if (!deleted)
                delete_error = last_error().message;
            if (sv)
                virStorageVolFree(sv);
        });
    });
    for (auto &t : ts)
        t.join();
    int made = 0;
    for (int i = 0; i < n; i++) {
        if (errors[i].empty()) {
            made++;
            ASSERT_TRUE(ceph().exists("rbd", names[i])) << names[i] << " reported created";
            EXPECT_EQ(ceph().read("rbd", names[i], 0, 12), "golden bytes") << names[i];
        } else {
            EXPECT_FALSE(ceph().exists("rbd", names[i])) << names[i] << " failed (" << errors[i] << ") yet exists";
        }
    }
    EXPECT_EQ(deleted, !ceph().exists("rbd", golden_)) << delete_error;
    if (deleted) {
        EXPECT_EQ(made, 0) << "the image was deleted while it had clones";
    } else {
        EXPECT_FALSE(delete_error.empty());
        EXPECT_EQ(our_snapshots().size(), made ? 1u : 0u);
    }
    for (const auto &nm : ceph().list("rbd"))
        EXPECT_EQ(nm.find(".rbdclone-partial-"), std::string::npos) << nm;

    // Phase 2: every clone deleted twice at once: each image goes, no call
    // hangs or crashes the daemon, and our snapshot goes with the last one.
    virStoragePoolRefresh(images_->get(), 0);
    ts.clear();
    for (int i = 0; i < n; i++)
        for (int twice = 0; twice < 2; twice++)
            ts.emplace_back([&, i] {
                on_own_connection([&](virStoragePoolPtr p) {
                    if (virStorageVolPtr v = virStorageVolLookupByName(p, names[i].c_str())) {
                        virStorageVolDelete(v, 0);
                        virStorageVolFree(v);
                    }
                });
            });
    for (auto &t : ts)
        t.join();
    for (int i = 0; i < n; i++)
        EXPECT_FALSE(ceph().exists("rbd", names[i])) << names[i];
    if (!deleted) {
        EXPECT_TRUE(our_snapshots().empty()) << "our snapshot outlived the last clone";
        EXPECT_EQ(ceph().read("rbd", golden_, 0, 12), "golden bytes");
    }
}

namespace {
// A Ceph user that may only use Ceph pool rbd2 (as clouds give each
// hypervisor pool its own key); its base64 key.
std::string pool_limited_key()
{
    const std::string cmd = R"({"prefix": "auth get-or-create", "entity": "client.rbd2only",
        "caps": ["mon", "profile rbd", "osd", "profile rbd pool=rbd2"], "format": "json"})";
    const char *cmds[] = {cmd.c_str()};
    char *outb = nullptr, *outs = nullptr;
    size_t outbl = 0, outsl = 0;
    int r = rados_mon_command(ceph().cluster(), cmds, 1, "", 0, &outb, &outbl, &outs, &outsl);
    std::string out(outb ? outb : "", outbl);
    rados_buffer_free(outb);
    rados_buffer_free(outs);
    if (r < 0)
        return "";
    auto k = out.find("\"key\"");
    if (k == std::string::npos)
        return "";
    auto b = out.find('"', out.find(':', k) + 1);
    return out.substr(b + 1, out.find('"', b + 1) - b - 1);
}
} // namespace

TEST_F(Lifecycle, AUserLimitedToOnePoolCanStillCloneAndDelete)
{
    const std::string key = pool_limited_key();
    ASSERT_FALSE(key.empty());
    CephSecret secret(key);
    ASSERT_TRUE(secret.ok()) << last_error().message;
    PoolSpec spec{unique("limited")};
    spec.ceph_pool = "rbd2";
    spec.user = "rbd2only";
    spec.secret_uuid = secret.uuid();
    Pool pool(spec);
    ASSERT_TRUE(pool.ok()) << last_error().message;
    const std::string base = unique("base"), child = unique("child");
    clones_.emplace_back("rbd2", child);
    clones_.emplace_back("rbd2", base);
    Vol b(virStorageVolCreateXML(pool.get(), vol_xml(base, 8 * MiB).c_str(), 0));
    ASSERT_TRUE(b) << last_error().message;
    Vol c(virStorageVolCreateXMLFrom(pool.get(), vol_xml(child, 8 * MiB).c_str(), b.get(), 0));
    ASSERT_TRUE(c) << last_error().message;
    EXPECT_NE(ceph().parent("rbd2", child), "");
    // With a clone, the base is never deleted; whatever the user may list,
    // the error says why in words.
    EXPECT_NE(virStorageVolDelete(b.get(), 0), 0);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_OPERATION_INVALID) << e.message;
    EXPECT_TRUE(e.message.find("clone") != std::string::npos || e.message.find("has snapshots") != std::string::npos)
        << e.message;
    EXPECT_TRUE(ceph().exists("rbd2", base));
    ASSERT_EQ(virStorageVolDelete(c.get(), 0), 0) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd2", child));
    // The base goes, with --delete-snapshots if our snapshot could not be
    // judged unused.
    if (virStorageVolDelete(b.get(), 0) != 0) {
        EXPECT_EQ(virStorageVolDelete(b.get(), VIR_STORAGE_VOL_DELETE_WITH_SNAPSHOTS), 0) << last_error().message;
    }
    EXPECT_FALSE(ceph().exists("rbd2", base));
}
