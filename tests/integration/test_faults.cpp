// Faults.  A stopped OSD during a clone or a delete: a clear error within a
// bounded, configurable time, the daemon answering meanwhile, nothing
// half-done.  libvirtd restarts with our module: a private libvirtd of its own (the
// lab's libvirtd-lab.sh, state kept across restarts as on a host) on the
// lab's cluster is stopped (SIGTERM) or killed (SIGKILL, as a crash) and
// started again.  Persistent pools come back active with every volume
// listed and their policy; a copy cut short by the crash leaves nothing
// usable and its hidden image goes at a later refresh.  Our module only.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdlib>
#include <thread>

#include "lab_client.hpp"
#include "test_files.hpp"

using namespace lab;

namespace {


bool has_volume(virConnectPtr c, const std::string &pool, const std::string &vol)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c, pool.c_str());
    if (!p)
        return false;
    virStorageVolPtr v = virStorageVolLookupByName(p, vol.c_str());
    bool found = v != nullptr;
    if (v)
        virStorageVolFree(v);
    virStoragePoolFree(p);
    return found;
}

std::vector<std::string> partials_of(const std::string &image)
{
    std::vector<std::string> out;
    for (const auto &n : ceph().list("rbd"))
        if (n.rfind(image + ".rbdclone-partial-", 0) == 0)
            out.push_back(n);
    return out;
}

class Restart : public ::testing::Test {
  protected:
    void SetUp() override
    {
        BEYOND_STOCK();
        daemon_ = std::make_unique<PrivateDaemon>();
        ASSERT_TRUE(daemon_->ok()) << "the private libvirtd did not start";
        ASSERT_TRUE(daemon_->define_admin_secret()) << last_error().message;
    }
    void TearDown() override
    {
        daemon_.reset();
        for (auto it = images_.rbegin(); it != images_.rend(); ++it)
            ceph().remove("rbd", *it);
    }
    std::string track(const std::string &name)
    {
        images_.push_back(name);
        return name;
    }
    // Defines SPEC as a persistent pool of the private daemon and starts it, each step
    // asserted: P, which the caller frees.  Call it inside ASSERT_NO_FATAL_FAILURE.
    void define_and_start(const PoolSpec &spec, virStoragePoolPtr &p)
    {
        p = virStoragePoolDefineXML(daemon_->storage(), pool_xml(spec).c_str(), 0);
        ASSERT_TRUE(p) << last_error().message;
        ASSERT_EQ(virStoragePoolCreate(p, 0), 0) << last_error().message;
    }

    std::unique_ptr<PrivateDaemon> daemon_;
    std::vector<std::string> images_;
};

} // namespace

TEST_F(Restart, PersistentPoolsComeBackWithTheirVolumesAndPolicy)
{
    PoolSpec spec{unique("persist")};
    spec.extra = "  <rbd:clone delete='deferred'/>\n";
    virStoragePoolPtr p;
    ASSERT_NO_FATAL_FAILURE(define_and_start(spec, p));
    const std::string golden = track(unique("golden"));
    virStorageVolPtr src = golden_volume(p, golden);
    ASSERT_TRUE(src);
    const std::string disk = track(unique("disk"));
    virStorageVolPtr v = virStorageVolCreateXMLFrom(p, vol_xml(disk, 8 * MiB).c_str(), src, 0);
    ASSERT_TRUE(v) << last_error().message;
    virStorageVolFree(v);
    virStorageVolFree(src);
    virStoragePoolFree(p);

    for (bool kill : {false, true}) {
        SCOPED_TRACE(kill ? "after SIGKILL" : "after SIGTERM");
        ASSERT_TRUE(daemon_->restart(kill));
        p = virStoragePoolLookupByName(daemon_->storage(), spec.name.c_str());
        ASSERT_TRUE(p) << last_error().message;
        EXPECT_EQ(virStoragePoolIsActive(p), 1);
        EXPECT_TRUE(has_volume(daemon_->storage(), spec.name, golden));
        EXPECT_TRUE(has_volume(daemon_->storage(), spec.name, disk));
        char *x = virStoragePoolGetXMLDesc(p, 0);
        EXPECT_NE(std::string(x ? x : "").find("<rbd:clone delete='deferred'/>"), std::string::npos);
        free(x);
        // The pool's connection and policy are back: a clone, then a
        // deferred delete of its parent.
        const std::string d2 = track(unique("after"));
        src = virStorageVolLookupByName(p, golden.c_str());
        ASSERT_TRUE(src);
        v = virStorageVolCreateXMLFrom(p, vol_xml(d2, 8 * MiB).c_str(), src, 0);
        ASSERT_TRUE(v) << last_error().message;
        EXPECT_EQ(ceph().read("rbd", d2, 0, 12), "golden bytes");
        ASSERT_EQ(virStorageVolDelete(v, 0), 0) << last_error().message;
        virStorageVolFree(v);
        virStorageVolFree(src);
        virStoragePoolFree(p);
    }
    p = virStoragePoolLookupByName(daemon_->storage(), spec.name.c_str());
    virStorageVolPtr g = virStorageVolLookupByName(p, golden.c_str());
    ASSERT_TRUE(g);
    ASSERT_EQ(virStorageVolDelete(g, 0), 0) << last_error().message; // deferred: disk still has it
    EXPECT_FALSE(ceph().exists("rbd", golden));
    EXPECT_EQ(ceph().read("rbd", disk, 0, 12), "golden bytes");
    virStorageVolFree(g);
    virStorageVolPtr d = virStorageVolLookupByName(p, disk.c_str());
    ASSERT_TRUE(d);
    ASSERT_EQ(virStorageVolDelete(d, 0), 0) << last_error().message; // purges the golden image
    virStorageVolFree(d);
    virStoragePoolDestroy(p);
    virStoragePoolUndefine(p);
    virStoragePoolFree(p);
}

TEST_F(Restart, ACopyCutShortByACrashLeavesNothingUsableAndIsCleanedUpLater)
{
    PoolSpec spec{unique("crash")};
    virStoragePoolPtr p;
    ASSERT_NO_FATAL_FAILURE(define_and_start(spec, p));
    virStoragePoolFree(p);
    // 512 MiB of data without layering: copied, long enough to crash in.
    const std::string src = track(unique("nolayer"));
    ceph().create("rbd", src, 512 * MiB, RBD_FEATURE_EXCLUSIVE_LOCK);
    const std::string chunk(4 * MiB, 'd');
    for (uint64_t off = 0; off < 512 * MiB; off += chunk.size())
        ceph().write("rbd", src, off, chunk);
    const std::string disk = track(unique("cut"));

    std::thread copier([&, uri = daemon_->storage_uri(), pool = spec.name] {
        virConnectPtr c = virConnectOpen(uri.c_str());
        virStoragePoolPtr cp = c ? virStoragePoolLookupByName(c, pool.c_str()) : nullptr;
        virStoragePoolRefresh(cp, 0);
        virStorageVolPtr s = cp ? virStorageVolLookupByName(cp, src.c_str()) : nullptr;
        virStorageVolPtr v = s ? virStorageVolCreateXMLFrom(cp, vol_xml(disk, 512 * MiB).c_str(), s, 0) : nullptr;
        if (v)
            virStorageVolFree(v);
        if (s)
            virStorageVolFree(s);
        if (cp)
            virStoragePoolFree(cp);
        if (c)
            virConnectClose(c);
    });
    // Crash once the copy has started writing.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (partials_of(disk).empty() && !ceph().exists("rbd", disk) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const bool started = !partials_of(disk).empty();
    const bool restarted = started && daemon_->restart(true);
    copier.join(); // before any assertion: a joinable thread must not be destroyed
    ASSERT_TRUE(started) << "the copy did not start (or finished too fast to be cut)";
    ASSERT_TRUE(restarted);

    EXPECT_FALSE(ceph().exists("rbd", disk)) << "a cut copy must not become a volume";
    EXPECT_FALSE(has_volume(daemon_->storage(), spec.name, disk));
    const auto left = partials_of(disk);
    for (const auto &n : left)
        EXPECT_FALSE(has_volume(daemon_->storage(), spec.name, n)) << "partial image listed: " << n;
    // The crashed daemon's watch on the hidden image lasts until the OSD
    // times it out (osd_client_watch_timeout, 30 s); refreshes remove it after.
    p = virStoragePoolLookupByName(daemon_->storage(), spec.name.c_str());
    ASSERT_TRUE(p);
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(75);
    while (!partials_of(disk).empty() && std::chrono::steady_clock::now() < deadline) {
        EXPECT_EQ(virStoragePoolRefresh(p, 0), 0) << last_error().message;
        std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    EXPECT_TRUE(partials_of(disk).empty()) << "the hidden image of the cut copy is still there";
    // The name is free for a new attempt, which completes.
    virStorageVolPtr s = virStorageVolLookupByName(p, src.c_str());
    ASSERT_TRUE(s);
    virStorageVolPtr v = virStorageVolCreateXMLFrom(p, vol_xml(disk, 512 * MiB).c_str(), s, 0);
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().read("rbd", disk, 500 * MiB, 4), "dddd");
    virStorageVolFree(v);
    virStorageVolFree(s);
    virStoragePoolDestroy(p);
    virStoragePoolUndefine(p);
    virStoragePoolFree(p);
}

namespace {

// A pool whose Ceph operations time out after 3 s, and an image in it.
class OsdDown : public ::testing::Test {
  protected:
    void SetUp() override
    {
        BEYOND_STOCK();
        PoolSpec spec{unique("short-timeout")};
        spec.config_opts = {{"rados_osd_op_timeout", "3"}, {"rados_mon_op_timeout", "3"}};
        pool_ = std::make_unique<Pool>(spec);
        ASSERT_TRUE(pool_->ok()) << last_error().message;
        golden_ = unique("golden");
        src_.reset(golden_volume(pool_->get(), golden_));
        ASSERT_TRUE(src_);
    }
    void TearDown() override
    {
        src_.reset();
        pool_.reset();
        for (const auto &n : clones_)
            ceph().remove("rbd", n);
        if (!golden_.empty())
            ceph().remove("rbd", golden_);
    }
    // Runs `op` while the OSD is stopped; checks the daemon answers other
    // calls meanwhile.  Returns how long `op` took.
    std::chrono::milliseconds while_stopped(const std::function<void()> &op)
    {
        FrozenOsd osd;
        EXPECT_TRUE(osd.freeze());
        std::atomic<bool> done{false};
        std::chrono::milliseconds took{};
        std::thread t([&] {
            auto t0 = std::chrono::steady_clock::now();
            op();
            took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
            done = true;
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        // Other pools are served, on another connection, while op waits
        // (libvirt holds the busy pool's own lock meanwhile).
        TempDir tmp("dirpool");
        EXPECT_TRUE(tmp.ok());
        virConnectPtr c = virConnectOpen(env("LIBVIRT_STORAGE_URI").c_str());
        auto t1 = std::chrono::steady_clock::now();
        {
            DirPool dir(tmp.path(), c);
            EXPECT_TRUE(dir.ok()) << last_error().message;
            if (dir.ok()) {
                EXPECT_EQ(virStoragePoolRefresh(dir.get(), 0), 0);
                virStorageVolPtr v = virStorageVolCreateXML(dir.get(), vol_xml("f.img", 1 * MiB).c_str(), 0);
                EXPECT_TRUE(v) << last_error().message;
                if (v) {
                    virStorageVolDelete(v, 0);
                    virStorageVolFree(v);
                }
            }
        }
        EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::seconds(2)) << "the daemon stalled";
        EXPECT_FALSE(done) << "op ended before the other pool was used; the check proved nothing";
        virConnectClose(c);
        // Bounded: thaw after 60 s whatever happens, so a failure cannot hang the suite.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!done && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        osd.thaw();
        t.join();
        return took;
    }

    std::unique_ptr<Pool> pool_;
    std::string golden_;
    Vol src_;
    std::vector<std::string> clones_;
};

} // namespace

TEST_F(OsdDown, CloneFailsInBoundedTimeAndLeavesNoVolume)
{
    const std::string disk = unique("disk");
    clones_.push_back(disk);
    LastError err;
    bool created = false;
    auto took = while_stopped([&] {
        Vol v(virStorageVolCreateXMLFrom(pool_->get(), vol_xml(disk, 8 * MiB).c_str(), src_.get(), 0));
        created = v != nullptr;
        if (!v)
            err = last_error();
    });
    EXPECT_FALSE(created);
    EXPECT_LT(took, std::chrono::seconds(30)) << "not bounded by rados_osd_op_timeout=3";
    EXPECT_NE(err.message.find(golden_), std::string::npos) << err.message;
    EXPECT_NE(err.message.find("timed out"), std::string::npos) << err.message;
    EXPECT_FALSE(ceph().exists("rbd", disk));
    EXPECT_EQ(Vol(virStorageVolLookupByName(pool_->get(), disk.c_str())), nullptr);
    // With the OSD back, the same request succeeds, and at most one
    // snapshot of ours serves it.
    Vol v(virStorageVolCreateXMLFrom(pool_->get(), vol_xml(disk, 8 * MiB).c_str(), src_.get(), 0));
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().read("rbd", disk, 0, 12), "golden bytes");
    EXPECT_EQ(ceph().snapshots("rbd", golden_).size(), 1u);
}

TEST_F(OsdDown, DeleteFailsInBoundedTimeAndTheImageIsWholeAfterwards)
{
    LastError err;
    int rc = 0;
    auto took = while_stopped([&] {
        rc = virStorageVolDelete(src_.get(), 0);
        if (rc != 0)
            err = last_error();
    });
    EXPECT_LT(took, std::chrono::seconds(30)) << "not bounded by rados_osd_op_timeout=3";
    if (rc != 0) {
        EXPECT_NE(err.message.find(golden_), std::string::npos) << err.message;
        // Nothing half-done: the image is intact and still deletes.
        ASSERT_TRUE(ceph().exists("rbd", golden_));
        EXPECT_EQ(ceph().read("rbd", golden_, 0, 12), "golden bytes");
        virStoragePoolRefresh(pool_->get(), 0);
        Vol again(virStorageVolLookupByName(pool_->get(), golden_.c_str()));
        ASSERT_TRUE(again);
        ASSERT_EQ(virStorageVolDelete(again.get(), 0), 0) << last_error().message;
    }
    EXPECT_FALSE(ceph().exists("rbd", golden_));
}

TEST_F(Restart, AFlattenCutByACrashIsResumed)
{
    PoolSpec spec{unique("flat")};
    spec.extra = "  <rbd:clone flatten='always'/>\n";
    virStoragePoolPtr p;
    ASSERT_NO_FATAL_FAILURE(define_and_start(spec, p));
    // 512 MiB of data to copy up: long enough to crash in.
    const std::string golden = track(unique("golden"));
    ceph().create("rbd", golden, 512 * MiB);
    const std::string chunk(4 * MiB, 'g');
    for (uint64_t off = 0; off < 512 * MiB; off += chunk.size())
        ceph().write("rbd", golden, off, chunk);
    virStoragePoolRefresh(p, 0);
    virStorageVolPtr src = virStorageVolLookupByName(p, golden.c_str());
    ASSERT_TRUE(src);
    const std::string disk = track(unique("disk"));
    virStorageVolPtr v = virStorageVolCreateXMLFrom(p, vol_xml(disk, 512 * MiB).c_str(), src, 0);
    ASSERT_TRUE(v) << last_error().message;
    virStorageVolFree(v);
    virStorageVolFree(src);
    virStoragePoolFree(p);
    // The clone is made; its flatten runs in the background.  Crash.
    ASSERT_TRUE(daemon_->restart(true));
    if (ceph().parent("rbd", disk).empty())
        GTEST_SKIP() << "the flatten finished before the crash: nothing to resume";

    // The restarted daemon brings the pool back and resumes the flatten (it
    // waits for the dead daemon's exclusive lock on the clone to be broken).
    p = virStoragePoolLookupByName(daemon_->storage(), spec.name.c_str());
    ASSERT_TRUE(p) << last_error().message;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!ceph().parent("rbd", disk).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(ceph().parent("rbd", disk), "") << "the flatten was not resumed";
    EXPECT_EQ(ceph().read("rbd", disk, 508 * MiB, 4), "gggg");
    // The parent link leaves the header long before rbd_flatten returns: the
    // dead daemon's watch on the clone's header lingers (30 s), and librbd's
    // header-update notifies wait 5 s each for its answer (measured: link
    // gone at 0.13 s, rbd_flatten back at 10 s).  The release of the parent
    // snapshot follows the flatten's return, so it is timed from the
    // daemon's "flattened" line, not from the header.
    const std::string flattened = "flattened RBD image 'rbd/" + disk + "'";
    std::string log = testfiles::read_file(daemon_->log_path());
    while (log.find(flattened) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        log = testfiles::read_file(daemon_->log_path());
    }
    EXPECT_NE(log.find("resuming the flatten of RBD image 'rbd/" + disk + "'"), std::string::npos);
    ASSERT_NE(log.find(flattened), std::string::npos) << "the resumed flatten never returned";
    // Our snapshot of the golden image goes with its only clone's parent link.
    for (int i = 0; i < 20 && !ceph().snapshots("rbd", golden).empty(); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    EXPECT_TRUE(ceph().snapshots("rbd", golden).empty())
        << testfiles::lines_with(testfiles::read_file(daemon_->log_path()), golden);
    virStoragePoolDestroy(p);
    virStoragePoolUndefine(p);
    virStoragePoolFree(p);
}
