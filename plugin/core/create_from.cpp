#include "create_from.hpp"

#include "clone.hpp"
#include "format_sniff.hpp"
#include "log.hpp"
#include "volume_ops.hpp"

namespace rbdclone {

namespace {

// Reads the head and tail of an image (or snapshot) for format sniffing.
Result<std::string> sniff_rbd(rbd_image_t img, uint64_t size, const std::string &label)
{
    std::string head(static_cast<size_t>(std::min<uint64_t>(size, kSniffHeadBytes)), '\0');
    ssize_t r = head.empty() ? 0 : rbd_read(img, 0, head.size(), head.data());
    if (r < 0)
        return ceph_error(static_cast<int>(r), "failed to read the first bytes of " + label);
    head.resize(static_cast<size_t>(r));
    std::string tail;
    if (size >= kSniffHeadBytes + kSniffTailBytes) {
        tail.assign(kSniffTailBytes, '\0');
        r = rbd_read(img, size - kSniffTailBytes, kSniffTailBytes, tail.data());
        if (r < 0)
            return ceph_error(static_cast<int>(r), "failed to read the last bytes of " + label);
        tail.resize(static_cast<size_t>(r));
    }
    return sniff_format(head, tail);
}

// Facts about an RBD source: opened read-only at the snapshot if one is given.
Status gather_rbd_facts(const ImageRef &ref, CloneFacts &f)
{
    ImageHandle img;
    int r = rbd_open_read_only(ref.io, ref.image.c_str(), img.out(),
                               ref.snap.empty() ? nullptr : ref.snap.c_str());
    if (r == -ENOENT)
        return plain_error(RBDC_ERR_NO_VOLUME, r,
                           ref.snap.empty() ? ref.label() + " does not exist"
                                            : "snapshot '" + ref.pool + "/" + ref.image + "@" + ref.snap +
                                                  "' does not exist");
    if (r < 0)
        return ceph_error(r, "failed to open " + ref.label());
    uint8_t old = 0;
    if ((r = rbd_get_old_format(img.get(), &old)) < 0)
        return ceph_error(r, "failed to get the format of " + ref.label());
    f.image_format_1 = old != 0;
    uint64_t features = 0;
    if (!old && (r = rbd_get_features(img.get(), &features)) < 0)
        return ceph_error(r, "failed to get the features of " + ref.label());
    f.has_layering = !old && (features & RBD_FEATURE_LAYERING);
    uint64_t size = 0;
    if ((r = rbd_get_size(img.get(), &size)) < 0)
        return ceph_error(r, "failed to get the size of " + ref.label());
    auto fmt = sniff_rbd(img.get(), size, ref.label());
    if (!fmt)
        return fmt.error();
    f.sniffed_format = fmt.value();
    return {};
}

Error not_cloned(const Decision &d, const std::string &dst_label, bool reflink)
{
    if (reflink)
        return plain_error(RBDC_ERR_UNSUPPORTED, -ENOTSUP,
                           "cannot create " + dst_label + " as a copy-on-write clone (reflink requested): " +
                               d.reason);
    return plain_error(RBDC_ERR_UNSUPPORTED, -ENOTSUP,
                       "cannot create " + dst_label + " by cloning: " + d.reason +
                           "; copying it into RBD (" + method_name(d.method) + ") is not implemented yet");
}

void log_decision(const std::string &dst_label, const std::string &src_label, const Decision &d)
{
    log_info("decision for ", dst_label, " from ", src_label, ": ", method_name(d.method), " (", d.reason, ")");
}

} // namespace

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
        Decision d = decide_clone(f);
        log_decision(dst_label, f.source_label, d);
        return not_cloned(d, dst_label, reflink);
    }

    // Where the source lives: a pool we serve, or a location in Ceph.
    f.source_is_rbd = true;
    ImageRef ref;
    IoCtxHandle own_io;
    ref.image = src.image;
    ref.snap = src.snap;
    if (src.pool) {
        ref.io = src.pool->io();
        ref.pool = src.pool->id().ceph_pool;
        f.source_fsid = src.pool->cluster().fsid();
    } else {
        ref.pool = src.ceph_pool;
        f.source_fsid = src.fsid.empty() ? f.dest_fsid : src.fsid;
    }
    f.source_label = ref.label() + (ref.snap.empty() ? "" : " at snapshot '" + ref.snap + "'");
    if (f.source_fsid != f.dest_fsid) {
        Decision d = decide_clone(f);
        log_decision(dst_label, f.source_label, d);
        return not_cloned(d, dst_label, reflink);
    }
    if (!src.pool) {
        int r = rados_ioctx_create(dst.cluster().get(), ref.pool.c_str(), own_io.out());
        if (r == -ENOENT)
            return plain_error(RBDC_ERR_NO_POOL, r, "Ceph pool '" + ref.pool + "' of " + ref.label() +
                                                         " does not exist in cluster " + f.dest_fsid);
        if (r < 0)
            return ceph_error(r, "failed to open Ceph pool '" + ref.pool + "'");
        ref.io = own_io.get();
    }

    if (auto st = gather_rbd_facts(ref, f); !st)
        return st.error();
    f.snapshot_given = !ref.snap.empty();
    Decision d = decide_clone(f);
    log_decision(dst_label, f.source_label, d);
    if (d.method != Method::Clone)
        return not_cloned(d, dst_label, reflink);

    auto c = clone_image(ref, dst, dst_name, capacity);
    if (!c) {
        int rc = c.error().rc;
        if (rc == -EPERM || rc == -EACCES) {
            // The identity may not snapshot the source: that is a reason
            // to copy, not a failure of the request.
            f.may_snapshot = false;
            Decision d2 = decide_clone(f);
            log_decision(dst_label, f.source_label, d2);
            if (d2.method != Method::Clone)
                return not_cloned(d2, dst_label, reflink);
        }
        return c.error();
    }
    return CreateOutcome{d};
}

} // namespace rbdclone
