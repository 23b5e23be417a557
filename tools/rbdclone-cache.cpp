// rbdclone-cache: see and purge the image cache of an RBD pool (rbdclone's
// <rbd:image_cache/>, "convert once, clone forever"), with the module's own
// cache code (plugin/core/lifecycle/image_cache_admin.hpp): what an entry stores and how many
// clones it has are counted exactly as the module counts them for eviction.
//
//   rbdclone-cache [CEPH_OPTS...] list POOL
//       one line per entry: name, size and stored bytes (what max_size
//       counts), clones, last use, source
//   rbdclone-cache [CEPH_OPTS...] purge POOL [ENTRY...]
//       removes the given entries, or every entry without clones; an entry
//       with clones is never removed (it is the parent of live disks)
//
// CEPH_OPTS: -c/--conf FILE, --id USER, -n/--name client.USER, -k/--keyring
// FILE, -m/--mon-host ADDRS; otherwise Ceph's usual environment applies
// (CEPH_CONF, CEPH_ARGS, /etc/ceph/ceph.conf), as for the rbd tool.
#include <getopt.h>

#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "ceph/pool.hpp"
#include "ceph/names.hpp"
#include "lifecycle/image_cache_admin.hpp"

using namespace rbdclone;

namespace {

const char kProg[] = "rbdclone-cache";

int usage()
{
    fprintf(stderr,
            "usage: %s [-c CONF] [--id USER | -n NAME] [-k KEYRING] [-m MON_HOST] list POOL\n"
            "       %s [-c CONF] [--id USER | -n NAME] [-k KEYRING] [-m MON_HOST] purge POOL [ENTRY...]\n",
            kProg, kProg);
    return 2;
}

struct CephOptions {
    std::string conf, name, keyring, mon_host;
};

// Connects as Ceph's own tools do: the configuration file (the given one, or
// Ceph's search: CEPH_CONF, /etc/ceph/ceph.conf, ...), then CEPH_ARGS, then
// the options given here.
Result<std::shared_ptr<Cluster>> connect(const CephOptions &o)
{
    RadosHandle h;
    const std::string name = o.name.empty() ? "client.admin" : o.name;
    int r = rados_create2(h.out(), "ceph", name.c_str(), 0);
    if (r < 0)
        return ceph_error(r, "failed to initialize the RADOS client as " + name);
    r = rados_conf_read_file(h.get(), o.conf.empty() ? nullptr : o.conf.c_str());
    if (r < 0 && !(r == -ENOENT && o.conf.empty())) // none found: -m may still say where
        return ceph_error(r, "failed to read the Ceph configuration " + (o.conf.empty() ? "" : "'" + o.conf + "'"));
    if ((r = rados_conf_parse_env(h.get(), nullptr)) < 0)
        return ceph_error(r, "failed to read CEPH_ARGS");
    for (const auto &[key, value] : {std::pair{"keyring", o.keyring}, std::pair{"mon_host", o.mon_host}})
        if (!value.empty() && (r = rados_conf_set(h.get(), key, value.c_str())) < 0)
            return ceph_error(r, cat("failed to set ", key, " to '", value, "'"));
    if ((r = rados_connect(h.get())) < 0)
        return ceph_error(r, "failed to connect to the Ceph cluster as " + name);
    char fsid[64] = {0};
    if ((r = rados_cluster_fsid(h.get(), fsid, sizeof(fsid) - 1)) < 0)
        return ceph_error(r, "failed to read the Ceph cluster's fsid");
    return std::make_shared<Cluster>(std::move(h), fsid);
}

Result<std::unique_ptr<Pool>> open(const CephOptions &o, const std::string &ceph_pool)
{
    auto cluster = connect(o);
    if (!cluster)
        return cluster.error();
    IoCtxHandle io;
    int r = rados_ioctx_create((*cluster)->get(), ceph_pool.c_str(), io.out());
    if (r < 0)
        return ceph_error(r, "failed to open Ceph pool '" + ceph_pool + "'");
    return std::make_unique<Pool>(PoolIdentity{"", ceph_pool, ceph_pool}, ClusterParams{}, std::move(*cluster),
                                  std::move(io));
}

std::string utc(int64_t t)
{
    if (t <= 0)
        return "-";
    char buf[32];
    const time_t tt = static_cast<time_t>(t);
    struct tm tm {};
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
    return buf;
}

void row(const std::string &entry, const std::string &size, const std::string &stored, const std::string &clones,
         const std::string &last_use, const std::string &source)
{
    printf("%-47s %14s %14s %6s %-20s %s\n", entry.c_str(), size.c_str(), stored.c_str(), clones.c_str(),
           last_use.c_str(), source.c_str());
}

int list(Pool &pool)
{
    auto entries = list_cache(pool);
    if (!entries) {
        fprintf(stderr, "%s: %s\n", kProg, entries.error().message.c_str());
        return 1;
    }
    row("ENTRY", "SIZE", "STORED", "CLONES", "LAST_USE", "SOURCE");
    for (const auto &e : *entries)
        row(e.name, std::to_string(e.size), std::to_string(e.stored),
            e.clones_known ? std::to_string(e.clones) : "?", utc(e.last_used), e.source.empty() ? "?" : e.source);
    return 0;
}

int purge(Pool &pool, const std::vector<std::string> &named)
{
    auto entries = list_cache(pool);
    if (!entries) {
        fprintf(stderr, "%s: %s\n", kProg, entries.error().message.c_str());
        return 1;
    }
    std::map<std::string, const CacheEntry *> by_name;
    for (const auto &e : *entries)
        by_name[e.name] = &e;
    std::vector<std::string> targets = named;
    if (named.empty())
        for (const auto &e : *entries)
            targets.push_back(e.name);
    int rc = 0;
    for (const auto &t : targets) {
        auto it = by_name.find(t);
        if (!is_cache_entry(t) || is_partial_name(t)) {
            fprintf(stderr, "%s: not an image cache entry; skipped\n", t.c_str());
            rc = 1;
        } else if (it == by_name.end()) {
            fprintf(stderr, "%s: could not be purged: no such entry in Ceph pool '%s'\n", t.c_str(),
                    pool.id().ceph_pool.c_str());
            rc = 1;
        } else if (!it->second->clones_known) {
            fprintf(stderr, "%s: kept, its clones could not be listed\n", t.c_str());
            rc = 1;
        } else if (!it->second->unused()) {
            printf("%s: kept, it has %zu clone(s)\n", t.c_str(), it->second->clones);
        } else if (auto st = remove_cache_entry(pool, *it->second); !st) {
            fprintf(stderr, "%s: could not be purged: %s\n", t.c_str(), st.error().message.c_str());
            rc = 1;
        } else {
            printf("%s: purged\n", t.c_str());
        }
    }
    return rc;
}

} // namespace

int main(int argc, char **argv)
{
    static const option longopts[] = {
        {"conf", required_argument, nullptr, 'c'},    {"id", required_argument, nullptr, 'i'},
        {"name", required_argument, nullptr, 'n'},    {"keyring", required_argument, nullptr, 'k'},
        {"mon-host", required_argument, nullptr, 'm'}, {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    CephOptions o;
    int c;
    // '+': options come before the command, as they did for the shell version.
    while ((c = getopt_long(argc, argv, "+c:n:k:m:h", longopts, nullptr)) != -1) {
        switch (c) {
        case 'c':
            o.conf = optarg;
            break;
        case 'i':
            o.name = std::string("client.") + optarg;
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'k':
            o.keyring = optarg;
            break;
        case 'm':
            o.mon_host = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            return usage();
        }
    }
    if (argc - optind < 2)
        return usage();
    const std::string cmd = argv[optind], ceph_pool = argv[optind + 1];
    const std::vector<std::string> rest(argv + optind + 2, argv + argc);
    if (cmd != "list" && cmd != "purge")
        return usage();
    if (cmd == "list" && !rest.empty())
        return usage();

    // What the core logs (a warning while purging, say) is the operator's to see.
    set_log_sink([](rbdc_log_level level, const char *msg) {
        if (level >= RBDC_LOG_WARN)
            fprintf(stderr, "%s: %s\n", kProg, msg);
    });
    auto pool = open(o, ceph_pool);
    if (!pool) {
        fprintf(stderr, "%s: %s\n", kProg, pool.error().message.c_str());
        return 1;
    }
    return cmd == "list" ? list(**pool) : purge(**pool, rest);
}
