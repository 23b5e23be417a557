#include "create/create_from.hpp"

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>

#include "base/log.hpp"
#include "create/clone.hpp"
#include "create/image_cache.hpp"
#include "create/image_import.hpp"
#include "lifecycle/volume_ops.hpp"
#include "source/byte_source.hpp"
#include "source/format_sniff.hpp"
#include "source/image_safety.hpp"
#include "source/qemu_reader.hpp"

namespace rbdclone {

namespace {

using SourceOpener = std::function<Result<std::unique_ptr<ByteSource>>()>;

// What was read from the start of the source, for sniffing and for the
// header checks before a conversion.
struct Sniffed {
    std::string head;
    std::string format;
};

Result<Sniffed> sniff_source(ByteSource &src)
{
    Sniffed s;
    std::string tail;
    if (auto st = read_head_tail(src, kSniffHeadBytes, kSniffTailBytes, s.head, tail); !st)
        return st.error();
    s.format = sniff_format(s.head, tail);
    return s;
}

// Facts about an RBD source, from one read-only handle (at the snapshot if
// one is given) that the clone or copy then uses too.
Result<std::unique_ptr<RbdSource>> gather_rbd_facts(const ImageRef &ref, CloneFacts &f, Sniffed &sniffed)
{
    auto src = open_rbd_source(ref.io, ref.image, ref.snap, ref.label());
    if (!src) {
        if (src.error().rc == -ENOENT && !ref.snap.empty())
            return plain_error(RBDC_ERR_NO_VOLUME, -ENOENT,
                               "snapshot '" + ref.pool + "/" + ref.image + "@" + ref.snap + "' does not exist");
        return src.error();
    }
    rbd_image_t img = (*src)->image();
    uint8_t old = 0;
    int r;
    if ((r = rbd_get_old_format(img, &old)) < 0)
        return ceph_error(r, "failed to get the format of " + ref.label());
    f.image_format_1 = old != 0;
    uint64_t features = 0;
    if (!old && (r = rbd_get_features(img, &features)) < 0)
        return ceph_error(r, "failed to get the features of " + ref.label());
    f.has_layering = !old && (features & RBD_FEATURE_LAYERING);
    auto s = sniff_source(**src);
    if (!s)
        return s.error();
    sniffed = std::move(*s);
    f.sniffed_format = sniffed.format;
    return src;
}

void log_decision(const std::string &dst_label, const std::string &src_label, const Decision &d)
{
    log_info("decision for ", dst_label, " from ", src_label, ": ", method_name(d.method), " (", d.reason, ")");
}

Error reflink_refused(const Decision &d, const std::string &dst_label)
{
    return plain_error(RBDC_ERR_UNSUPPORTED, -ENOTSUP,
                       "cannot create " + dst_label + " as a copy-on-write clone (reflink requested): " + d.reason);
}

// The copy path: raw sources are read directly, containers through qemu
// after their header passed the checks.
using IdentityOf = std::function<CacheIdentity(const std::string &format)>;

// Through the pool's image cache: a hit clones the entry, a miss fills it
// (with `import`) and clones it.  Logs the decision.
Result<CreateOutcome> via_cache(Pool &dst, const std::string &dst_name, uint64_t capacity, const Decision &d,
                                const std::string &src_label, const CacheIdentity &id, bool reflink,
                                const std::function<Result<CopyStats>(const std::string &, const ImageSealer &)> &import)
{
    const std::string dst_label = dst.image_label(dst_name);
    EntryFiller fill = nullptr;
    if (!reflink) // clone or fail: a hit is a clone, a miss would copy
        fill = [&](const std::string &entry, const ImageSealer &seal) {
            log_info("decision for ", dst_label, " from ", src_label, ": cache-miss ", method_name(d.method),
                     "+clone (", d.reason, "; converted once into the pool's image cache)");
            return import(entry, seal);
        };
    auto out = clone_through_cache(dst, dst_name, capacity, id, fill);
    if (!out) {
        if (reflink && out.error().rc == -ENOENT)
            return reflink_refused(Decision{d.method, d.reason + "; not in the pool's image cache yet"}, dst_label);
        return out.error();
    }
    if (out->hit)
        log_info("decision for ", dst_label, " from ", src_label, ": cache-hit clone (", d.reason,
                 "; cloned from the pool's image cache entry ", dst.image_label(out->entry), ")");
    return CreateOutcome{Decision{Method::Clone, d.reason}, out->copied};
}

Result<CreateOutcome> copy_source(Pool &dst, const std::string &dst_name, uint64_t capacity, Decision d,
                                  const std::string &src_label, const std::string &declared, const Sniffed &sniffed,
                                  const SourceOpener &open_raw,
                                  const std::function<Result<std::unique_ptr<QemuImage>>(const std::string &)>
                                      &prepare_container,
                                  const IdentityOf &identity, bool reflink,
                                  const std::function<Result<uint64_t>()> &checksum_source = nullptr)
{
    const std::string dst_label = dst.image_label(dst_name);
    CopyFormat cf = copy_format(declared, sniffed.format);
    if (cf.format.empty()) {
        log_decision(dst_label, src_label, Decision{d.method, d.reason + "; refused: " + cf.error});
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           "cannot create " + dst_label + " from " + src_label + ": " + cf.error);
    }
    if (cf.format != "raw" && d.method != Method::CopyConvert) {
        d.method = Method::CopyConvert;
        d.reason += "; it is a " + cf.format + " image, converted to raw";
    }
    if (dst.policy().cache_enabled) {
        CacheIdentity id = identity(cf.format);
        if (!id.key.empty()) {
            // The one copy goes through the engine, which checksums it.
            CopyOptions opts;
            opts.checksum = true;
            return via_cache(dst, dst_name, capacity, d, src_label, id, reflink,
                             [&](const std::string &entry, const ImageSealer &seal) -> Result<CopyStats> {
                                 if (cf.format == "raw") {
                                     auto src = open_raw();
                                     if (!src)
                                         return src.error();
                                     return import_image(dst, entry, 0, **src, opts, seal);
                                 }
                                 if (std::string why = external_reference(cf.format, sniffed.head); !why.empty())
                                     return plain_error(RBDC_ERR_INVALID_ARG, -EPERM,
                                                        "refusing to convert " + src_label + " into " + dst_label +
                                                            ": " + why);
                                 auto image = prepare_container(cf.format);
                                 if (!image)
                                     return image.error();
                                 if (qemu_img_writes_rbd() && checksum_source) {
                                     // qemu-img writes the entry (the fast path, as
                                     // for plain copies) while the source's own bytes
                                     // are checksummed alongside.
                                     auto size = (*image)->virtual_size();
                                     if (!size)
                                         return size.error();
                                     auto sum = std::async(std::launch::async, checksum_source);
                                     auto r = import_with(
                                         dst, entry, 0, *size, src_label,
                                         [&](const std::string &partial) -> Result<CopyStats> {
                                             if (auto st = (*image)->convert_into(dst.params(), dst.id().ceph_pool,
                                                                                  partial);
                                                 !st)
                                                 return st.error();
                                             auto c = sum.get();
                                             if (!c)
                                                 return c.error();
                                             CopyStats s;
                                             s.bytes_read = *size;
                                             s.checksum = *c;
                                             s.checksum_of_stored = true;
                                             return s;
                                         },
                                         seal);
                                     if (sum.valid())
                                         sum.wait();
                                     return r;
                                 }
                                 auto src = QemuImage::reader(std::move(*image));
                                 if (!src)
                                     return src.error();
                                 return import_image(dst, entry, 0, **src, opts, seal);
                             });
        }
        d.reason += "; not cached: " + id.why_not;
    } else {
        d.reason += "; the pool's image cache is off";
    }
    log_decision(dst_label, src_label, d);
    if (reflink)
        return reflink_refused(d, dst_label);

    if (cf.format == "raw") {
        auto src = open_raw();
        if (!src)
            return src.error();
        auto stats = import_image(dst, dst_name, capacity, **src);
        if (!stats)
            return stats.error();
        return CreateOutcome{d, *stats};
    }
    if (std::string why = external_reference(cf.format, sniffed.head); !why.empty())
        return plain_error(RBDC_ERR_INVALID_ARG, -EPERM,
                           "refusing to convert " + src_label + " into " + dst_label + ": " + why);
    auto image = prepare_container(cf.format);
    if (!image)
        return image.error();
    Result<CopyStats> stats = Error{};
    if (qemu_img_writes_rbd()) {
        // qemu-img writes the image itself (qemu's rbd driver): one process,
        // no socket hop, measured faster than reading through qemu-nbd.
        auto size = (*image)->virtual_size();
        if (!size)
            return size.error();
        stats = import_with(dst, dst_name, capacity, *size, src_label,
                            [&](const std::string &partial) -> Result<CopyStats> {
                                if (auto st = (*image)->convert_into(dst.params(), dst.id().ceph_pool, partial); !st)
                                    return st.error();
                                CopyStats s;
                                s.bytes_read = *size;
                                return s;
                            });
    } else {
        auto src = QemuImage::reader(std::move(*image));
        if (!src)
            return src.error();
        stats = import_image(dst, dst_name, capacity, **src);
    }
    if (!stats)
        return stats.error();
    return CreateOutcome{d, *stats};
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
                                         const SourceSpec &src, bool reflink)
{
    const std::string dst_label = dst.image_label(dst_name);
    CloneFacts f;
    f.dest_fsid = dst.cluster().fsid();
    f.declared_format = src.declared_format;

    if (!src.is_rbd) {
        f.source_label = "'" + src.path + "'";
        f.source_kind = src.kind;
        auto file = open_file_source(src.path);
        if (!file)
            return file.error();
        auto sniffed = sniff_source(**file);
        if (!sniffed)
            return sniffed.error();
        f.sniffed_format = sniffed->format;
        std::unique_ptr<ByteSource> opened = std::move(*file);
        return copy_source(
            dst, dst_name, capacity, decide_clone(f), f.source_label, src.declared_format, *sniffed,
            [&]() -> Result<std::unique_ptr<ByteSource>> { return std::move(opened); },
            [&](const std::string &fmt) { return QemuImage::file(src.path, fmt); },
            [&](const std::string &fmt) { return file_cache_identity(src.path, fmt); }, reflink,
            [&]() -> Result<uint64_t> {
                auto f = open_file_source(src.path);
                if (!f)
                    return f.error();
                return source_checksum(**f);
            });
    }

    // Where the source lives: a pool we serve, or a location in some
    // cluster one of our pools reaches.
    f.source_is_rbd = true;
    ImageRef ref;
    IoCtxHandle own_io;
    ref.image = src.image;
    ref.snap = src.snap;
    std::shared_ptr<Pool> reach; // whose connection reads the source
    if (src.pool) {
        ref.io = src.pool->io();
        ref.pool = src.pool->id().ceph_pool;
        f.source_fsid = src.pool->cluster().fsid();
        reach = src.pool;
    } else {
        ref.pool = src.ceph_pool;
        f.source_fsid = src.fsid.empty() ? f.dest_fsid : src.fsid;
    }
    f.source_label = ref.label() + (ref.snap.empty() ? "" : " at snapshot '" + ref.snap + "'");
    if (!src.pool) {
        rados_t cluster = dst.cluster().get();
        if (f.source_fsid != f.dest_fsid) {
            reach = pool_registry().find_by_fsid(f.source_fsid);
            if (!reach) {
                Decision d = decide_clone(f);
                log_decision(dst_label, f.source_label, d);
                if (reflink)
                    return reflink_refused(d, dst_label);
                return plain_error(RBDC_ERR_NO_POOL, -ENOENT,
                                   "cannot copy " + f.source_label + " into " + dst_label + ": it is in Ceph cluster " +
                                       f.source_fsid + ", which no active RBD pool of this daemon reaches");
            }
            cluster = reach->cluster().get();
        }
        int r = rados_ioctx_create(cluster, ref.pool.c_str(), own_io.out());
        if (r == -ENOENT)
            return plain_error(RBDC_ERR_NO_POOL, r, "Ceph pool '" + ref.pool + "' of " + ref.label() +
                                                         " does not exist in cluster " + f.source_fsid);
        if (r < 0)
            return ceph_error(r, "failed to open Ceph pool '" + ref.pool + "'");
        ref.io = own_io.get();
    }

    Sniffed sniffed;
    auto source = gather_rbd_facts(ref, f, sniffed);
    if (!source)
        return source.error();
    f.snapshot_given = !ref.snap.empty();

    auto copy = [&](const Decision &d) {
        const ClusterParams &params = reach ? reach->params() : dst.params();
        return copy_source(
            dst, dst_name, capacity, d, f.source_label, src.declared_format, sniffed,
            [&]() -> Result<std::unique_ptr<ByteSource>> { return std::unique_ptr<ByteSource>(std::move(*source)); },
            [&](const std::string &fmt) {
                return QemuImage::rbd(params, ref.pool, ref.image, ref.snap, fmt, ref.label());
            },
            [&](const std::string &fmt) {
                return rbd_cache_identity((*source)->image(), f.source_fsid, ref.pool, ref.image, ref.snap, fmt);
            },
            reflink);
    };

    Decision d = decide_clone(f);
    if (d.method != Method::Clone)
        return copy(d);
    log_decision(dst_label, f.source_label, d);

    auto c = clone_image(ref, (*source)->image(), (*source)->size(), dst, dst_name, capacity);
    if (!c && c.error().rc == -ENOENT && ref.snap.empty()) {
        // Expected race: the snapshot we chose to reuse was removed by the
        // deletion of its last clone meanwhile.  Look again, once.
        log_info("the snapshot chosen for ", dst_label, " vanished meanwhile; choosing again");
        Sniffed again;
        auto fresh = gather_rbd_facts(ref, f, again);
        if (!fresh)
            return fresh.error();
        source = std::move(fresh);
        c = clone_image(ref, (*source)->image(), (*source)->size(), dst, dst_name, capacity);
    }
    if (!c) {
        int rc = c.error().rc;
        if (rc == -EPERM || rc == -EACCES) {
            // The identity may not snapshot the source: that is a reason
            // to copy, not a failure of the request.
            f.may_snapshot = false;
            Decision d2 = decide_clone(f);
            if (d2.method != Method::Clone)
                return copy(d2);
        }
        return c.error();
    }
    return CreateOutcome{d, {}};
}

} // namespace rbdclone
