// Clone benchmark: libvirt's stock rbd module against ours, side by side on one
// Ceph cluster (two libvirtds, see bench/run-bench.sh).  Every timed call is
// virStorageVolCreateXMLFrom() on one long-lived connection per daemon; the
// sources are made with librbd; the clones (but the first one of each
// variant, see libvirt_clone) are deleted between calls, outside
// the timed region.  The variants of a case are interleaved call by call, the
// order rotating each round (A B C, B C A, ...), so that drift of the cluster
// or load from elsewhere on the host hits them alike.  A "floor" variant times
// librbd's rbd_clone3 alone, in process: what any clone through libvirt costs
// at least.
//
// Environment (lab.env of the lab running our module, plus):
//   BENCH_STOCK_URI   storage URI of the libvirtd running the stock module
//   BENCH_MON_ASOK    the monitor's admin socket (to make snapshot setup fast)
//   BENCH_REPS        timed repetitions per variant (default 15)
//   BENCH_WARMUP      untimed warm-up calls per variant (default 2)
//   BENCH_VERBOSE     1: print every sample
// Arguments: the file the result table is written to (it is also printed), and
// optionally a directory for rows 1-3 of the floor table (bench/run-all.sh):
// files NN.row, "NN|work|ours|baseline|ratio|target|result|note".
#include "lab_client.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

constexpr uint64_t MiB = 1024 * 1024;
constexpr uint64_t GiB = 1024 * MiB;

int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? std::atoi(v) : dflt;
}

const int kReps = env_int("BENCH_REPS", 15);
const int kWarmup = env_int("BENCH_WARMUP", 2);
const bool kVerbose = env_int("BENCH_VERBOSE", 0) != 0; // print every sample

std::string fmt(const char *f, double x)
{
    char buf[64];
    snprintf(buf, sizeof buf, f, x);
    return buf;
}

void note(const std::string &s)
{
    std::cerr << "clone-bench: " << s << std::endl;
}

std::string libvirt_error()
{
    std::string m = lab::last_error().message;
    return m.empty() ? "unknown libvirt error" : m;
}

void ignore_errors(void *, virErrorPtr) {}

// One libvirtd: a connection and two transient pools on Ceph pools rbd and rbd2.
struct Daemon {
    std::string name;
    virConnectPtr conn = nullptr;
    virStoragePoolPtr rbd = nullptr;
    virStoragePoolPtr rbd2 = nullptr;

    Daemon(std::string n, const std::string &uri) : name(std::move(n))
    {
        conn = virConnectOpen(uri.c_str());
        if (!conn)
            throw std::runtime_error("cannot connect to " + name + " libvirtd at " + uri + ": " +
                                     libvirt_error());
        rbd = make_pool("bench-rbd", "rbd");
        rbd2 = make_pool("bench-rbd2", "rbd2");
    }
    ~Daemon()
    {
        for (virStoragePoolPtr p : {rbd, rbd2}) {
            if (p) {
                virStoragePoolDestroy(p);
                virStoragePoolFree(p);
            }
        }
        if (conn)
            virConnectClose(conn);
    }
    Daemon(const Daemon &) = delete;
    Daemon &operator=(const Daemon &) = delete;

    virStoragePoolPtr make_pool(const std::string &pool_name, const std::string &ceph_pool)
    {
        lab::PoolSpec spec(pool_name);
        spec.ceph_pool = ceph_pool;
        virStoragePoolPtr p = virStoragePoolCreateXML(conn, lab::pool_xml(spec).c_str(), 0);
        if (!p)
            throw std::runtime_error(name + ": cannot start pool " + pool_name + ": " + libvirt_error());
        return p;
    }
    void refresh()
    {
        for (virStoragePoolPtr p : {rbd, rbd2})
            if (virStoragePoolRefresh(p, 0) < 0)
                throw std::runtime_error(name + ": pool refresh failed: " + libvirt_error());
    }
    virStorageVolPtr vol(const std::string &image)
    {
        virStorageVolPtr v = virStorageVolLookupByName(rbd, image.c_str());
        if (!v)
            throw std::runtime_error(name + ": no volume " + image + " in bench-rbd: " + libvirt_error());
        return v;
    }
};

// --------------------------------------------------------------------------------------------
// Setup through librbd.

// Runs a shell command; its output (stdout) is returned.
std::string run(const std::string &cmd)
{
    std::unique_ptr<FILE, int (*)(FILE *)> p(popen(cmd.c_str(), "r"), pclose);
    if (!p)
        throw std::runtime_error("cannot run: " + cmd);
    std::string out;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p.get())) > 0)
        out.append(buf, n);
    int rc = pclose(p.release());
    if (rc != 0)
        throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd);
    return out;
}

// While it lives, the monitor proposes map changes every 0.05 s instead of
// batching them for paxos_propose_interval (1 s): back-to-back snapshot
// creation costs ~0.1 s instead of ~1 s.  The old value comes back on exit.
class FastPaxos {
  public:
    FastPaxos()
    {
        const char *asok = getenv("BENCH_MON_ASOK");
        if (!asok || !*asok) {
            note("BENCH_MON_ASOK unset: snapshots are created at the monitor's normal pace");
            return;
        }
        base_ = std::string("timeout 30 ceph --admin-daemon '") + asok + "' config ";
        // {"paxos_propose_interval": "1.000000"}
        std::string out = run(base_ + "get paxos_propose_interval");
        size_t colon = out.find(':');
        size_t q1 = out.find('"', colon == std::string::npos ? 0 : colon);
        size_t q2 = q1 == std::string::npos ? q1 : out.find('"', q1 + 1);
        if (q2 == std::string::npos)
            throw std::runtime_error("cannot parse paxos_propose_interval from: " + out);
        old_ = out.substr(q1 + 1, q2 - q1 - 1);
        run(base_ + "set paxos_propose_interval 0.05 >/dev/null");
    }
    ~FastPaxos()
    {
        if (old_.empty())
            return;
        try {
            run(base_ + "set paxos_propose_interval " + old_ + " >/dev/null");
        } catch (const std::exception &e) {
            note(std::string("WARNING: could not restore paxos_propose_interval: ") + e.what());
        }
    }
    FastPaxos(const FastPaxos &) = delete;
    FastPaxos &operator=(const FastPaxos &) = delete;

  private:
    std::string base_, old_;
};

// A sparse image of `size` bytes with the same 64 MiB of non-zero data in
// four 16 MiB extents (at 0, 256 MiB, 512 MiB and 1 GiB - 16 MiB), whatever
// the size, and `snapshots` user snapshots taken after the data (user-1 ...
// user-N), the last one protected if `protect_last`.
void make_source(const std::string &image, uint64_t size, int snapshots, bool protect_last = false)
{
    static const std::string chunk = [] {
        std::string s(16 * MiB, '\0');
        uint32_t x = 2463534242u; // xorshift: data that no layer can shortcut
        for (auto &c : s) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            c = static_cast<char>(x | 1);
        }
        return s;
    }();
    lab::Ceph &ceph = lab::ceph();
    ceph.create("rbd", image, size);
    for (uint64_t off : {uint64_t{0}, 256 * MiB, 512 * MiB, GiB - 16 * MiB})
        ceph.write("rbd", image, off, chunk);
    for (int i = 1; i <= snapshots; i++)
        ceph.snapshot("rbd", image, "user-" + std::to_string(i), protect_last && i == snapshots);
}

// --------------------------------------------------------------------------------------------
// Measurement.

struct Stats {
    std::string error; // non-empty: the clone failed (no times)
    std::vector<double> ms;

    bool ok() const { return error.empty() && !ms.empty(); }
    double quantile_nearest_rank(double q) const
    {
        std::vector<double> s = ms;
        std::sort(s.begin(), s.end());
        size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(s.size())));
        return s[std::clamp<size_t>(rank, 1, s.size()) - 1];
    }
    double median() const
    {
        std::vector<double> s = ms;
        std::sort(s.begin(), s.end());
        size_t n = s.size();
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
    double p90() const { return quantile_nearest_rank(0.9); }
};

// Something to clone, timed: create(name) returns "" or an error message;
// destroy(name), untimed, removes what create made.
struct Variant {
    std::string label;
    std::function<std::string(const std::string &)> create;
    std::function<void(const std::string &)> destroy;
    Stats stats;
};

// Through libvirt: virStorageVolCreateXMLFrom(dst, <volume name capacity raw>, src, 0).
Variant libvirt_clone(const std::string &label, virStoragePoolPtr dst, virStorageVolPtr src, uint64_t capacity)
{
    Variant v;
    v.label = label;
    v.create = [=](const std::string &name) -> std::string {
        std::string xml = lab::vol_xml(name, capacity);
        virStorageVolPtr vol = virStorageVolCreateXMLFrom(dst, xml.c_str(), src, 0);
        if (!vol)
            return libvirt_error();
        virStorageVolFree(vol);
        return "";
    };
    // The first clone stays, as the disks of a golden image live on in a
    // cloud: our module removes its snapshot with the last clone, and a
    // lone clone created and deleted in turn would time a new snapshot
    // (the monitor's ~1 s) on every call instead of the clone.
    auto kept_one = std::make_shared<bool>(false);
    v.destroy = [=](const std::string &name) {
        if (!*kept_one) {
            *kept_one = true;
            return;
        }
        virStorageVolPtr vol = virStorageVolLookupByName(dst, name.c_str());
        int r = vol ? virStorageVolDelete(vol, 0) : -1;
        if (vol)
            virStorageVolFree(vol);
        if (r < 0)
            throw std::runtime_error(label + ": cannot delete clone " + name + ": " + libvirt_error());
    };
    return v;
}

// The floor: librbd's rbd_clone3 in this process, from an existing protected
// snapshot, in the same Ceph pool, with the cluster's default clone format and
// features (what any clone through libvirt pays at least).
Variant librbd_clone(const std::string &label, const std::string &image, const std::string &snap)
{
    Variant v;
    v.label = label;
    v.create = [=](const std::string &name) -> std::string {
        rados_ioctx_t io = lab::ceph().io("rbd");
        rbd_image_options_t opts;
        rbd_image_options_create(&opts);
        int r = rbd_clone3(io, image.c_str(), snap.c_str(), io, name.c_str(), opts);
        rbd_image_options_destroy(opts);
        return r < 0 ? std::string("rbd_clone3: ") + strerror(-r) : "";
    };
    v.destroy = [=](const std::string &name) {
        int r = rbd_remove(lab::ceph().io("rbd"), name.c_str());
        if (r < 0)
            throw std::runtime_error(label + ": cannot remove " + name + ": " + strerror(-r));
    };
    return v;
}

// Runs each variant kWarmup + kReps times, interleaved (the order rotates by
// one each round); only create() is timed.  A variant that fails once is
// recorded as failing and not retried.
void measure(const std::vector<Variant *> &variants, const std::string &what)
{
    static int serial = 0;
    note("measuring " + what);
    for (int rep = 0; rep < kWarmup + kReps; rep++) {
        std::vector<Variant *> order = variants;
        std::rotate(order.begin(), order.begin() + rep % order.size(), order.end());
        for (Variant *v : order) {
            if (!v->stats.error.empty())
                continue;
            std::string name = "bench-clone-" + std::to_string(++serial);
            auto t0 = std::chrono::steady_clock::now();
            std::string err = v->create(name);
            auto t1 = std::chrono::steady_clock::now();
            if (!err.empty()) {
                v->stats.error = err;
                v->stats.ms.clear();
                note("  " + v->label + ": fails: " + err);
                continue;
            }
            if (rep >= kWarmup)
                v->stats.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            v->destroy(name);
        }
    }
    for (Variant *v : variants)
        if (v->stats.ok()) {
            std::string line = "  " + v->label + ": median " + fmt("%.1f", v->stats.median()) + " ms, p90 " +
                               fmt("%.1f", v->stats.p90()) + " ms";
            if (kVerbose) {
                line += " [";
                for (double x : v->stats.ms)
                    line += " " + fmt("%.1f", x);
                line += " ]";
            }
            note(line);
        }
}

// --------------------------------------------------------------------------------------------
// The table.

struct Goal {
    enum Kind { None, AtMost, Within } kind = None;
    double value = 0; // AtMost: ratio <= value; Within: |ratio - 1| <= value
};

struct Row {
    std::string name;
    std::string a_label;
    const Stats *a;
    std::string b_label;
    const Stats *b;
    Goal goal;
};

std::string cell(const std::string &label, const Stats &s)
{
    if (!s.ok())
        return label + " fails";
    return label + " " + fmt("%.1f", s.median()) + " / " + fmt("%.1f", s.p90());
}

std::string pad(const std::string &s, size_t w)
{
    return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

std::string loadavg()
{
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return a + " " + b + " " + c;
}

std::string table(const std::vector<Row> &rows, const std::vector<std::string> &notes,
                  const std::string &load_before)
{
    std::string out;
    out += "RBD clone benchmark: virStorageVolCreateXMLFrom, one connection per libvirtd, one Ceph lab\n";
    out += "times in ms as median / p90 of " + std::to_string(kReps) + " calls after " +
           std::to_string(kWarmup) + " warm-ups (variants of a case interleaved); ratio = B median / A median\n";
    out += "floor = librbd rbd_clone3 in the benchmark process from a protected snapshot (no libvirt)\n";
    out += "load average before: " + load_before + ", after: " + loadavg() + " (" +
           std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs)\n\n";
    const size_t wc = 40, wa = 24, wb = 24, wr = 7, wg = 14;
    out += pad("case", wc) + pad("A", wa) + pad("B", wb) + pad("ratio", wr) + pad("target", wg) + "result\n";
    for (const Row &r : rows) {
        std::string ratio = "-", goal = "-", result;
        if (r.goal.kind == Goal::AtMost)
            goal = "<= " + fmt("%.2f", r.goal.value);
        else if (r.goal.kind == Goal::Within)
            goal = fmt("%.2f", 1 - r.goal.value) + ".." + fmt("%.2f", 1 + r.goal.value);
        if (r.a->ok() && r.b->ok()) {
            double x = r.b->median() / r.a->median();
            ratio = fmt("%.2f", x);
            bool pass = r.goal.kind == Goal::AtMost   ? x <= r.goal.value
                        : r.goal.kind == Goal::Within ? std::fabs(x - 1) <= r.goal.value
                                                      : true;
            if (r.goal.kind != Goal::None)
                result = pass ? "MET" : "MISSED";
        } else {
            result = !r.a->ok() && !r.b->ok() ? "both fail" : !r.a->ok() ? "A fails" : "B fails";
        }
        out += pad(r.name, wc) + pad(cell(r.a_label, *r.a), wa) + pad(cell(r.b_label, *r.b), wb) +
               pad(ratio, wr) + pad(goal, wg) + result + "\n";
    }
    if (!notes.empty()) {
        out += "\n";
        for (const auto &n : notes)
            out += n + "\n";
    }
    return out;
}

std::string ms_cell(const std::string &label, const Stats &s)
{
    if (!s.ok())
        return label + " fails";
    return label + " " + fmt("%.1f", s.median()) + " ms (p90 " + fmt("%.1f", s.p90()) + ")";
}

// Rows 1-3 of the floor table: NN.row files in dir (see the head of this file).
void write_floor_rows(const std::string &dir, const Variant &stock, const Variant &ours, const Variant &floor,
                      const Variant &snap1, const Variant &snap50, const Variant &floor_snap1,
                      const Variant &floor_snap50)
{
    auto row = [&](const std::string &nn, const std::string &work, const Variant &mine, const Variant &base,
                   double limit, const std::string &note) {
        std::string ratio = "-", result;
        if (mine.stats.ok() && base.stats.ok()) {
            double x = mine.stats.median() / base.stats.median();
            ratio = fmt("%.3f", x);
            result = limit > 0 ? (x <= limit ? "MET" : "MISSED") : "informational";
        } else {
            result = limit > 0 ? "MISSED (" + std::string(mine.stats.ok() ? "baseline" : "ours") + " fails)"
                               : "informational";
        }
        std::string target = limit > 0 ? "<= " + fmt("%.2f", limit) : "(no target)";
        std::ofstream f(dir + "/" + nn + ".row");
        f << nn << "|" << work << "|" << ms_cell(mine.label, mine.stats) << "|" << ms_cell(base.label, base.stats) << "|"
          << ratio << "|" << target << "|" << result << "|" << note << "\n";
        if (!f.flush())
            throw std::runtime_error("cannot write " + dir + "/" + nn + ".row");
    };
    const std::string reps = std::to_string(kReps) + " calls each, interleaved, medians";
    row("1", "vol-create-from same pool via the API, one connection (ours vs stock)", ours, stock, 0.30, reps);
    row("2", "bare rbd_clone3 from a protected snapshot (the floor) vs stock", floor, stock, 0, reps);
    // What the snapshots cost librbd's own clone (it opens and refreshes the
    // parent, reading every snapshot), measured beside: added to ours with
    // one snapshot, the smallest ratio row 3 can have.
    std::string bound = reps;
    if (snap1.stats.ok() && snap50.stats.ok() && floor_snap1.stats.ok() && floor_snap50.stats.ok()) {
        const double floor_growth = floor_snap50.stats.median() - floor_snap1.stats.median();
        const double ours_growth = snap50.stats.median() - snap1.stats.median();
        bound += "; bound: bare rbd_clone3 itself grows " + fmt("%.1f", floor_growth) + " ms (" +
                 fmt("%.1f", floor_snap1.stats.median()) + " -> " + fmt("%.1f", floor_snap50.stats.median()) +
                 " ms, " + fmt("%.3f", floor_snap50.stats.median() / floor_snap1.stats.median()) +
                 "x), ours " + fmt("%.1f", ours_growth) + " ms: ours with 1 snapshot plus the floor's growth is " +
                 fmt("%.3f", (snap1.stats.median() + floor_growth) / snap1.stats.median()) + "x";
    }
    row("3", "ours with 50 user snapshots on the source vs 1", snap50, snap1, 1.10, bound);
}

int bench(const std::string &out_path, const std::string &rows_dir)
{
    const std::string load_before = loadavg();
    virSetErrorFunc(nullptr, ignore_errors);
    Daemon stock("stock", lab::env("BENCH_STOCK_URI"));
    Daemon ours("ours", lab::env("LIBVIRT_STORAGE_URI"));

    // Sources: stock and ours never share one, so each module only ever sees
    // its own snapshots (stock would otherwise reuse ours, or ours stock's).
    // The floor's sources carry a protected snapshot (user-N) ready to clone.
    note("creating source images");
    const std::string tag = lab::unique("b");
    const std::string s_stock = tag + "-stock-1g", s_ours = tag + "-ours-1g", s_20g = tag + "-ours-20g",
                      s_snap1 = tag + "-ours-snap1", s_snap50 = tag + "-ours-snap50",
                      f_1g = tag + "-floor-1g", f_20g = tag + "-floor-20g", f_snap50 = tag + "-floor-snap50";
    make_source(s_stock, GiB, 0);
    make_source(s_ours, GiB, 0);
    make_source(s_20g, 20 * GiB, 0);
    {
        auto t0 = std::chrono::steady_clock::now();
        FastPaxos fast;
        make_source(s_snap1, GiB, 1);
        make_source(s_snap50, GiB, 50);
        make_source(f_1g, GiB, 1, true);
        make_source(f_20g, 20 * GiB, 1, true);
        make_source(f_snap50, GiB, 50, true);
        note("user snapshots created in " +
             fmt("%.1f", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + " s");
    }
    stock.refresh();
    ours.refresh();

    using VolPtr = std::unique_ptr<virStorageVol, int (*)(virStorageVolPtr)>;
    VolPtr vs_stock(stock.vol(s_stock), virStorageVolFree), vo_1g(ours.vol(s_ours), virStorageVolFree),
        vo_20g(ours.vol(s_20g), virStorageVolFree), vo_snap1(ours.vol(s_snap1), virStorageVolFree),
        vo_snap50(ours.vol(s_snap50), virStorageVolFree);

    // 1. Same pool, stock vs ours (and the floor).
    Variant stock_same = libvirt_clone("stock same-pool", stock.rbd, vs_stock.get(), GiB);
    Variant ours_same = libvirt_clone("ours same-pool", ours.rbd, vo_1g.get(), GiB);
    Variant floor_same = librbd_clone("floor same-pool", f_1g, "user-1");
    measure({&stock_same, &ours_same, &floor_same}, "1: same-pool clone, stock vs ours");

    // 2. Cross pool (Ceph pool rbd -> rbd2).
    Variant stock_cross = libvirt_clone("stock cross-pool", stock.rbd2, vs_stock.get(), GiB);
    Variant ours_cross = libvirt_clone("ours cross-pool", ours.rbd2, vo_1g.get(), GiB);
    measure({&stock_cross, &ours_cross}, "2: cross-pool clone rbd -> rbd2");

    // 3. Size of the source.
    Variant ours_1g = libvirt_clone("ours 1 GiB", ours.rbd, vo_1g.get(), GiB);
    Variant ours_20g = libvirt_clone("ours 20 GiB", ours.rbd, vo_20g.get(), 20 * GiB);
    Variant floor_1g = librbd_clone("floor 1 GiB", f_1g, "user-1");
    Variant floor_20g = librbd_clone("floor 20 GiB", f_20g, "user-1");
    measure({&ours_1g, &ours_20g, &floor_1g, &floor_20g}, "3: 1 GiB vs 20 GiB source");

    // 4. Number of user snapshots on the source.
    Variant ours_snap1 = libvirt_clone("ours 1 snapshot", ours.rbd, vo_snap1.get(), GiB);
    Variant ours_snap50 = libvirt_clone("ours 50 snapshots", ours.rbd, vo_snap50.get(), GiB);
    Variant floor_snap1 = librbd_clone("floor 1 snapshot", f_1g, "user-1");
    Variant floor_snap50 = librbd_clone("floor 50 snapshots", f_snap50, "user-50");
    measure({&ours_snap1, &ours_snap50, &floor_snap1, &floor_snap50}, "4: 1 vs 50 user snapshots");

    std::vector<Row> rows = {
        {"1 same-pool clone, 1 GiB (stock/ours)", "stock", &stock_same.stats, "ours", &ours_same.stats,
         {Goal::AtMost, 0.30}},
        {"  floor (stock/floor)", "stock", &stock_same.stats, "floor", &floor_same.stats, {}},
        {"2 cross-pool rbd->rbd2 (stock/ours)", "stock", &stock_cross.stats, "ours", &ours_cross.stats, {}},
        {"2 ours cross-pool / stock same-pool", "stock", &stock_same.stats, "ours", &ours_cross.stats, {}},
        {"3 ours, source 1 GiB / 20 GiB", "1G", &ours_1g.stats, "20G", &ours_20g.stats, {Goal::Within, 0.10}},
        {"  floor, source 1 GiB / 20 GiB", "1G", &floor_1g.stats, "20G", &floor_20g.stats, {}},
        {"4 ours, 1 / 50 user snapshots", "1s", &ours_snap1.stats, "50s", &ours_snap50.stats,
         {Goal::AtMost, 1.10}},
        {"  floor, 1 / 50 snapshots", "1s", &floor_snap1.stats, "50s", &floor_snap50.stats, {}},
    };
    std::vector<std::string> notes;
    for (const Variant *v : {&stock_same, &ours_same, &floor_same, &stock_cross, &ours_cross, &ours_1g,
                             &ours_20g, &floor_1g, &floor_20g, &ours_snap1, &ours_snap50, &floor_snap1,
                             &floor_snap50})
        if (!v->stats.error.empty())
            notes.push_back(v->label + " fails: " + v->stats.error);

    // Sanity: each module made one snapshot per source and reused it afterwards.
    std::string snaps = "snapshots on the sources afterwards:";
    for (const auto &[label, image] : std::vector<std::pair<std::string, std::string>>{
             {"stock 1 GiB", s_stock}, {"ours 1 GiB", s_ours}, {"ours 20 GiB", s_20g},
             {"ours 1-snapshot", s_snap1}, {"ours 50-snapshot", s_snap50}})
        snaps += " " + label + " " + std::to_string(lab::ceph().snapshots("rbd", image).size()) + ",";
    snaps.back() = '.';
    notes.push_back(snaps);

    std::string t = table(rows, notes, load_before);
    if (!rows_dir.empty())
        write_floor_rows(rows_dir, stock_same, ours_same, floor_same, ours_snap1, ours_snap50, floor_snap1,
                         floor_snap50);
    std::cout << "\n" << t << std::flush;
    std::ofstream f(out_path);
    f << t;
    if (!f.flush())
        throw std::runtime_error("cannot write " + out_path);
    // The lab is thrown away afterwards: sources and snapshots are left in place.
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        std::cerr << "usage: " << argv[0] << " RESULT_FILE [FLOOR_ROWS_DIR]  (run it through bench/run-bench.sh)\n";
        return 2;
    }
    try {
        return bench(argv[1], argc == 3 ? argv[2] : "");
    } catch (const std::exception &e) {
        std::cerr << "clone-bench: ERROR: " << e.what() << std::endl;
        return 1;
    }
}
