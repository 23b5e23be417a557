#include "create/create_from.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>

#include "base/log.hpp"
#include "create/clone.hpp"
#include "create/image_cache.hpp"
#include "create/source.hpp"

namespace rbdclone {

namespace {

// The one line every request leaves in the log: what is done and why.
void log_decision(const std::string &dst_label, const std::string &src_label, const std::string &what,
                  const std::string &reason)
{
    log_info("decision for ", dst_label, " from ", src_label, ": ", what, " (", reason, ")");
}

// Where an RBD source is read: through the pool of this daemon that serves
// it, or through a connection to the cluster of its location (the
// destination's, or another one that a pool of this daemon reaches).
struct Located {
    RbdPlace place;
    IoCtxHandle own_io;          // when no pool serves it
    std::shared_ptr<Pool> reach; // the pool whose connection reads it, kept for the request
    bool reachable = true;
};

Status locate(Pool &dst, const SourceSpec &spec, Located &out)
{
    RbdPlace &p = out.place;
    p.image = spec.image;
    p.snap = spec.snap;
    p.params = &dst.params();
    if (spec.pool) {
        p.io = spec.pool->io();
        p.ceph_pool = spec.pool->id().ceph_pool;
        p.fsid = spec.pool->cluster().fsid();
        p.params = &spec.pool->params();
        out.reach = spec.pool;
        return {};
    }
    p.ceph_pool = spec.ceph_pool;
    p.fsid = spec.fsid.empty() ? dst.cluster().fsid() : spec.fsid;
    rados_t cluster = dst.cluster().get();
    if (p.fsid != dst.cluster().fsid()) {
        auto reach = pool_registry().find_by_fsid(p.fsid);
        if (!reach) {
            out.reachable = false;
            return {};
        }
        cluster = reach->cluster().get();
        p.params = &reach->params();
        out.reach = std::move(reach);
    }
    const std::string label = "RBD image '" + p.ceph_pool + "/" + p.image + "'";
    int r = rados_ioctx_create(cluster, p.ceph_pool.c_str(), out.own_io.out());
    if (r == -ENOENT)
        return plain_error(RBDC_ERR_NO_POOL, r, "Ceph pool '" + p.ceph_pool + "' of " + label +
                                                     " does not exist in cluster " + p.fsid);
    if (r < 0)
        return ceph_error(r, "failed to open Ceph pool '" + p.ceph_pool + "'");
    p.io = out.own_io.get();
    return {};
}

// The facts of a request whose source no pool of this daemon reaches.
CloneFacts unreachable_source(const SourceSpec &spec, const RbdPlace &p)
{
    CloneFacts f;
    f.source_is_rbd = true;
    f.source_fsid = p.fsid;
    f.declared_format = spec.declared_format;
    f.snapshot_given = !p.snap.empty();
    f.source_label = Source::rbd_label(p);
    return f;
}

// Through the pool's image cache: a hit clones the entry, a miss fills it
// (the one copy, checksummed) and clones it.
Result<CreateOutcome> via_cache(Pool &dst, const std::string &dst_name, uint64_t capacity, const Plan &plan,
                                Source &src, const CacheIdentity &id)
{
    const std::string dst_label = dst.image_label(dst_name);
    EntryFiller fill = nullptr;
    if (plan.fill_cache)
        fill = [&](const std::string &entry, const ImageSealer &seal) {
            log_decision(dst_label, src.label(), cat("cache-miss ", method_name(plan.method), "+clone"),
                         plan.reason + "; converted once into the pool's image cache");
            return src.copy_into(dst, entry, 0, true, seal);
        };
    auto out = clone_through_cache(dst, dst_name, capacity, id, fill);
    if (!out) {
        if (!plan.fill_cache && out.error().rc == -ENOENT)
            return reflink_refusal(dst_label, plan.reason + "; not in the pool's image cache yet");
        return out.error();
    }
    if (out->hit)
        log_decision(dst_label, src.label(), "cache-hit clone",
                     plan.reason + "; cloned from the pool's image cache entry " + dst.image_label(out->entry));
    return CreateOutcome{Decision{Method::Clone, plan.reason}, out->copied};
}

// The source, opened once; null when no pool of this daemon reaches its
// cluster (the planner refuses that).
Result<std::unique_ptr<Source>> open_source(Pool &dst, const SourceSpec &spec, Located &where)
{
    if (!spec.is_rbd)
        return Source::open_file(spec.path, spec.kind, spec.declared_format);
    if (auto st = locate(dst, spec, where); !st)
        return st.error();
    if (!where.reachable)
        return std::unique_ptr<Source>();
    return Source::open_rbd(where.place, spec.declared_format);
}

// Clones the source (at its snapshot, or one of ours chosen or made).
Result<CloneOutcome> clone_step(Pool &dst, const std::string &dst_name, uint64_t capacity, const RbdPlace &place,
                                const std::string &declared_format, std::unique_ptr<Source> &src)
{
    ImageRef ref;
    ref.io = place.io;
    ref.pool = place.ceph_pool;
    ref.image = place.image;
    ref.snap = place.snap;
    auto c = clone_image(ref, src->image(), src->size(), dst, dst_name, capacity, src->opened_under_clone_lock(),
                         src->known_snapshot());
    if (c || c.error().rc != -ENOENT || !ref.snap.empty())
        return c;
    // Expected race: the snapshot we chose to reuse was removed by the
    // deletion of its last clone meanwhile.  Look again, once.
    log_info("the snapshot chosen for ", dst.image_label(dst_name), " vanished meanwhile; choosing again");
    auto fresh = Source::open_rbd(place, declared_format);
    if (!fresh)
        return fresh.error();
    src = std::move(*fresh);
    return clone_image(ref, src->image(), src->size(), dst, dst_name, capacity, src->opened_under_clone_lock(),
                       src->known_snapshot());
}

std::mutex g_failed_mu;
std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> g_failed;

} // namespace

void remember_failed_create(const Pool &dst, const std::string &dst_name)
{
    std::lock_guard lk(g_failed_mu);
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(g_failed, [&](const auto &kv) { return now - kv.second > std::chrono::minutes(1); });
    g_failed[{dst.id().uuid, dst_name}] = now;
}

bool forget_failed_create(const Pool &dst, const std::string &dst_name)
{
    std::lock_guard lk(g_failed_mu);
    auto it = g_failed.find({dst.id().uuid, dst_name});
    if (it == g_failed.end())
        return false;
    bool fresh = std::chrono::steady_clock::now() - it->second < std::chrono::minutes(1);
    g_failed.erase(it);
    return fresh;
}

Result<CreateOutcome> create_volume_from(Pool &dst, const std::string &dst_name, uint64_t capacity,
                                         const SourceSpec &spec, bool reflink)
{
    RequestFacts f;
    f.dst_label = dst.image_label(dst_name);
    f.reflink = reflink;
    f.cache_enabled = dst.policy().cache_enabled;

    Located where;
    auto opened = open_source(dst, spec, where);
    if (!opened)
        return opened.error();
    std::unique_ptr<Source> src = std::move(*opened); // null: unreachable

    std::optional<Error> snapshot_denied; // the identity may not snapshot the source
    for (;;) {
        CacheIdentity id;
        if (src) {
            f.clone = CloneFacts{};
            src->describe(f.clone);
            f.copy = src->copy_format();
            f.header_problem = src->header_problem();
            if (f.cache_enabled && !f.copy.format.empty())
                id = src->cache_identity();
            f.cache = {!id.key.empty(), id.why_not};
        } else {
            f.clone = unreachable_source(spec, where.place);
            f.source_reachable = false;
        }
        f.clone.dest_fsid = dst.cluster().fsid();
        f.clone.may_snapshot = !snapshot_denied;

        const Plan plan = plan_request(f);
        switch (plan.step) {
        case Step::Refuse:
            log_decision(f.dst_label, f.clone.source_label, method_name(plan.method), plan.reason);
            return plan.refusal;
        case Step::ViaCache:
            src->release_clone_lock();
            return via_cache(dst, dst_name, capacity, plan, *src, id);
        case Step::Copy: {
            src->release_clone_lock();
            log_decision(f.dst_label, f.clone.source_label, method_name(plan.method), plan.reason);
            auto stats = src->copy_into(dst, dst_name, capacity, false);
            if (!stats)
                return stats.error();
            return CreateOutcome{Decision{plan.method, plan.reason}, *stats};
        }
        case Step::Clone:
            break;
        }
        if (snapshot_denied) // a clone from the named snapshot was refused: nothing else to try
            return *snapshot_denied;
        log_decision(f.dst_label, f.clone.source_label, method_name(plan.method), plan.reason);
        auto c = clone_step(dst, dst_name, capacity, where.place, spec.declared_format, src);
        if (c)
            return CreateOutcome{Decision{Method::Clone, plan.reason}, {}};
        if (c.error().rc != -EPERM && c.error().rc != -EACCES)
            return c.error();
        // The identity may not snapshot the source: that is a reason to
        // copy, not a failure of the request.
        snapshot_denied = c.error();
    }
}

} // namespace rbdclone
