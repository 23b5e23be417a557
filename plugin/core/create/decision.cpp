#include "create/decision.hpp"

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
    if (f.image_format_1)
        return {Method::Copy, src + " is an RBD image format 1, which cannot be layered"};
    if (!f.has_layering)
        return {Method::Copy, src + " lacks the RBD 'layering' feature"};
    if (!f.snapshot_given && !f.may_snapshot)
        return {Method::Copy, "the Ceph user may not create a snapshot of " + src +
                                  " and none of ours can be reused"};
    std::string why = "same cluster " + f.dest_fsid + ", " +
                      (f.sniffed_format.empty() ? std::string("raw") : f.sniffed_format) + ", layering";
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

} // namespace rbdclone
