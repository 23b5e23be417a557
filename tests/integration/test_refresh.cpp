// Pool refresh of a pool of a few hundred images (plugin/core/ceph/image_info.hpp):
// it lists exactly what rbd_list2 lists (but our hidden images), and each
// image's capacity and allocation equal librbd's own answer (rbd_stat, and
// rbd_diff_iterate2 over the object map in fast-diff mode), whatever the
// object size, striping, features, snapshots and parent of the image; while
// other clients create and delete images during the refresh too.
//
// The refresh's values are read from the core itself (the C interface
// libvirtd's glue calls): through libvirt, every vol-info and vol-dumpxml
// asks the image again (refreshVol), so they cannot show what a pool refresh
// found.  Through libvirt the test checks the names.
//
// RBDCLONE_REFRESH_IMAGES (default 300): how many plain images the pool holds.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "lab_client.hpp"
#include "rbdclone/core.h"

using namespace lab;

namespace {

struct Info {
    uint64_t capacity = 0, allocation = 0;
    bool operator==(const Info &o) const { return capacity == o.capacity && allocation == o.allocation; }
};
using Listing = std::map<std::string, Info>;

std::ostream &operator<<(std::ostream &os, const Info &i)
{
    return os << "{capacity " << i.capacity << ", allocation " << i.allocation << "}";
}

bool hidden(const std::string &name)
{
    return name.find(".rbdclone-partial-") != std::string::npos || name.rfind("rbdclone-cache-", 0) == 0;
}

int count_allocated(uint64_t, size_t len, int exists, void *arg)
{
    if (exists)
        *static_cast<uint64_t *>(arg) += len;
    return 0;
}

// librbd's answer, as the stock module computes it.  false: the image is gone.
bool librbd_info(rados_ioctx_t io, const std::string &name, bool fast_diff, Info &out)
{
    rbd_image_t img;
    if (rbd_open_read_only(io, name.c_str(), &img, nullptr) < 0)
        return false;
    rbd_image_info_t st;
    EXPECT_EQ(rbd_stat(img, &st, sizeof(st)), 0);
    out.capacity = st.size;
    out.allocation = st.obj_size * st.num_objs;
    uint64_t features = 0, flags = 0;
    rbd_get_features(img, &features);
    rbd_get_flags(img, &flags);
    if (fast_diff && (features & RBD_FEATURE_FAST_DIFF) && !(flags & RBD_FLAG_FAST_DIFF_INVALID)) {
        out.allocation = 0;
        EXPECT_EQ(rbd_diff_iterate2(img, nullptr, 0, st.size, 0, 1, count_allocated, &out.allocation), 0);
    }
    rbd_close(img);
    return true;
}

std::vector<std::string> rbd_names(rados_ioctx_t io)
{
    std::vector<rbd_image_spec_t> specs(64);
    size_t n = specs.size();
    int r;
    while ((r = rbd_list2(io, specs.data(), &n)) == -ERANGE)
        specs.resize(n);
    EXPECT_EQ(r, 0);
    std::set<std::string> names; // librbd may list an image being created twice
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!hidden(specs[i].name))
            names.insert(specs[i].name);
    if (r == 0)
        rbd_image_spec_list_cleanup(specs.data(), n);
    return {names.begin(), names.end()};
}

// The core's pool on Ceph pool `ceph_pool`, as libvirtd's glue opens it.
class CorePool {
  public:
    explicit CorePool(const std::string &ceph_pool)
    {
        const std::string uuid = "6b1c2d3e-0000-4000-8000-" + std::to_string(100000000000 + getpid());
        const std::string mon = "127.0.0.1:" + env("CEPH_MON_V2_PORT");
        const std::string key = env("CEPH_ADMIN_KEY");
        rbdc_pool_params p{};
        p.uuid = uuid.c_str();
        p.pool_name = "refresh-test";
        p.ceph_pool = ceph_pool.c_str();
        p.mon_host = mon.c_str();
        p.auth_user = "admin";
        p.auth_key = key.c_str();
        rbdc_status st{};
        if (rbdc_pool_connect(&p, &pool_, &st) < 0)
            ADD_FAILURE() << "rbdc_pool_connect: " << st.message;
    }
    ~CorePool()
    {
        if (pool_)
            rbdc_pool_unref(pool_);
    }
    // false (and the error in `why`) when the listing failed.
    bool list(bool fast_diff, Listing &out, std::string &why)
    {
        out.clear();
        rbdc_status st{};
        auto cb = [](const char *name, const rbdc_volume_info *info, void *opaque) -> int {
            auto &listing = *static_cast<Listing *>(opaque);
            if (listing.count(name)) // libvirt refuses a second volume of a name: the refresh fails
                ADD_FAILURE() << name << " listed twice";
            listing[name] = Info{info->capacity, info->allocation};
            return 0;
        };
        int r = rbdc_pool_list_volumes(pool_, fast_diff ? RBDC_ALLOC_FAST_DIFF : RBDC_ALLOC_FROM_OBJECTS, cb, &out,
                                       &st);
        why = st.message;
        return r == 0;
    }
    bool ok() const { return pool_ != nullptr; }

  private:
    rbdc_pool *pool_ = nullptr;
};

class Refresh : public ::testing::Test {
  protected:
    static void SetUpTestSuite()
    {
        pool_ = unique("refresh");
        std::string err = mon_command(R"({"prefix": "osd pool create", "pool": ")" + pool_ + R"(", "pg_num": 8})");
        if (err.empty())
            err = mon_command(R"({"prefix": "osd pool application enable", "pool": ")" + pool_ +
                              R"(", "app": "rbd"})");
        ASSERT_EQ(err, "") << "creating Ceph pool " << pool_;
        rados_ioctx_t io = ceph().io(pool_);
        const char *n_env = getenv("RBDCLONE_REFRESH_IMAGES");
        const int n = n_env && *n_env ? atoi(n_env) : 300;
        const uint64_t plain = RBD_FEATURE_LAYERING;
        const uint64_t full = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP |
                              RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;
        for (int i = 0; i < n; i++) {
            const std::string name = "img-" + std::to_string(i);
            uint64_t size = (1 + i % 9) * 8 * MiB + (i % 5 == 0 ? 4097 : 0);
            int order = i % 3 == 0 ? 20 : i % 3 == 1 ? 22 : 23;
            ASSERT_EQ(rbd_create2(io, name.c_str(), size, i % 4 == 0 ? plain : full, &order), 0) << name;
            if (i % 7 == 0)
                ceph().write(pool_, name, 0, std::string(4096, 'a'));
            if (i % 11 == 0)
                ceph().write(pool_, name, size - 1, "z");
            if (i % 13 == 0)
                ceph().write(pool_, name, size / 2, std::string(3 * MiB, 'm'));
        }
        // Fancy striping: objects that are not ranges of the image.
        int order = 22;
        ASSERT_EQ(rbd_create3(io, "striped", 40 * MiB + 12345, full | RBD_FEATURE_STRIPINGV2, &order, 64 * 1024, 4),
                  0);
        ceph().write(pool_, "striped", 5 * MiB, std::string(300 * 1024, 's'));
        // Objects that existed at a snapshot (EXISTS_CLEAN in the head's map)
        // and one discarded since.
        ceph().create(pool_, "snapped", 32 * MiB, full);
        ceph().write(pool_, "snapped", 0, std::string(9 * MiB, 'x'));
        ceph().snapshot(pool_, "snapped", "s1", true);
        {
            rbd_image_t img;
            ASSERT_EQ(rbd_open(io, "snapped", &img, nullptr), 0);
            EXPECT_EQ(rbd_discard(img, 4 * MiB, 4 * MiB), static_cast<ssize_t>(4 * MiB));
            rbd_close(img);
        }
        // A clone, with a write of its own.
        ASSERT_EQ(rbd_clone(io, "snapped", "s1", io, "clone", full, &order), 0);
        ceph().write(pool_, "clone", 20 * MiB, std::string(4096, 'c'));
        // Hidden images of the module: never listed.
        ceph().create(pool_, "vm.rbdclone-partial-0123456789abcdef", 8 * MiB);
        ceph().create(pool_, "rbdclone-cache-0123456789abcdef0123456789abcdef", 8 * MiB);
        stable_ = rbd_names(io);
        ASSERT_EQ(stable_.size(), static_cast<size_t>(n) + 3);
        for (bool fd : {false, true})
            for (const auto &name : stable_)
                ASSERT_TRUE(librbd_info(io, name, fd, expected_[fd][name])) << name;
    }

    static std::string pool_;
    static std::vector<std::string> stable_;
    static Listing expected_[2]; // [fast_diff]
};

std::string Refresh::pool_;
std::vector<std::string> Refresh::stable_;
Listing Refresh::expected_[2];

} // namespace

TEST_F(Refresh, CoreListsWhatRbdListsWithLibrbdsCapacityAndAllocation)
{
    BEYOND_STOCK(); // the core is ours
    CorePool core(pool_);
    ASSERT_TRUE(core.ok());
    for (bool fd : {false, true}) {
        Listing got;
        std::string why;
        ASSERT_TRUE(core.list(fd, got, why)) << why;
        EXPECT_EQ(got.size(), expected_[fd].size()) << (fd ? "fast-diff" : "default");
        for (const auto &[name, want] : expected_[fd]) {
            auto it = got.find(name);
            if (it == got.end())
                ADD_FAILURE() << name << " not listed (" << (fd ? "fast-diff" : "default") << ")";
            else
                EXPECT_EQ(it->second, want) << name << (fd ? " (fast-diff)" : " (default)");
        }
    }
    // The fast-diff allocations are not the trivial ones: the images differ.
    EXPECT_NE(expected_[1]["img-7"], expected_[0]["img-7"]);
    EXPECT_NE(expected_[1]["striped"], expected_[0]["striped"]);
    EXPECT_NE(expected_[1]["snapped"], expected_[0]["snapped"]);
}

TEST_F(Refresh, ImagesCreatedAndDeletedDuringRefreshesNeitherFailNorConfuseThem)
{
    BEYOND_STOCK();
    CorePool core(pool_);
    ASSERT_TRUE(core.ok());
    PoolSpec spec{unique("refresh-lv")};
    spec.ceph_pool = pool_;
    Pool lv(spec);
    ASSERT_TRUE(lv.ok()) << last_error().message;

    // Two other clients create images and delete them again, all along
    // (librbd lists an image being created twice: the refresh must not fail).
    std::atomic<bool> stop{false};
    std::atomic<int> churned{0};
    auto churn = [&](int who) {
        rados_ioctx_t io = ceph().io(pool_);
        for (int i = 0; !stop; i++) {
            const std::string name = "churn-" + std::to_string(who) + "-" + std::to_string(i % 16);
            int order = 22;
            if (rbd_create2(io, name.c_str(), 16 * MiB, RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                                                            RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF,
                            &order) == 0)
                churned++;
            if (i % 16 == 15)
                for (int k = 0; k < 16; k++)
                    rbd_remove(io, ("churn-" + std::to_string(who) + "-" + std::to_string(k)).c_str());
        }
    };
    std::thread churn1(churn, 1), churn2(churn, 2);
    const std::set<std::string> stable(stable_.begin(), stable_.end());
    // At least 24 rounds, and until the churn has made 10 batches of images.
    for (int round = 0; round < 24 || (churned < 160 && round < 1000); round++) {
        const bool fd = round % 2;
        Listing got;
        std::string why;
        EXPECT_TRUE(core.list(fd, got, why)) << "round " << round << ": " << why;
        for (const auto &name : stable_) {
            if (!got.count(name)) {
                ADD_FAILURE() << "round " << round << ": " << name << " not listed";
            } else {
                EXPECT_EQ(got[name], expected_[fd][name]) << name << ", round " << round;
            }
        }
        for (const auto &[name, info] : got) {
            if (!stable.count(name)) {
                EXPECT_EQ(name.rfind("churn-", 0), 0u) << "listed " << name << ", which nobody made";
            }
        }

        EXPECT_EQ(virStoragePoolRefresh(lv.get(), 0), 0) << "round " << round << ": " << last_error().message;
        virStorageVolPtr *vols = nullptr;
        int n = virStoragePoolListAllVolumes(lv.get(), &vols, 0);
        ASSERT_GE(n, 0) << last_error().message;
        std::set<std::string> names;
        for (int i = 0; i < n; i++) {
            names.insert(virStorageVolGetName(vols[i]));
            virStorageVolFree(vols[i]);
        }
        free(vols);
        for (const auto &name : stable_)
            EXPECT_TRUE(names.count(name)) << "round " << round << ": libvirt does not list " << name;
        for (const auto &name : names) {
            if (!stable.count(name)) {
                EXPECT_EQ(name.rfind("churn-", 0), 0u) << "libvirt lists " << name << ", which nobody made";
            }
        }
    }
    stop = true;
    churn1.join();
    churn2.join();
    EXPECT_GE(churned.load(), 160) << "the churn did not run alongside the refreshes";
}

TEST_F(Refresh, LibvirtListsExactlyWhatRbdLists)
{
    for (bool fd : {false, true}) {
        PoolSpec spec{unique("refresh-names")};
        spec.ceph_pool = pool_;
        if (fd)
            spec.extra = "<refresh><volume allocation='default'/></refresh>";
        Pool lv(spec);
        ASSERT_TRUE(lv.ok()) << last_error().message;
        ASSERT_EQ(virStoragePoolRefresh(lv.get(), 0), 0) << last_error().message;
        auto want = rbd_names(ceph().io(pool_));
        std::set<std::string> expect;
        for (const auto &n : want)
            if (n.rfind("churn-", 0) != 0)
                expect.insert(n);
        virStorageVolPtr *vols = nullptr;
        int n = virStoragePoolListAllVolumes(lv.get(), &vols, 0);
        ASSERT_GE(n, 0) << last_error().message;
        std::set<std::string> got;
        for (int i = 0; i < n; i++) {
            std::string name = virStorageVolGetName(vols[i]);
            if (name.rfind("churn-", 0) != 0)
                got.insert(name);
            virStorageVolFree(vols[i]);
        }
        free(vols);
        EXPECT_EQ(got, expect) << (fd ? "fast-diff pool" : "default pool");
    }
}
