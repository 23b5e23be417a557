// The rbd backend loader (plugin/loader/rbd_loader.c) inside a real libvirtd: it loads the
// rbdclone module built for the running libvirt, and when there is none, or the one there was
// built for another libvirt, libvirt's stock rbd module serves and the daemon's log says why,
// once, at WARNING. Each case but the first starts a libvirtd of its own on a backend
// directory laid out as the Debian package lays out libvirt's (the loader, rbdclone/ beside
// it, the stock module as ….so.stock).
#include "integration/lab_client.hpp"
#include "test_files.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

using namespace lab;
using testfiles::lines_with;
using testfiles::read_file;

namespace {

constexpr uint64_t MiB = 1024 * 1024;

std::string version_of(virConnectPtr conn)
{
    unsigned long v = 0;
    if (virConnectGetLibVersion(conn, &v) < 0)
        return "";
    return std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." + std::to_string(v % 1000);
}

std::string real(const std::string &path)
{
    char buf[PATH_MAX];
    return realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

// A backend directory of the test's own: the lab's loader, an rbdclone/ directory holding
// MODULES (file name -> the module it links to), the stock module as ….so.stock when STOCK.
class BackendDir {
  public:
    BackendDir(const std::map<std::string, std::string> &modules, bool stock) : dir_("loader")
    {
        const std::string lab = env("LIBVIRTD_BACKEND_DIR");
        ok_ = dir_.ok() && link(lab + "/libvirt_storage_backend_rbd.so", "libvirt_storage_backend_rbd.so") &&
              link(lab + "/libvirt_storage_backend_fs.so", "libvirt_storage_backend_fs.so") &&
              mkdir(dir_.file("rbdclone").c_str(), 0755) == 0;
        if (stock)
            ok_ = ok_ && link(lab + "/libvirt_storage_backend_rbd.so.stock", "libvirt_storage_backend_rbd.so.stock");
        for (const auto &[name, target] : modules)
            ok_ = ok_ && link(target, "rbdclone/" + name);
    }
    bool ok() const { return ok_; }
    const std::string &path() const { return dir_.path(); }

  private:
    bool link(const std::string &target, const std::string &name)
    {
        const std::string t = real(target);
        return !t.empty() && symlink(t.c_str(), dir_.file(name).c_str()) == 0;
    }
    TempDir dir_;
    bool ok_ = false;
};

// The lab's modules built for another libvirt than VERSION ("" when the build made none).
std::string module_for_another_libvirt(const std::string &version)
{
    const std::string dir = real(env("LIBVIRTD_BACKEND_DIR") + "/rbdclone");
    DIR *d = opendir(dir.c_str());
    std::string found;
    for (dirent *e; d && (e = readdir(d));) {
        const std::string n = e->d_name;
        if (n.rfind("rbdclone-libvirt-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".so" &&
            n != "rbdclone-libvirt-" + version + ".so")
            found = dir + "/" + n;
    }
    if (d)
        closedir(d);
    return found;
}

class Loader : public ::testing::Test {
  protected:
    void SetUp() override { BEYOND_STOCK(); }

    // A daemon on DIR with the lab's admin secret; its libvirt version in version_.
    void start(const BackendDir &dir)
    {
        ASSERT_TRUE(dir.ok()) << "could not lay out the backend directory";
        daemon_ = std::make_unique<PrivateDaemon>(dir.path());
        ASSERT_TRUE(daemon_->ok()) << "the private libvirtd did not start on " << dir.path();
        ASSERT_TRUE(daemon_->define_admin_secret()) << last_error().message;
        version_ = version_of(daemon_->storage());
        ASSERT_FALSE(version_.empty());
    }

    // The stock backend serves: an rbd pool starts, a volume is created, and a volume with a
    // <backingStore> comes out as stock makes it, an image with no parent (ours clones).
    void expect_the_stock_backend_serves()
    {
        const std::string name = unique("ldpool");
        virStoragePoolPtr pool = virStoragePoolCreateXML(daemon_->storage(), pool_xml(PoolSpec{name}).c_str(), 0);
        ASSERT_TRUE(pool) << last_error().message;
        EXPECT_EQ(virStoragePoolIsActive(pool), 1);
        const std::string golden = unique("ldgolden"), disk = unique("lddisk");
        virStorageVolPtr g = virStorageVolCreateXML(pool, vol_xml(golden, 8 * MiB).c_str(), 0);
        EXPECT_TRUE(g) << last_error().message;
        virStorageVolPtr v = virStorageVolCreateXML(
            pool,
            vol_xml(disk, 8 * MiB, "<backingStore><path>rbd/" + golden + "</path><format type='raw'/></backingStore>")
                .c_str(),
            0);
        EXPECT_TRUE(v) << last_error().message;
        EXPECT_TRUE(ceph().exists("rbd", disk));
        EXPECT_EQ(ceph().parent("rbd", disk), "") << "a clone: our module served, not the stock one";
        const std::string log = read_file(daemon_->log_path());
        EXPECT_EQ(count(log, "decision for RBD image"), 0) << lines_with(log, "decision for");
        for (auto *vol : {v, g})
            if (vol) {
                virStorageVolDelete(vol, 0);
                virStorageVolFree(vol);
            }
        ceph().remove("rbd", disk);
        ceph().remove("rbd", golden);
        virStoragePoolDestroy(pool);
        virStoragePoolFree(pool);
    }

    std::unique_ptr<PrivateDaemon> daemon_;
    std::string version_;
};

} // namespace

TEST_F(Loader, TheLabsDaemonRunsTheModuleBuiltForItsLibvirt)
{
    const std::string version = version_of(storage());
    ASSERT_FALSE(version.empty());
    const std::string log = read_file(env("LIBVIRTD_LOG"));
    EXPECT_EQ(count(log, "rbdclone: loaded "), 1) << lines_with(log, "rbdclone:");
    EXPECT_NE(log.find("/rbdclone-libvirt-" + version + ".so for libvirt " + version), std::string::npos)
        << lines_with(log, "rbdclone:");
    EXPECT_EQ(count(log, "no rbdclone module matches"), 0) << lines_with(log, "rbdclone:");
}

TEST_F(Loader, WithoutAModuleForTheRunningLibvirtTheStockBackendServesAndTheLogSaysSoOnce)
{
    BackendDir dir({}, true);
    ASSERT_NO_FATAL_FAILURE(start(dir));
    const std::string log = read_file(daemon_->log_path());
    const std::string warning = "rbdclone: no rbdclone module matches libvirt " + version_ + " (";
    ASSERT_EQ(count(log, warning), 1) << lines_with(log, "rbdclone");
    const std::string line = lines_with(log, warning);
    EXPECT_NE(line.find("warning : "), std::string::npos) << line;
    EXPECT_NE(line.find("rbdclone/rbdclone-libvirt-" + version_ + ".so does not exist"), std::string::npos) << line;
    EXPECT_NE(line.find("Build rbdclone for libvirt " + version_), std::string::npos) << line;
    ASSERT_NO_FATAL_FAILURE(expect_the_stock_backend_serves());
}

TEST_F(Loader, AModuleBuiltForAnotherLibvirtIsRefusedAndTheStockBackendServes)
{
    // Start a daemon first to learn the running version, then lay out its trap.
    const std::string running = version_of(storage());
    const std::string other = module_for_another_libvirt(running);
    if (other.empty())
        GTEST_SKIP() << "the build made a module for one libvirt version only";
    BackendDir dir({{"rbdclone-libvirt-" + running + ".so", other}}, true);
    ASSERT_NO_FATAL_FAILURE(start(dir));
    const std::string log = read_file(daemon_->log_path());
    const std::string line = lines_with(log, "rbdclone: no rbdclone module matches libvirt " + version_);
    ASSERT_FALSE(line.empty()) << lines_with(log, "rbdclone");
    // The dynamic loader refuses it: its symbols ask for another LIBVIRT_PRIVATE_ version.
    EXPECT_NE(line.find("LIBVIRT_PRIVATE_"), std::string::npos) << line;
    EXPECT_EQ(count(log, "rbdclone: loaded "), 0) << lines_with(log, "rbdclone");
    ASSERT_NO_FATAL_FAILURE(expect_the_stock_backend_serves());
}

TEST_F(Loader, WithNeitherModuleTheDaemonRunsOnAndRbdPoolsAreRefused)
{
    BackendDir dir({}, false);
    ASSERT_NO_FATAL_FAILURE(start(dir));
    const std::string log = read_file(daemon_->log_path());
    EXPECT_EQ(count(log, "the stock rbd backend did not load either"), 1) << lines_with(log, "rbdclone");
    virStoragePoolPtr pool =
        virStoragePoolCreateXML(daemon_->storage(), pool_xml(PoolSpec{unique("ldnone")}).c_str(), 0);
    EXPECT_FALSE(pool) << "an rbd pool started without any rbd backend";
    if (pool) {
        virStoragePoolDestroy(pool);
        virStoragePoolFree(pool);
    }
    // The storage driver itself is alive: it answers.
    EXPECT_GE(virConnectNumOfStoragePools(daemon_->storage()), 0) << last_error().message;
}
