// The image cache (<rbd:image_cache enabled='yes'/>): a qcow2 file is
// converted once into a hidden entry image of the destination pool and
// every disk made from it is a clone of that entry.  Hits and misses are
// checked by the disks' bytes and parents, a modified file makes a new
// entry, concurrent first requests convert once, eviction spares entries
// with clones, the operator tool lists and purges.  Our module only.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "ceph/encryption.hpp"
#include "lab_client.hpp"
#include "test_files.hpp"

using namespace lab;

namespace {

std::vector<std::string> entries(const std::string &pool)
{
    std::vector<std::string> out;
    for (const auto &n : ceph().list(pool))
        if (n.rfind("rbdclone-cache-", 0) == 0 && n.find(".rbdclone-partial-") == std::string::npos)
            out.push_back(n);
    return out;
}

class ImageCache : public ::testing::Test {
  protected:
    void SetUp() override
    {
        BEYOND_STOCK();
        ASSERT_TRUE(dir_.ok());
        // Entries live in the destination Ceph pool: rbd2 is used by this
        // suite only, so entries can be counted there.
        for (const auto &e : entries("rbd2"))
            purge(e);
    }
    void TearDown() override
    {
        pools_.clear();
        for (auto it = disks_.rbegin(); it != disks_.rend(); ++it)
            ceph().remove("rbd2", *it);
        for (const auto &e : entries("rbd2"))
            purge(e);
    }
    static void purge(const std::string &entry)
    {
        ceph().remove("rbd2", entry);
    }
    Pool &pool(const std::string &policy)
    {
        PoolSpec s{unique("cached")};
        s.ceph_pool = "rbd2";
        s.extra = policy;
        pools_.push_back(std::make_unique<Pool>(s));
        return *pools_.back();
    }
    // The same cached pool on two daemons: P here, and the pool named OTHER_POOL in OTHER (a
    // second libvirtd: another hypervisor, as far as Ceph can tell), both on Ceph pool rbd2 with
    // POLICY; each step asserted.  Call it inside ASSERT_NO_FATAL_FAILURE.
    void pools_on_two_daemons(const std::string &policy, PrivateDaemon &other, Pool *&p, std::string &other_pool)
    {
        ASSERT_TRUE(other.ok()) << "the second libvirtd did not start";
        ASSERT_TRUE(other.define_admin_secret()) << last_error().message;
        p = &pool(policy);
        ASSERT_TRUE(p->ok()) << last_error().message;
        PoolSpec spec{unique("cached-other")};
        spec.ceph_pool = "rbd2";
        spec.extra = policy;
        virStoragePoolPtr op = virStoragePoolCreateXML(other.storage(), pool_xml(spec).c_str(), 0);
        ASSERT_TRUE(op) << last_error().message;
        virStoragePoolFree(op);
        other_pool = spec.name;
    }
    std::string path(const std::string &name) const { return dir_.file(name); }
    // A qcow2 file holding `raw` (kept next to it as NAME.raw).
    std::string qcow2(const std::string &name, const std::string &raw)
    {
        std::ofstream(path(name + ".raw"), std::ios::binary) << raw;
        EXPECT_EQ(system(("qemu-img convert -f raw -O qcow2 '" + path(name + ".raw") + "' '" + path(name) + "'").c_str()),
                  0);
        return path(name);
    }
    // vol-create with the file as <backingStore> (one pool: no cross-pool locking).
    static std::string backing_xml(const std::string &name, const std::string &file)
    {
        return "<volume><name>" + name + "</name><target><format type='raw'/></target>"
               "<backingStore><path>" + file + "</path><format type='qcow2'/></backingStore></volume>";
    }
    Vol disk_from(Pool &p, const std::string &file, unsigned flags = 0)
    {
        const std::string name = unique("disk");
        disks_.push_back(name);
        return Vol(virStorageVolCreateXML(p.get(), backing_xml(name, file).c_str(), flags));
    }
    // n disks from `file` at once, each request on a connection of its own
    // to target(i) = {storage URI, pool name}.  Their names, and the error
    // of each ("" when it succeeded).
    std::pair<std::vector<std::string>, std::vector<std::string>>
    disks_at_once(int n, const std::string &prefix, const std::string &file,
                  const std::function<std::pair<std::string, std::string>(int)> &target)
    {
        std::vector<std::string> names(n), errors(n);
        for (auto &nm : names) {
            nm = unique(prefix);
            disks_.push_back(nm);
        }
        std::vector<std::thread> ts;
        for (int i = 0; i < n; i++)
            ts.emplace_back([&, i] {
                const auto [uri, pool] = target(i);
                virConnectPtr c = virConnectOpen(uri.c_str());
                virStoragePoolPtr cp = c ? virStoragePoolLookupByName(c, pool.c_str()) : nullptr;
                virStorageVolPtr v = cp ? virStorageVolCreateXML(cp, backing_xml(names[i], file).c_str(), 0) : nullptr;
                if (!v)
                    errors[i] = last_error().message.empty() ? "failed" : last_error().message;
                else
                    virStorageVolFree(v);
                if (cp)
                    virStoragePoolFree(cp);
                if (c)
                    virConnectClose(c);
            });
        for (auto &t : ts)
            t.join();
        return {names, errors};
    }
    static std::string name(const Vol &v) { return virStorageVolGetName(v.get()); }
    std::string log_since(size_t from) const
    {
        std::string all = testfiles::read_file(env("LIBVIRTD_LOG"));
        return from < all.size() ? all.substr(from) : "";
    }
    size_t log_size() const { return testfiles::read_file(env("LIBVIRTD_LOG")).size(); }

    TempDir dir_{"cachetest"};
    std::vector<std::unique_ptr<Pool>> pools_;
    std::vector<std::string> disks_;
};

const char kCacheOn[] = "  <rbd:image_cache enabled='yes'/>\n";

} // namespace

TEST_F(ImageCache, FirstRequestConvertsOnceThenEveryOneIsACloneOfTheEntry)
{
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string raw = random_bytes(24 * MiB, 1);
    const std::string file = qcow2("golden.qcow2", raw);
    const size_t mark = log_size();

    Vol first = disk_from(p, file);
    ASSERT_TRUE(first) << last_error().message;
    auto e = entries("rbd2");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(ceph().parent("rbd2", name(first)), "rbd2/" + e[0] + "@rbdclone-cache");
    EXPECT_TRUE(ceph().contents("rbd2", name(first)) == raw) << "the clone's bytes differ from the qcow2's";

    for (int i = 0; i < 3; i++) {
        Vol again = disk_from(p, file);
        ASSERT_TRUE(again) << last_error().message;
        EXPECT_EQ(ceph().parent("rbd2", name(again)), "rbd2/" + e[0] + "@rbdclone-cache");
        EXPECT_TRUE(ceph().contents("rbd2", name(again)) == raw);
    }
    EXPECT_EQ(entries("rbd2").size(), 1u);
    const std::string log = log_since(mark);
    EXPECT_EQ(count(log, ": cache-miss copy+convert+clone ("), 1) << log;
    EXPECT_EQ(count(log, ": cache-hit clone ("), 3) << log;
    EXPECT_EQ(count(log, "image cache: stored "), 1);
    // The entry is not a volume.
    virStoragePoolRefresh(p.get(), 0);
    EXPECT_EQ(Vol(virStorageVolLookupByName(p.get(), e[0].c_str())), nullptr);
    // Its identity and checksum are stored with it.
    rbd_image_t img;
    ASSERT_EQ(rbd_open_read_only(ceph().io("rbd2"), e[0].c_str(), &img, nullptr), 0);
    char buf[1024];
    size_t len = sizeof(buf);
    EXPECT_EQ(rbd_metadata_get(img, "rbdclone.cache.identity", buf, &len), 0);
    EXPECT_NE(std::string(buf).find("ino="), std::string::npos) << buf;
    len = sizeof(buf);
    EXPECT_EQ(rbd_metadata_get(img, "rbdclone.cache.checksum", buf, &len), 0);
    EXPECT_EQ(strlen(buf), 16u);
    rbd_close(img);
}

TEST_F(ImageCache, AModifiedSourceGetsANewEntryNeverStaleBytes)
{
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string v1 = random_bytes(8 * MiB, 2), v2 = random_bytes(8 * MiB, 3);
    const std::string file = qcow2("img.qcow2", v1);
    Vol a = disk_from(p, file);
    ASSERT_TRUE(a) << last_error().message;
    // Same path, same size, new contents.
    ASSERT_EQ(system(("qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' '" + file + "' >/dev/null").c_str()), 0);
    Vol b = disk_from(p, file);
    ASSERT_TRUE(b) << last_error().message;
    EXPECT_EQ(entries("rbd2").size(), 2u);
    EXPECT_NE(ceph().parent("rbd2", name(a)), ceph().parent("rbd2", name(b)));
    std::string expect = v1;
    memset(&expect[1 * MiB], 0x5a, 64 * 1024);
    EXPECT_TRUE(ceph().contents("rbd2", name(b)) == expect) << "stale bytes served from the cache";
    EXPECT_TRUE(ceph().contents("rbd2", name(a)) == v1);
    (void)v2;
}

TEST_F(ImageCache, ConcurrentFirstRequestsConvertOnce)
{
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string raw = random_bytes(32 * MiB, 4);
    const std::string file = qcow2("shared.qcow2", raw);
    const size_t mark = log_size();
    const int n = 8;
    const auto [names, errors] = disks_at_once(n, "conc", file, [&](int) {
        return std::make_pair(env("LIBVIRT_STORAGE_URI"), p.name());
    });
    auto e = entries("rbd2");
    ASSERT_EQ(e.size(), 1u);
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(errors[i], "") << names[i];
        EXPECT_EQ(ceph().parent("rbd2", names[i]), "rbd2/" + e[0] + "@rbdclone-cache") << names[i];
    }
    EXPECT_TRUE(ceph().contents("rbd2", names[n - 1]) == raw);
    const std::string log = log_since(mark);
    EXPECT_EQ(count(log, "image cache: stored "), 1) << "converted more than once";
    EXPECT_EQ(count(log, ": cache-hit clone ("), n - 1);
}

TEST_F(ImageCache, EvictionRemovesTheLeastRecentlyUsedEntryWithoutClonesOnly)
{
    // 8 MiB entries, at most 20 MiB of them.
    Pool &p = pool("  <rbd:image_cache enabled='yes' max_size='20M'/>\n");
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string fa = qcow2("a.qcow2", random_bytes(8 * MiB, 5));
    const std::string fb = qcow2("b.qcow2", random_bytes(8 * MiB, 6));
    const std::string fc = qcow2("c.qcow2", random_bytes(8 * MiB, 7));
    Vol a = disk_from(p, fa);
    ASSERT_TRUE(a) << last_error().message;
    const std::string entry_a = ceph().parent("rbd2", name(a)).substr(5, 47);
    Vol b = disk_from(p, fb);
    ASSERT_TRUE(b) << last_error().message;
    const std::string entry_b = ceph().parent("rbd2", name(b)).substr(5, 47);
    ASSERT_EQ(virStorageVolDelete(b.get(), 0), 0) << last_error().message; // entry b: no clone left
    EXPECT_TRUE(ceph().exists("rbd2", entry_b)) << "the entry outlives its clones (that is the point of a cache)";
    sleep(1); // last use of a is older than c's will be
    Vol c = disk_from(p, fc);
    ASSERT_TRUE(c) << last_error().message;
    // 24 MiB > 20 MiB: b (unused) goes; a has a clone and stays, c too.
    auto e = entries("rbd2");
    EXPECT_EQ(e.size(), 2u);
    EXPECT_FALSE(ceph().exists("rbd2", entry_b));
    EXPECT_TRUE(ceph().exists("rbd2", entry_a));
    EXPECT_TRUE(ceph().contents("rbd2", name(a)) == testfiles::read_file(path("a.qcow2.raw")));
}

TEST_F(ImageCache, MaxSizeCountsWhatEntriesStoreNotTheirVirtualSize)
{
    Pool &p = pool("  <rbd:image_cache enabled='yes' max_size='20M'/>\n");
    ASSERT_TRUE(p.ok()) << last_error().message;
    // Three 64 MiB disks holding 1 MiB each: one 4 MiB object stored per entry.
    std::vector<std::string> sparse;
    for (unsigned i = 0; i < 3; i++) {
        std::string raw(64 * MiB, '\0');
        raw.replace(0, 1 * MiB, random_bytes(1 * MiB, 40 + i));
        Vol d = disk_from(p, qcow2("sparse" + std::to_string(i) + ".qcow2", raw));
        ASSERT_TRUE(d) << last_error().message;
        sparse.push_back(ceph().parent("rbd2", name(d)).substr(5, 47));
        ASSERT_EQ(virStorageVolDelete(d.get(), 0), 0) << last_error().message; // the entry is unused
        sleep(1); // distinct last uses
    }
    EXPECT_EQ(entries("rbd2").size(), 3u) << "3 x 4 MiB stored fit in 20 MiB (3 x 64 MiB virtual would not)";
    // 16 MiB of data more: 28 MiB stored, so the two least recently used go.
    Vol dense = disk_from(p, qcow2("dense.qcow2", random_bytes(16 * MiB, 43)));
    ASSERT_TRUE(dense) << last_error().message;
    EXPECT_EQ(entries("rbd2").size(), 2u);
    EXPECT_FALSE(ceph().exists("rbd2", sparse[0]));
    EXPECT_FALSE(ceph().exists("rbd2", sparse[1]));
    EXPECT_TRUE(ceph().exists("rbd2", sparse[2]));
}

TEST_F(ImageCache, OffByDefaultEveryRequestCopies)
{
    Pool &p = pool("");
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string raw = random_bytes(4 * MiB, 8);
    const std::string file = qcow2("plain.qcow2", raw);
    const size_t mark = log_size();
    Vol a = disk_from(p, file), b = disk_from(p, file);
    ASSERT_TRUE(a && b) << last_error().message;
    EXPECT_TRUE(entries("rbd2").empty());
    EXPECT_EQ(ceph().parent("rbd2", name(a)), "");
    EXPECT_TRUE(ceph().contents("rbd2", name(b)) == raw);
    EXPECT_EQ(count(log_since(mark), "the pool's image cache is off"), 2);
}

TEST_F(ImageCache, ReflinkIsServedByAHitAndRefusedOnAMiss)
{
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string file = qcow2("r.qcow2", random_bytes(4 * MiB, 9));
    // --reflink exists for vol-create-from / vol-clone: the file as a volume of a dir pool.
    DirPool files(dir_.path());
    ASSERT_TRUE(files.ok()) << last_error().message;
    Vol src(virStorageVolLookupByName(files.get(), "r.qcow2"));
    ASSERT_TRUE(src) << last_error().message;
    auto create_from = [&](unsigned flags) {
        const std::string nm = unique("disk");
        disks_.push_back(nm);
        const std::string xml = "<volume><name>" + nm + "</name><target><format type='raw'/></target></volume>";
        return Vol(virStorageVolCreateXMLFrom(p.get(), xml.c_str(), src.get(), flags));
    };
    Vol miss = create_from(VIR_STORAGE_VOL_CREATE_REFLINK);
    EXPECT_FALSE(miss);
    EXPECT_EQ(last_error().code, VIR_ERR_OPERATION_UNSUPPORTED);
    EXPECT_NE(last_error().message.find("not in the pool's image cache yet"), std::string::npos)
        << last_error().message;
    EXPECT_TRUE(entries("rbd2").empty());
    Vol fill = create_from(0);
    ASSERT_TRUE(fill) << last_error().message;
    Vol hit = create_from(VIR_STORAGE_VOL_CREATE_REFLINK);
    ASSERT_TRUE(hit) << last_error().message;
    EXPECT_EQ(ceph().parent("rbd2", name(hit)), ceph().parent("rbd2", name(fill)));
}

TEST_F(ImageCache, OperatorToolListsAndPurgesUnusedEntries)
{
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    // t1: 16 MiB holding 4 MiB of data.
    Vol a = disk_from(p, qcow2("t1.qcow2", random_bytes(4 * MiB, 10) + std::string(12 * MiB, '\0')));
    Vol b = disk_from(p, qcow2("t2.qcow2", random_bytes(4 * MiB, 11)));
    ASSERT_TRUE(a && b) << last_error().message;
    ASSERT_EQ(virStorageVolDelete(b.get(), 0), 0) << last_error().message;
    const std::string tool = RBDCLONE_CACHE_TOOL;
    const std::string list = dir_.file("list.txt");
    ASSERT_EQ(system((tool + " list rbd2 >'" + list + "' 2>&1").c_str()), 0);
    const std::string out = testfiles::read_file(list);
    EXPECT_NE(out.find("t1.qcow2"), std::string::npos) << out;
    EXPECT_NE(out.find(" STORED "), std::string::npos) << out;
    EXPECT_NE(out.find("       16777216        4194304 "), std::string::npos) << "size, then stored: " << out;
    EXPECT_NE(out.find("t2.qcow2"), std::string::npos) << out;
    EXPECT_EQ(count(out, "rbdclone-cache-"), 2) << out;
    ASSERT_EQ(system((tool + " purge rbd2 >'" + list + "' 2>&1").c_str()), 0) << testfiles::read_file(list);
    auto e = entries("rbd2");
    ASSERT_EQ(e.size(), 1u) << testfiles::read_file(list);
    EXPECT_EQ(ceph().parent("rbd2", name(a)), "rbd2/" + e[0] + "@rbdclone-cache");
    EXPECT_TRUE(ceph().contents("rbd2", name(a)) == testfiles::read_file(path("t1.qcow2.raw")));
}

TEST_F(ImageCache, OperatorToolKeepsANamedEntryWithClonesAndRefusesOtherImages)
{
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    const std::string raw = random_bytes(4 * MiB, 15);
    Vol a = disk_from(p, qcow2("k.qcow2", raw));
    ASSERT_TRUE(a) << last_error().message;
    auto e = entries("rbd2");
    ASSERT_EQ(e.size(), 1u);
    const std::string tool = RBDCLONE_CACHE_TOOL;
    const std::string out = dir_.file("out.txt");
    // Named, with a clone: kept (not an error: the operator asked, the cache said no).
    ASSERT_EQ(system((tool + " purge rbd2 " + e[0] + " >'" + out + "' 2>&1").c_str()), 0)
        << testfiles::read_file(out);
    EXPECT_NE(testfiles::read_file(out).find(e[0] + ": kept, it has 1 clone(s)"), std::string::npos)
        << testfiles::read_file(out);
    EXPECT_TRUE(ceph().exists("rbd2", e[0]));
    EXPECT_EQ(ceph().parent("rbd2", name(a)), "rbd2/" + e[0] + "@rbdclone-cache");
    EXPECT_TRUE(ceph().contents("rbd2", name(a)) == raw);
    // The list counts that clone: ENTRY SIZE STORED CLONES ...
    ASSERT_EQ(system((tool + " list rbd2 >'" + out + "' 2>&1").c_str()), 0) << testfiles::read_file(out);
    const std::string listed = testfiles::read_file(out);
    const size_t at = listed.find("\n" + e[0] + " ");
    ASSERT_NE(at, std::string::npos) << listed;
    std::istringstream line(listed.substr(at + 1, listed.find('\n', at + 1) - at - 1));
    std::string entry, size, stored, clones;
    line >> entry >> size >> stored >> clones;
    EXPECT_EQ(size, std::to_string(4 * MiB)) << listed;
    EXPECT_EQ(clones, "1") << listed;
    // A disk is not an entry: never touched, and the exit status says so.
    EXPECT_NE(system((tool + " purge rbd2 '" + name(a) + "' >'" + out + "' 2>&1").c_str()), 0);
    EXPECT_NE(testfiles::read_file(out).find("not an image cache entry"), std::string::npos)
        << testfiles::read_file(out);
    EXPECT_TRUE(ceph().exists("rbd2", name(a)));
    // Its clone gone, the entry goes.
    a.reset();
    ceph().remove("rbd2", disks_.back());
    ASSERT_EQ(system((tool + " purge rbd2 " + e[0] + " >'" + out + "' 2>&1").c_str()), 0)
        << testfiles::read_file(out);
    EXPECT_NE(testfiles::read_file(out).find(e[0] + ": purged"), std::string::npos) << testfiles::read_file(out);
    EXPECT_FALSE(ceph().exists("rbd2", e[0]));
}

TEST_F(ImageCache, FirstRequestsFromTwoDaemonsConvertOnce)
{
    // A second libvirtd (another hypervisor, as far as Ceph can tell) with
    // a pool on the same Ceph pool and the same policy.
    PrivateDaemon other;
    Pool *p;
    std::string other_pool;
    ASSERT_NO_FATAL_FAILURE(pools_on_two_daemons(kCacheOn, other, p, other_pool));

    const std::string raw = random_bytes(32 * MiB, 12);
    const std::string file = qcow2("two.qcow2", raw);
    const size_t mark = log_size();
    const int n = 8;
    // Even requests to the lab's daemon, odd ones to the other.
    const auto [names, errors] = disks_at_once(n, "two", file, [&](int i) {
        return i % 2 == 0 ? std::make_pair(env("LIBVIRT_STORAGE_URI"), p->name())
                          : std::make_pair(other.storage_uri(), other_pool);
    });
    auto e = entries("rbd2");
    ASSERT_EQ(e.size(), 1u);
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(errors[i], "") << names[i];
        EXPECT_EQ(ceph().parent("rbd2", names[i]), "rbd2/" + e[0] + "@rbdclone-cache") << names[i];
    }
    EXPECT_TRUE(ceph().contents("rbd2", names[1]) == raw);
    const int stored = count(log_since(mark), "image cache: stored ") +
                       count(testfiles::read_file(other.log_path()), "image cache: stored ");
    EXPECT_EQ(stored, 1) << "converted more than once across the two daemons";
}

TEST_F(ImageCache, WithDeferredDeleteEntriesWithClonesGoToTheTrashWhenTheCacheIsFull)
{
    Pool &p = pool("  <rbd:clone delete='deferred'/>\n  <rbd:image_cache enabled='yes' max_size='12M'/>\n");
    ASSERT_TRUE(p.ok()) << last_error().message;
    Vol a = disk_from(p, qcow2("d1.qcow2", random_bytes(8 * MiB, 13)));
    ASSERT_TRUE(a) << last_error().message;
    const std::string entry_a = ceph().parent("rbd2", name(a)).substr(5, 47);
    sleep(1); // a's last use is older than b's
    Vol b = disk_from(p, qcow2("d2.qcow2", random_bytes(8 * MiB, 14)));
    ASSERT_TRUE(b) << last_error().message;
    // 16 MiB > 12 MiB and both have a clone: the least recently used goes to the trash.
    EXPECT_FALSE(ceph().exists("rbd2", entry_a));
    std::vector<rbd_trash_image_info_t> t(16);
    size_t n = t.size();
    int r = rbd_trash_list(ceph().io("rbd2"), t.data(), &n);
    bool trashed = false;
    for (int i = 0; i < r; i++)
        trashed |= entry_a == t[i].name;
    if (r > 0)
        rbd_trash_list_cleanup(t.data(), r);
    EXPECT_TRUE(trashed) << entry_a << " is not in the trash";
    EXPECT_TRUE(ceph().contents("rbd2", name(a)) == testfiles::read_file(path("d1.qcow2.raw")));
    // Its last clone gone, the entry is purged from the trash.
    ASSERT_EQ(virStorageVolDelete(a.get(), 0), 0) << last_error().message;
    n = t.size();
    r = rbd_trash_list(ceph().io("rbd2"), t.data(), &n);
    trashed = false;
    for (int i = 0; i < r; i++)
        trashed |= entry_a == t[i].name;
    if (r > 0)
        rbd_trash_list_cleanup(t.data(), r);
    EXPECT_FALSE(trashed) << entry_a << " is still in the trash";
    EXPECT_EQ(entries("rbd2").size(), 1u);
}

// A waiter must never take the entry another request has just made for one
// that lost its snapshot (the false "an interrupted eviction?" error): many
// first requests over two daemons, several rounds, with each clone format.
// An encrypted disk of a qcow2 file, the pool's cache on: with layered encryption (Ceph 18) a
// clone of the plain cache entry with the disk's own key; on Ceph 16 an encrypted copy converted
// through qemu's reader, and no cache entry (it would be cloned, sharing no key). Either way the
// guest reads the file's guest-visible bytes, zeros inside written objects included.
TEST_F(ImageCache, AnEncryptedDiskOfAQcow2File)
{
    VolumeSecret key("cache test passphrase");
    ASSERT_TRUE(key.ok()) << last_error().message;
    Pool &p = pool(kCacheOn);
    ASSERT_TRUE(p.ok()) << last_error().message;
    std::string raw = random_bytes(6 * MiB, 31);
    std::fill_n(raw.begin() + static_cast<long>(2 * MiB), 1 * MiB, '\0');
    const std::string file = qcow2(unique("enc") + ".qcow2", raw);
    const std::string name = unique("encdisk");
    disks_.push_back(name);
    const std::string xml = "<volume><name>" + name + "</name><target><format type='raw'/>"
                            "<encryption format='luks2' engine='librbd'><secret type='passphrase' uuid='" +
                            key.uuid() + "'/></encryption></target><backingStore><path>" + file +
                            "</path><format type='qcow2'/></backingStore></volume>";
    Vol v(virStorageVolCreateXML(p.get(), xml.c_str(), 0));
    ASSERT_TRUE(v) << last_error().message;
    const std::string parent = ceph().parent("rbd2", name);
    if (rbdclone::layered_encryption()) {
        EXPECT_NE(parent.find("rbdclone-cache-"), std::string::npos) << "not a clone of the cache entry: " << parent;
    } else {
        EXPECT_EQ(parent, "");
        EXPECT_TRUE(entries("rbd2").empty()) << "a cache entry was made for a disk that cannot clone it";
    }
    int rc = -1;
    EXPECT_TRUE(download(v.get(), 0, 0, &rc) == raw) << "the guest does not read the file's bytes";
    EXPECT_EQ(rc, 0) << last_error().message;
    EXPECT_EQ(stored_objects("rbd2", name).find(raw.substr(4 * MiB, 4096)), std::string::npos)
        << "the file's bytes in the clear";
}

class ImageCacheWaiters : public ImageCache, public ::testing::WithParamInterface<std::string> {
};

TEST_P(ImageCacheWaiters, NeverSeeAHalfMadeEntry)
{
    if (GetParam() == "2") { // as Clone.ZZCloneFormat2WhenTheClusterRequiresMimic does
        ASSERT_EQ(require_mimic_clients(), "");
    }
    const std::string policy = "  <rbd:clone format='" + GetParam() + "'/>\n" + kCacheOn;
    PrivateDaemon other;
    Pool *p;
    std::string other_pool;
    ASSERT_NO_FATAL_FAILURE(pools_on_two_daemons(policy, other, p, other_pool));

    CpuHogs hogs(4);
    for (int round = 0; round < 3; round++) {
        const std::string raw = random_bytes(16 * MiB, 60 + round);
        const std::string file = qcow2("w" + std::to_string(round) + ".qcow2", raw);
        const size_t mark = log_size(), other_mark = testfiles::read_file(other.log_path()).size();
        const int n = 12;
        const auto [names, errors] = disks_at_once(n, "w" + std::to_string(round), file, [&](int i) {
            return i % 2 == 0 ? std::make_pair(env("LIBVIRT_STORAGE_URI"), p->name())
                              : std::make_pair(other.storage_uri(), other_pool);
        });
        std::set<std::string> parents;
        for (int i = 0; i < n; i++) {
            EXPECT_EQ(errors[i], "") << "round " << round << ", " << names[i];
            if (errors[i].empty())
                parents.insert(ceph().parent("rbd2", names[i]));
        }
        EXPECT_EQ(parents.size(), 1u) << "round " << round;
        EXPECT_TRUE(ceph().contents("rbd2", names[0]) == raw || !errors[0].empty());
        const int stored = count(log_since(mark), "image cache: stored ") +
                           count(testfiles::read_file(other.log_path()).substr(other_mark), "image cache: stored ");
        EXPECT_EQ(stored, 1) << "round " << round << ": converted more than once across the two daemons";
    }
}

INSTANTIATE_TEST_SUITE_P(CloneFormat, ImageCacheWaiters, ::testing::Values("1", "2"),
                         [](const auto &info) { return "Format" + info.param; });
