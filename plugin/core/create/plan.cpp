#include "create/plan.hpp"

#include <cerrno>

#include "source/format_sniff.hpp"
#include "source/image_safety.hpp"

namespace rbdclone {

const char *method_name(Method m)
{
    switch (m) {
    case Method::Clone:
        return "clone";
    case Method::Copy:
        return "copy";
    case Method::CopyConvert:
        return "copy+convert";
    }
    return "?";
}

Decision decide_clone(const CloneFacts &f)
{
    const std::string &src = f.source_label;
    if (!f.source_is_rbd)
        return {Method::Copy, src + " is a " + (f.source_kind.empty() ? "non-RBD" : f.source_kind) +
                                  " volume, not an RBD image"};
    if (f.source_fsid.empty() || f.source_fsid != f.dest_fsid)
        return {Method::Copy, src + " is in Ceph cluster " +
                                  (f.source_fsid.empty() ? std::string("(unknown)") : f.source_fsid) +
                                  ", the destination in cluster " + f.dest_fsid};
    if (!f.declared_format.empty() && !is_raw_compatible(f.declared_format))
        return {Method::CopyConvert, src + " is declared as " + f.declared_format +
                                         ", and a clone would expose its container to the guest as raw"};
    if (!f.sniffed_format.empty() && !is_raw_compatible(f.sniffed_format))
        return {Method::CopyConvert,
                src + " is declared " + (f.declared_format.empty() ? std::string("raw") : f.declared_format) +
                    " but its first bytes are a " + f.sniffed_format + " header"};
    if (f.source_encrypted)
        return {Method::Copy, src + " is encrypted: it is read with its own key and copied (a clone would need "
                                    "that key wherever the new volume is opened)"};
    if (f.encrypt && !f.layered_encryption)
        return {Method::Copy, "the new volume is encrypted and this librbd has no layered encryption (Ceph 18 "
                              "has): a clone would read " + src + " through the new volume's key, so it is an "
                              "encrypted copy"};
    if (f.image_format_1)
        return {Method::Copy, src + " is an RBD image format 1, which cannot be layered"};
    if (!f.has_layering)
        return {Method::Copy, src + " lacks the RBD 'layering' feature"};
    if (!f.snapshot_given && !f.may_snapshot)
        return {Method::Copy, "the Ceph user may not create a snapshot of " + src +
                                  " and none of ours can be reused"};
    std::string why = "same cluster " + f.dest_fsid + ", " +
                      (f.sniffed_format.empty() ? std::string("raw") : f.sniffed_format) + ", layering" +
                      (f.encrypt ? ", encrypted with the new volume's own key (layered encryption)" : "");
    return {Method::Clone, why};
}

CopyFormat copy_format(const std::string &declared, const std::string &sniffed)
{
    std::string fmt;
    if (!declared.empty() && !is_raw_compatible(declared)) {
        // qcow (version 1) and qcow2 share a magic; qemu's driver names differ.
        if (sniffed != declared)
            return {"", "it is declared as " + declared + " but its bytes are " +
                            (is_raw_compatible(sniffed) ? std::string("not a ") + declared + " image"
                                                        : "a " + sniffed + " image")};
        fmt = declared;
    } else {
        fmt = is_raw_compatible(sniffed) || sniffed.empty() ? "raw" : sniffed;
    }
    if (fmt == "raw" || is_convertible(fmt))
        return {fmt, ""};
    if (fmt == "luks")
        return {"", "it is a LUKS-encrypted image, which cannot be converted without its secret"};
    return {"", "its format " + fmt + " cannot be converted"};
}

Error reflink_refusal(const std::string &dst_label, const std::string &reason)
{
    return plain_error(RBDC_ERR_UNSUPPORTED, -ENOTSUP,
                       "cannot create " + dst_label + " as a copy-on-write clone (reflink requested): " + reason);
}

namespace {

Plan refuse(Plan p, const std::string &why, Error e)
{
    p.step = Step::Refuse;
    p.format.clear(); // nothing is read
    if (!why.empty())
        p.reason += "; refused: " + why;
    p.refusal = std::move(e);
    return p;
}

} // namespace

Plan plan_request(const RequestFacts &f)
{
    const std::string &src = f.clone.source_label;
    const std::string &dst = f.dst_label;
    const Decision d = decide_clone(f.clone);
    Plan p;
    p.method = d.method;
    p.reason = d.reason;
    if (!f.source_reachable) // nothing can read it: neither clone nor copy
        return refuse(p, "", f.reflink ? reflink_refusal(dst, p.reason)
                                       : plain_error(RBDC_ERR_NO_POOL, -ENOENT,
                                                     "cannot copy " + src + " into " + dst + ": it is in Ceph cluster " +
                                                         f.clone.source_fsid +
                                                         ", which no active RBD pool of this daemon reaches"));
    if (d.method == Method::Clone) {
        p.step = Step::Clone;
        return p;
    }
    if (f.copy.format.empty())
        return refuse(p, f.copy.error,
                      plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, "cannot create " + dst + " from " + src + ": " + f.copy.error));
    p.format = f.copy.format;
    if (p.format != "raw" && p.method != Method::CopyConvert) {
        p.method = Method::CopyConvert;
        p.reason += "; it is a " + p.format + " image, converted to raw";
    }
    auto unsafe = [&] {
        return plain_error(RBDC_ERR_INVALID_ARG, -EPERM,
                           "refusing to convert " + src + " into " + dst + ": " + f.header_problem);
    };
    // A cache entry is plain: never of an encrypted source's bytes, and its clones get their
    // own key only with layered encryption.
    const bool cache_usable = !f.clone.source_encrypted && (!f.clone.encrypt || f.clone.layered_encryption);
    if (f.cache_enabled && f.cache.cacheable && cache_usable) {
        // Converted once into the pool's image cache; a hit is a clone, so
        // --reflink is served by a hit and refused on a miss.
        if (!f.header_problem.empty() && !f.reflink)
            return refuse(p, f.header_problem, unsafe());
        p.step = Step::ViaCache;
        p.fill_cache = !f.reflink;
        return p;
    }
    p.reason += !f.cache_enabled             ? std::string("; the pool's image cache is off")
                : f.clone.source_encrypted ? std::string("; not cached: a source's bytes are never cached in the clear")
                : !cache_usable            ? std::string("; not cached: an encrypted volume is not cloned here")
                                           : "; not cached: " + f.cache.why_not;
    if (f.reflink)
        return refuse(p, "", reflink_refusal(dst, p.reason));
    if (!f.header_problem.empty())
        return refuse(p, f.header_problem, unsafe());
    p.step = Step::Copy;
    return p;
}

} // namespace rbdclone
