// A second, independent Ceph cluster (its own fsid) next to the lab's: its
// images are never cloned into the lab's cluster but copied, through the
// connection of a pool of this daemon that reaches it.  Our module only.
#include <gtest/gtest.h>

#include <deque>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "ceph/image_open.hpp"
#include "lab_client.hpp"

using namespace lab;

namespace {

// ceph-lab.sh start/stop around the suite; its env as a map.
class SecondCluster {
  public:
    SecondCluster()
    {
        if (!top_.ok())
            return;
        dir_ = top_.file("ceph");
        const std::string cmd = "CEPH_LAB_MEM_BYTES=1073741824 '" + env("LAB_TOOLS_DIR") + "/ceph-lab.sh' start '" +
                                dir_ + "' >'" + top_.file("start.log") + "' 2>&1";
        if (system(cmd.c_str()) != 0)
            return;
        env_ = read_env_file(dir_ + "/ceph.env");
        // Bounded, as the module's own connections are: a test that stops
        // this cluster's OSD must fail, not hang, if it does not recover.
        if (rados_create(&cluster_, "admin") < 0 || rados_conf_read_file(cluster_, get("CEPH_CONF").c_str()) < 0 ||
            rados_conf_set(cluster_, "rados_osd_op_timeout", "60") < 0 ||
            rados_conf_set(cluster_, "rados_mon_op_timeout", "60") < 0 || rados_connect(cluster_) < 0 ||
            rados_ioctx_create(cluster_, "rbd", &io_) < 0)
            return;
        ok_ = true;
    }
    ~SecondCluster()
    {
        if (io_)
            rados_ioctx_destroy(io_);
        if (cluster_)
            rados_shutdown(cluster_);
        if (!dir_.empty()) // then top_ goes, with the cluster's directory
            (void)!system(("'" + env("LAB_TOOLS_DIR") + "/ceph-lab.sh' stop '" + dir_ + "' >/dev/null 2>&1").c_str());
    }
    bool ok() const { return ok_; }
    std::string get(const std::string &k) const
    {
        auto it = env_.find(k);
        return it == env_.end() ? "" : it->second;
    }
    rados_ioctx_t io() const { return io_; }
    // Whether `image` exists, asked through a new client of its own (60 s
    // bounds, as io()'s): after an OSD stop, a client that had a session
    // with the OSD may stay unanswered where a new one is not.
    int image_exists_fresh(const std::string &image) const
    {
        rados_t c = nullptr;
        rados_ioctx_t io = nullptr;
        int r = rados_create(&c, "admin");
        if (r == 0 && (r = rados_conf_read_file(c, get("CEPH_CONF").c_str())) == 0 &&
            (r = rados_conf_set(c, "rados_osd_op_timeout", "60")) == 0 &&
            (r = rados_conf_set(c, "rados_mon_op_timeout", "60")) == 0 && (r = rados_connect(c)) == 0 &&
            (r = rados_ioctx_create(c, "rbd", &io)) == 0)
            r = rbdclone::image_exists(io, image);
        if (io)
            rados_ioctx_destroy(io);
        if (c)
            rados_shutdown(c);
        return r;
    }
    // The last lines of the OSD's log, for a failure's message.
    std::string osd_log_tail() const
    {
        std::ifstream f(dir_ + "/log/osd.0.log");
        std::deque<std::string> lines;
        for (std::string l; std::getline(f, l);) {
            lines.push_back(l);
            if (lines.size() > 40)
                lines.pop_front();
        }
        std::string out;
        for (auto &l : lines)
            out += l + "\n";
        return out;
    }
    // What the OSD itself says about a silence, for a failure's message: its
    // ops in flight with their events (what each waits for), its state, its
    // used-bytes count, and the log lines about fullness, heartbeats, map
    // changes and leases.  Through the admin socket, which answers while
    // client ops are stuck.
    std::string osd_diagnosis() const
    {
        const std::string sock = dir_ + "/run/ceph-osd.0.asok";
        std::string out;
        for (const char *cmd : {"status", "dump_ops_in_flight", "perf dump osd"}) {
            out += std::string("--- ceph daemon osd.0 ") + cmd + ":\n";
            out += run_capture("timeout 20 ceph --admin-daemon '" + sock + "' " + cmd + " 2>&1 | head -c 12000");
        }
        out += "--- OSD log lines about fullness, heartbeats, maps, leases, slow ops (last 40):\n";
        out += run_capture("grep -aE 'full|heartbeat|wrongly|marked|laggy|readable|boot|slow|timed out|state<' '" +
                           dir_ + "/log/osd.0.log' | grep -avE 'get_health_metrics|slow requests' | tail -n 40");
        out += "--- ceph -s (20 s bound):\n";
        out += run_capture("timeout 20 ceph -c '" + get("CEPH_CONF") + "' -s 2>&1");
        return out;
    }
    // The OSD's pid (to freeze the cluster).
    pid_t osd_pid() const
    {
        std::ifstream f(dir_ + "/osd.pid");
        pid_t p = 0;
        f >> p;
        return p;
    }

  private:
    static std::string run_capture(const std::string &cmd)
    {
        std::string out;
        if (FILE *f = popen(cmd.c_str(), "r")) {
            char buf[4096];
            for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;)
                out.append(buf, n);
            pclose(f);
        }
        return out;
    }
    TempDir top_{"far"};
    std::string dir_;
    std::map<std::string, std::string> env_;
    rados_t cluster_ = nullptr;
    rados_ioctx_t io_ = nullptr;
    bool ok_ = false;
};

class FarCluster : public ::testing::Test {
  protected:
    static void SetUpTestSuite()
    {
        if (!testing_stock())
            far_ = new SecondCluster();
    }
    static void TearDownTestSuite()
    {
        delete far_;
        far_ = nullptr;
    }
    void SetUp() override
    {
        BEYOND_STOCK();
        ASSERT_TRUE(far_ && far_->ok()) << "the second cluster did not start";
        ASSERT_NE(far_->get("CEPH_FSID"), env("CEPH_FSID"));
        far_key_ = std::make_unique<CephSecret>(far_->get("CEPH_ADMIN_KEY"));
        ASSERT_TRUE(far_key_->ok()) << last_error().message;
        PoolSpec fs = far_spec("far-images");
        far_pool_ = std::make_unique<Pool>(fs);
        ASSERT_TRUE(far_pool_->ok()) << last_error().message;
        PoolSpec vs{unique("vms")};
        vs.ceph_pool = "rbd2";
        vms_ = std::make_unique<Pool>(vs);
        ASSERT_TRUE(vms_->ok()) << last_error().message;
    }
    void TearDown() override
    {
        vms_.reset();
        far_pool_.reset();
        far_key_.reset();
        for (auto &n : far_images_)
            rbd_remove(far_->io(), n.c_str());
        for (auto &n : disks_)
            ceph().remove("rbd2", n);
    }
    // A pool on the far cluster's Ceph pool "rbd", through its client.admin.
    PoolSpec far_spec(const std::string &prefix) const
    {
        PoolSpec fs{unique(prefix)};
        fs.port = std::stoi(far_->get("CEPH_MON_V2_PORT"));
        fs.secret_uuid = far_key_->uuid();
        return fs;
    }
    // An image in the far cluster holding `data` at `offset`.
    std::string far_image(const std::string &data, uint64_t offset, uint64_t size)
    {
        std::string name = unique("far-golden");
        int order = 0;
        EXPECT_EQ(rbd_create(far_->io(), name.c_str(), size, &order), 0);
        far_images_.push_back(name);
        rbd_image_t img;
        EXPECT_EQ(rbd_open(far_->io(), name.c_str(), &img, nullptr), 0);
        EXPECT_EQ(rbd_write(img, offset, data.size(), data.data()), static_cast<ssize_t>(data.size()));
        EXPECT_EQ(rbd_snap_create(img, "v1"), 0);
        rbd_close(img);
        virStoragePoolRefresh(far_pool_->get(), 0);
        return name;
    }
    std::string disk()
    {
        disks_.push_back(unique("disk"));
        return disks_.back();
    }

    static SecondCluster *far_;
    std::unique_ptr<CephSecret> far_key_;
    std::unique_ptr<Pool> far_pool_, vms_;
    std::vector<std::string> far_images_, disks_;
};

SecondCluster *FarCluster::far_ = nullptr;

} // namespace

TEST_F(FarCluster, VolumeOfAnotherClusterIsCopiedNotCloned)
{
    const std::string data(3 * MiB, 'f');
    const std::string img = far_image(data, 5 * MiB, 16 * MiB);
    Vol src(virStorageVolLookupByName(far_pool_->get(), img.c_str()));
    ASSERT_TRUE(src) << last_error().message;
    const std::string d = disk();
    Vol v(virStorageVolCreateXMLFrom(vms_->get(), vol_xml(d, 16 * MiB).c_str(), src.get(), 0));
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().parent("rbd2", d), "");
    EXPECT_EQ(ceph().size("rbd2", d), 16 * MiB);
    EXPECT_TRUE(ceph().read("rbd2", d, 5 * MiB, data.size()) == data);
    EXPECT_EQ(ceph().read("rbd2", d, 0, 5 * MiB), std::string(5 * MiB, '\0'));
    EXPECT_LE(ceph().allocated("rbd2", d), 2 * 4 * MiB) << "holes of the source were written";
}

TEST_F(FarCluster, ReflinkFromAnotherClusterIsRefusedWithBothFsids)
{
    const std::string img = far_image("x", 0, 4 * MiB);
    Vol src(virStorageVolLookupByName(far_pool_->get(), img.c_str()));
    ASSERT_TRUE(src);
    const std::string d = disk();
    Vol v(virStorageVolCreateXMLFrom(vms_->get(), vol_xml(d, 4 * MiB).c_str(), src.get(),
                                     VIR_STORAGE_VOL_CREATE_REFLINK));
    EXPECT_FALSE(v);
    EXPECT_EQ(last_error().code, VIR_ERR_OPERATION_UNSUPPORTED);
    EXPECT_NE(last_error().message.find(far_->get("CEPH_FSID")), std::string::npos) << last_error().message;
    EXPECT_NE(last_error().message.find(env("CEPH_FSID")), std::string::npos) << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd2", d));
}

TEST_F(FarCluster, GlanceLocationInAnotherClusterIsCopiedFromItsSnapshot)
{
    const std::string img = far_image(std::string(1 * MiB, 'g'), 0, 8 * MiB);
    // Written after the snapshot: the copy must not see it.
    rbd_image_t h;
    ASSERT_EQ(rbd_open(far_->io(), img.c_str(), &h, nullptr), 0);
    ASSERT_EQ(rbd_write(h, 0, 5, "AFTER"), 5);
    rbd_close(h);
    const std::string d = disk();
    const std::string loc = "rbd://" + far_->get("CEPH_FSID") + "/rbd/" + img + "/v1";
    std::string xml = "<volume><name>" + d + "</name><target><format type='raw'/></target><backingStore><path>" +
                      loc + "</path></backingStore></volume>";
    Vol v(virStorageVolCreateXML(vms_->get(), xml.c_str(), 0));
    ASSERT_TRUE(v) << last_error().message;
    EXPECT_EQ(ceph().parent("rbd2", d), "");
    EXPECT_EQ(ceph().read("rbd2", d, 0, 1 * MiB), std::string(1 * MiB, 'g'));
}

TEST_F(FarCluster, LocationInAClusterNoPoolReachesIsAClearError)
{
    const std::string d = disk();
    std::string xml = "<volume><name>" + d +
                      "</name><target><format type='raw'/></target><backingStore><path>"
                      "rbd://00000000-1111-2222-3333-444444444444/rbd/img/snap</path></backingStore></volume>";
    Vol v(virStorageVolCreateXML(vms_->get(), xml.c_str(), 0));
    EXPECT_FALSE(v);
    EXPECT_NE(last_error().message.find("which no active RBD pool of this daemon reaches"), std::string::npos)
        << last_error().message;
    EXPECT_FALSE(ceph().exists("rbd2", d));
}

TEST_F(FarCluster, AHungClusterDoesNotHoldUpPoolsOfAnother)
{
    // The far cluster's OSD stops answering while one of its pools is
    // refreshed (bounded by rados_osd_op_timeout): meanwhile the lab's
    // pools keep working.
    PoolSpec fs = far_spec("far-hung");
    fs.config_opts = {{"rados_osd_op_timeout", "6"}};
    Pool hung(fs);
    ASSERT_TRUE(hung.ok()) << last_error().message;
    far_image("x", 0, 4 * MiB);
    const pid_t osd = far_->osd_pid();
    ASSERT_GT(osd, 0);
    ASSERT_EQ(kill(osd, SIGSTOP), 0);
    std::atomic<bool> refresh_done{false};
    std::thread refresher([&] {
        virConnectPtr c = virConnectOpen(env("LIBVIRT_STORAGE_URI").c_str());
        virStoragePoolPtr p = virStoragePoolLookupByName(c, hung.name().c_str());
        virStoragePoolRefresh(p, 0);
        virStoragePoolFree(p);
        virConnectClose(c);
        refresh_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // Work on the other cluster, while that refresh hangs.
    const std::string d = disk();
    Vol v(virStorageVolCreateXML(vms_->get(), vol_xml(d, 4 * MiB).c_str(), 0));
    const bool other_pool_worked = v != nullptr && virStoragePoolRefresh(vms_->get(), 0) == 0;
    const bool hung_still = !refresh_done;
    kill(osd, SIGCONT);
    refresher.join();
    EXPECT_TRUE(other_pool_worked) << last_error().message;
    EXPECT_TRUE(hung_still) << "the far refresh did not hang: the test proves nothing";
    EXPECT_TRUE(ceph().exists("rbd2", d));
}

TEST_F(FarCluster, CloneFormat2OnAClusterThatAdmitsOlderClientsIsAClearErrorAndMakesNothing)
{
    // The second cluster is fresh: require_min_compat_client is luminous.
    PoolSpec fs = far_spec("far-v2");
    fs.extra = "  <rbd:clone format='2'/>\n";
    Pool v2(fs);
    ASSERT_TRUE(v2.ok()) << last_error().message;
    const std::string img = far_image("x", 0, 4 * MiB);
    virStoragePoolRefresh(v2.get(), 0);
    Vol src(virStorageVolLookupByName(v2.get(), img.c_str()));
    ASSERT_TRUE(src) << last_error().message;
    const std::string d = unique("far-disk");
    Vol v(virStorageVolCreateXMLFrom(v2.get(), vol_xml(d, 4 * MiB).c_str(), src.get(), 0));
    EXPECT_FALSE(v);
    auto e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_OPERATION_UNSUPPORTED) << e.message;
    EXPECT_NE(e.message.find("clone format 2"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("require_min_compat_client is 'luminous'"), std::string::npos) << e.message;
    EXPECT_EQ(rbdclone::image_exists(far_->io(), d), 0) << "a disk was left behind";
    rbd_image_t h;
    ASSERT_EQ(rbd_open(far_->io(), img.c_str(), &h, nullptr), 0);
    rbd_snap_info_t snaps[8];
    int max = 8;
    EXPECT_EQ(rbd_snap_list(h, snaps, &max), 1) << "a snapshot was made for a clone that cannot be";
    rbd_snap_list_end(snaps);
    rbd_close(h);
}

namespace {

// The hidden partial images in the far cluster's pool "rbd".
std::vector<std::string> far_partials(rados_ioctx_t io)
{
    std::vector<std::string> out;
    std::vector<rbd_image_spec_t> specs(256);
    size_t n = specs.size();
    if (rbd_list2(io, specs.data(), &n) < 0)
        return out;
    for (size_t i = 0; i < n; i++)
        if (std::string(specs[i].name).find(".rbdclone-partial-") != std::string::npos)
            out.emplace_back(specs[i].name);
    rbd_image_spec_list_cleanup(specs.data(), n);
    return out;
}

} // namespace

// Last of the suite: an OSD stopped in the middle of writes may leave its
// cluster slow for a while after it resumes; this one is thrown away.
TEST_F(FarCluster, ZOsdStoppedMidCopyFailsInBoundedTimeAndLeavesNothingUsable)
{
    TempDir tmp("midcopy");
    ASSERT_TRUE(tmp.ok());
    const std::string file = tmp.file("big.img");
    {
        std::string block(1 * MiB, '\0');
        for (size_t i = 0; i < block.size(); i++)
            block[i] = static_cast<char>(i * 7 + 1);
        std::ofstream f(file, std::ios::binary);
        for (int i = 0; i < 512; i++)
            f << block;
    }
    PoolSpec fs = far_spec("far-short");
    fs.config_opts = {{"rados_osd_op_timeout", "3"}};
    Pool pool(fs);
    ASSERT_TRUE(pool.ok()) << last_error().message;
    const std::string disk = unique("cut");
    const std::string xml = "<volume><name>" + disk + "</name><target><format type='raw'/></target>"
                            "<backingStore><path>" + file + "</path><format type='raw'/></backingStore></volume>";
    const pid_t osd = far_->osd_pid();
    ASSERT_GT(osd, 0);

    std::atomic<bool> done{false};
    bool created = false;
    LastError err;
    auto t0 = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration took{};
    std::thread copier([&] {
        Vol v(virStorageVolCreateXML(pool.get(), xml.c_str(), 0));
        created = v != nullptr;
        if (!v)
            err = last_error();
        took = std::chrono::steady_clock::now() - t0;
        done = true;
    });
    // Stop the OSD while the copy writes: the whole copy takes ~400 ms
    // here, opening the new image and taking its lock a few.
    bool frozen = false;
    while (!done && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
        if (!far_partials(far_->io()).empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(60));
            frozen = !done && kill(osd, SIGSTOP) == 0;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    while (!done && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(90))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (frozen)
        kill(osd, SIGCONT);
    copier.join();
    ASSERT_TRUE(frozen) << "the copy finished before the OSD could be stopped";
    EXPECT_FALSE(created);
    // librbd's aio writes ignore rados_osd_op_timeout: the copy engine's own
    // stall limit (timeout + 5 s) ends it.
    EXPECT_LT(std::chrono::duration_cast<std::chrono::seconds>(took).count(), 45) << "not bounded";
    EXPECT_NE(err.message.find("rbd/" + disk), std::string::npos) << err.message;
    // Looked up without an open that would fail inside librbd (image_open.hpp).
    // A freeze longer than the PGs' read lease leaves a lone OSD's PGs
    // "laggy" after SIGCONT, every op "waiting for readable" (Ceph 18 kept
    // them so for more than 6 minutes): the labs' lease is 300 s
    // (tests/lab/ceph-lab.sh), longer than this freeze.  Should the OSD
    // still be silent, the later questions go through a new client, which
    // tells whether the OSD or the old client's session is the one that
    // is silent, for up to 5 more minutes; the OSD's log, its ops in
    // flight and its status go to stderr the first time.
    int ex = rbdclone::image_exists(far_->io(), disk);
    if (ex == -ETIMEDOUT)
        fprintf(stderr, "the far cluster has not answered for 60 s since SIGCONT (OSD %s); its log ends:\n%s%s",
                kill(osd, 0) == 0 ? "running" : "gone", far_->osd_log_tail().c_str(), far_->osd_diagnosis().c_str());
    for (int i = 0; ex == -ETIMEDOUT && i < 5; i++) {
        ex = far_->image_exists_fresh(disk);
        fprintf(stderr, "asked again with a new client: %d\n", ex);
    }
    EXPECT_EQ(ex, 0) << "a cut copy became a volume"
                     << (ex == -ETIMEDOUT ? "? (the far cluster never answered again)" : "");
    // Whatever was left is hidden: never a volume.  (It goes at a refresh
    // once the cluster answers again and nobody watches it: Restart.*
    // tests that part, with a crashed daemon.)
    virStoragePoolRefresh(pool.get(), 0);
    for (const auto &partial : far_partials(far_->io()))
        EXPECT_EQ(Vol(virStorageVolLookupByName(pool.get(), partial.c_str())), nullptr) << partial << " is listed";
    EXPECT_EQ(Vol(virStorageVolLookupByName(pool.get(), disk.c_str())), nullptr);
}
