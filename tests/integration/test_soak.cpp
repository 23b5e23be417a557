// Soak: two libvirtds with our module on one cluster, the CPUs kept busy by
// spinning processes, several rounds of simultaneous requests of every kind
// that can run concurrently, split across the two daemons:
//   - image-cache first requests (one miss, the rest hits) for a new qcow2
//     file each round, through <backingStore> (one pool lock);
//   - <backingStore> clones of one RBD image across pools (the safe form of
//     a cross-pool create: vol-create-from would take libvirt's two pool
//     locks in opposite orders, see the README);
//   - vol-clone inside one pool;
//   - copies of a raw file through <backingStore> into a pool without cache;
//   - deletes of the disks of the round before.
// Every request must succeed, no connection may drop, both daemons must be
// the same processes at the end, each file is converted once across both
// daemons, and once every disk is deleted no partial image and no snapshot
// of ours is left.  Our module only.
//
// RBDCLONE_SOAK_ROUNDS (default 4) and RBDCLONE_SOAK_HOGS (default 4) make
// a longer or heavier variant (bench/soak-bench.sh).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "lab_client.hpp"
#include "test_files.hpp"

using namespace lab;

namespace {

int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

// One request: on a connection of its own to a daemon, against a pool.
struct Request {
    std::string what;  // for messages
    std::string uri;
    std::string pool;
    std::function<bool(virConnectPtr, virStoragePoolPtr)> run; // false: failed (last_error() says why)
};

struct Outcome {
    std::string error; // "" = success
    int code = 0;
};

Outcome perform(const Request &rq)
{
    Outcome o;
    virConnectPtr c = virConnectOpen(rq.uri.c_str());
    virStoragePoolPtr p = c ? virStoragePoolLookupByName(c, rq.pool.c_str()) : nullptr;
    if (!p || !rq.run(c, p)) {
        LastError e = last_error();
        o.error = e.message.empty() ? "failed without a message" : e.message;
        o.code = e.code;
    }
    if (p)
        virStoragePoolFree(p);
    if (c)
        virConnectClose(c);
    return o;
}

bool is_dropped_connection(const Outcome &o)
{
    return o.code == VIR_ERR_SYSTEM_ERROR || o.code == VIR_ERR_RPC || o.code == VIR_ERR_NO_CONNECT ||
           o.error.find("End of file") != std::string::npos ||
           o.error.find("Connection refused") != std::string::npos ||
           o.error.find("Cannot recv data") != std::string::npos;
}

// When the process started (field 22 of /proc/PID/stat), "" when it is
// gone: the same pid with the same start is the same process.
std::string process_start(pid_t pid)
{
    std::string stat = testfiles::read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t p = stat.rfind(')');
    if (p == std::string::npos)
        return "";
    std::istringstream in(stat.substr(p + 2));
    std::string field;
    for (int i = 3; i <= 22 && in >> field; i++) {
    }
    return field;
}

std::string backing_xml(const std::string &name, const std::string &path, const std::string &format)
{
    return "<volume><name>" + name + "</name><target><format type='raw'/></target><backingStore><path>" + path +
           "</path><format type='" + format + "'/></backingStore></volume>";
}

class Soak : public ::testing::Test {
  protected:
    void SetUp() override
    {
        BEYOND_STOCK();
        ASSERT_TRUE(dir_.ok());
    }
    void TearDown() override
    {
        for (auto it = disks_.rbegin(); it != disks_.rend(); ++it)
            ceph().remove(it->first, it->second);
        for (const auto &e : entries_)
            ceph().remove("rbd2", e);
        if (!golden_.empty())
            ceph().remove("rbd", golden_);
    }
    TempDir dir_{"soak"};
    std::string golden_;
    std::vector<std::pair<std::string, std::string>> disks_; // (ceph pool, image)
    std::set<std::string> entries_;
};

} // namespace

TEST_F(Soak, TwoDaemonsUnderLoadServeEveryConcurrentRequestAndStayUp)
{
    const int rounds = env_int("RBDCLONE_SOAK_ROUNDS", 4);
    const int hog_count = env_int("RBDCLONE_SOAK_HOGS", 4);
    const auto request_limit = std::chrono::seconds(env_int("RBDCLONE_SOAK_REQUEST_LIMIT", 240));

    PrivateDaemon other;
    ASSERT_TRUE(other.ok()) << "the second libvirtd did not start";
    ASSERT_TRUE(other.define_admin_secret()) << last_error().message;
    const pid_t lab_pid = std::stoi(env("LIBVIRTD_PID"));
    const pid_t other_pid = other.pid();
    ASSERT_GT(other_pid, 0);
    const std::string lab_start = process_start(lab_pid), other_start = process_start(other_pid);
    ASSERT_NE(lab_start, "");
    ASSERT_NE(other_start, "");

    golden_ = unique("soak-golden");
    const std::string golden_bytes = random_bytes(8 * MiB, 77);
    ceph().create("rbd", golden_, 16 * MiB);
    ceph().write("rbd", golden_, 0, golden_bytes);

    // The same three pools in both daemons: images (Ceph pool rbd), a
    // cached pool and a plain one (both on rbd2).
    struct Target {
        std::string uri;
        virConnectPtr conn;
        std::string log;
    };
    const std::vector<Target> daemons = {{env("LIBVIRT_STORAGE_URI"), storage(), env("LIBVIRTD_LOG")},
                                         {other.storage_uri(), other.storage(), other.log_path()}};
    const std::string images = unique("soak-images"), cached = unique("soak-cached"), plain = unique("soak-plain");
    std::vector<virStoragePoolPtr> pools;
    for (const auto &d : daemons) {
        for (auto [name, ceph_pool, extra] : {std::tuple{images, "rbd", ""},
                                              std::tuple{cached, "rbd2", "  <rbd:image_cache enabled='yes'/>\n"},
                                              std::tuple{plain, "rbd2", ""}}) {
            PoolSpec s{name};
            s.ceph_pool = ceph_pool;
            s.extra = extra;
            virStoragePoolPtr p = virStoragePoolCreateXML(d.conn, pool_xml(s).c_str(), 0);
            ASSERT_TRUE(p) << last_error().message;
            pools.push_back(p);
        }
    }
    struct PoolsGone {
        std::vector<virStoragePoolPtr> &p;
        ~PoolsGone()
        {
            for (auto *x : p) {
                virStoragePoolDestroy(x);
                virStoragePoolFree(x);
            }
        }
    } pools_gone{pools};

    const std::string raw_file = dir_.file("plain.raw");
    std::ofstream(raw_file, std::ios::binary) << random_bytes(6 * MiB, 78);

    std::vector<size_t> log_mark;
    for (const auto &d : daemons)
        log_mark.push_back(testfiles::read_file(d.log).size());

    CpuHogs hogs(hog_count);
    ASSERT_EQ(static_cast<int>(hogs.size()), hog_count);

    std::vector<std::string> files;
    std::vector<std::pair<std::string, std::string>> previous; // disks of the round before: (pool name, vol)
    int requests = 0, failures = 0;
    for (int round = 0; round < rounds; round++) {
        const std::string raw = random_bytes(12 * MiB, 100 + round);
        const std::string file = dir_.file("r" + std::to_string(round) + ".qcow2");
        std::ofstream(file + ".raw", std::ios::binary) << raw;
        ASSERT_EQ(system(("qemu-img convert -f raw -O qcow2 '" + file + ".raw' '" + file + "'").c_str()), 0);
        files.push_back(file);

        struct Made {
            std::string pool, ceph_pool, vol;
            bool cache;
        };
        std::vector<Request> batch;
        std::vector<Made> made;
        auto create = [&](const std::string &what, int daemon, const std::string &pool, const std::string &ceph_pool,
                          const std::string &xml_path, const std::string &format) {
            const std::string nm = unique("soak-r" + std::to_string(round));
            disks_.emplace_back(ceph_pool, nm);
            made.push_back({pool, ceph_pool, nm, xml_path == file});
            batch.push_back({what + " " + nm + " on daemon " + std::to_string(daemon), daemons[daemon].uri, pool,
                             [x = backing_xml(nm, xml_path, format)](virConnectPtr, virStoragePoolPtr p) {
                                 virStorageVolPtr v = virStorageVolCreateXML(p, x.c_str(), 0);
                                 if (v)
                                     virStorageVolFree(v);
                                 return v != nullptr;
                             }});
        };
        for (int i = 0; i < 6; i++) // one miss, five hits, across both daemons
            create("image cache request", i % 2, cached, "rbd2", file, "qcow2");
        for (int i = 0; i < 4; i++) // across pools, one pool lock
            create("backingStore clone", (i + 1) % 2, cached, "rbd2", "rbd/" + golden_, "raw");
        for (int i = 0; i < 2; i++)
            create("copy of a raw file", i % 2, plain, "rbd2", raw_file, "raw");
        for (int i = 0; i < 2; i++) { // vol-clone inside the images pool
            const std::string nm = unique("soak-r" + std::to_string(round) + "-vc");
            disks_.emplace_back("rbd", nm);
            made.push_back({images, "rbd", nm, false});
            batch.push_back({"vol-clone " + nm + " on daemon " + std::to_string(i % 2), daemons[i % 2].uri, images,
                             [nm, src = golden_](virConnectPtr, virStoragePoolPtr p) {
                                 virStorageVolPtr s = virStorageVolLookupByName(p, src.c_str());
                                 if (!s)
                                     return false;
                                 const std::string x = "<volume><name>" + nm + "</name><target><format type='raw'/>"
                                                       "</target></volume>";
                                 virStorageVolPtr v = virStorageVolCreateXMLFrom(p, x.c_str(), s, 0);
                                 virStorageVolFree(s);
                                 if (v)
                                     virStorageVolFree(v);
                                 return v != nullptr;
                             }});
        }
        for (size_t i = 0; i < previous.size(); i++) { // the round before's disks
            const auto [pool, vol] = previous[i];
            batch.push_back({"vol-delete " + vol + " on daemon " + std::to_string(i % 2), daemons[i % 2].uri, pool,
                             [vol](virConnectPtr, virStoragePoolPtr p) {
                                 virStorageVolPtr v = virStorageVolLookupByName(p, vol.c_str());
                                 if (!v)
                                     return false;
                                 int r = virStorageVolDelete(v, 0);
                                 virStorageVolFree(v);
                                 return r == 0;
                             }});
        }

        // Each daemon sees the other's disks (a refresh is refused while
        // requests run in the pool, so before the batch).
        for (auto *p : pools)
            ASSERT_EQ(virStoragePoolRefresh(p, 0), 0) << last_error().message;

        // All at once; a request that does not come back is a hang.
        std::vector<std::future<Outcome>> futures;
        for (const auto &rq : batch)
            futures.push_back(std::async(std::launch::async, perform, rq));
        const auto deadline = std::chrono::steady_clock::now() + request_limit;
        std::vector<bool> ok(batch.size());
        for (size_t i = 0; i < batch.size(); i++) {
            if (futures[i].wait_until(deadline) != std::future_status::ready) {
                ADD_FAILURE() << "round " << round << ": " << batch[i].what << " hung for "
                              << request_limit.count() << " s";
                fflush(nullptr);
                _exit(1); // the hung request's thread cannot be joined
            }
            Outcome o = futures[i].get();
            requests++;
            ok[i] = o.error.empty();
            if (!ok[i]) {
                failures++;
                ADD_FAILURE() << "round " << round << ": " << batch[i].what << " failed (code " << o.code
                              << "): " << o.error
                              << (is_dropped_connection(o) ? "  <-- the connection to libvirtd dropped" : "");
            }
        }
        ASSERT_EQ(kill(lab_pid, 0), 0) << "the lab's libvirtd died in round " << round;
        ASSERT_EQ(kill(other_pid, 0), 0) << "the second libvirtd died in round " << round;

        // This round's cache disks share one entry, which holds the file's bytes.
        std::set<std::string> round_entries;
        bool checked = false;
        for (size_t i = 0; i < made.size(); i++) {
            if (!made[i].cache || !ok[i])
                continue;
            const std::string parent = ceph().parent("rbd2", made[i].vol);
            EXPECT_EQ(parent.rfind("rbd2/rbdclone-cache-", 0), 0u) << made[i].vol << " has parent '" << parent << "'";
            if (parent.rfind("rbd2/rbdclone-cache-", 0) == 0)
                round_entries.insert(parent.substr(5, parent.find('@') - 5));
            if (!checked) {
                EXPECT_TRUE(ceph().contents("rbd2", made[i].vol) == raw) << made[i].vol << ": not the file's bytes";
                checked = true;
            }
        }
        EXPECT_EQ(round_entries.size(), 1u) << "round " << round << ": the cache requests do not share one entry";
        entries_.insert(round_entries.begin(), round_entries.end());
        previous.clear();
        for (const auto &m : made)
            previous.emplace_back(m.pool, m.vol);
    }
    std::cout << "[ soak     ] " << rounds << " rounds, " << requests << " requests, " << failures << " failed, "
              << hogs.size() << " CPU hogs" << std::endl;

    // Both daemons are the very processes they were, and still serve.
    EXPECT_EQ(process_start(lab_pid), lab_start) << "the lab's libvirtd is not the process it was";
    EXPECT_EQ(process_start(other_pid), other_start) << "the second libvirtd is not the process it was";
    for (const auto &d : daemons)
        EXPECT_EQ(virConnectIsAlive(d.conn), 1) << d.uri;

    // Each file converted once across both daemons.
    std::string logs;
    for (size_t i = 0; i < daemons.size(); i++) {
        std::string all = testfiles::read_file(daemons[i].log);
        logs += all.substr(std::min(log_mark[i], all.size()));
    }
    for (const auto &f : files)
        EXPECT_EQ(count(logs, "image cache: stored '" + f + "'"), 1) << f << " was not converted exactly once";

    // Delete what is left; then nothing hidden remains.
    for (const auto &[pool, vol] : previous) {
        virStoragePoolPtr p = virStoragePoolLookupByName(storage(), pool.c_str());
        ASSERT_TRUE(p);
        EXPECT_EQ(virStoragePoolRefresh(p, 0), 0) << last_error().message;
        virStorageVolPtr v = virStorageVolLookupByName(p, vol.c_str());
        EXPECT_TRUE(v) << vol << ": " << last_error().message;
        if (v) {
            EXPECT_EQ(virStorageVolDelete(v, 0), 0) << vol << ": " << last_error().message;
            virStorageVolFree(v);
        }
        virStoragePoolFree(p);
    }
    for (const char *cp : {"rbd", "rbd2"})
        for (const auto &img : ceph().list(cp))
            EXPECT_EQ(img.find(".rbdclone-partial-"), std::string::npos) << "left behind: " << cp << "/" << img;
    for (const auto &s : ceph().snapshots("rbd", golden_))
        EXPECT_NE(s.rfind("rbdclone-", 0), 0u) << "snapshot left on the source: " << s;
    for (const auto &[cp, img] : disks_)
        EXPECT_FALSE(ceph().exists(cp, img)) << cp << "/" << img << " outlived its vol-delete";
}
