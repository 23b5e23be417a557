// The clone-or-fallback decision: clone copy-on-write only when every
// condition holds, else copy (converting where needed), and say why.
// Pure logic over facts gathered elsewhere, so each row is unit-tested.
#pragma once

#include <string>

namespace rbdclone {

struct CloneFacts {
    std::string source_label;          // for messages: "RBD image 'images/golden'"
    bool source_is_rbd = false;
    std::string source_kind;           // when not RBD: "file", "block device", ...
    std::string source_fsid;           // cluster of an RBD source
    std::string dest_fsid;
    std::string declared_format;       // "" when the caller declared none
    std::string sniffed_format;        // from the image's bytes ("" = not read)
    bool image_format_1 = false;       // old RBD image format
    bool has_layering = true;          // layering feature on the source
    bool snapshot_given = false;       // the request names a snapshot
    bool may_snapshot = true;          // caller may create a snapshot (a snapshot of
                                       // ours that can be reused is, before one is made)
};

enum class Method { Clone, Copy, CopyConvert };

struct Decision {
    Method method = Method::Copy;
    std::string reason;
};

Decision decide_clone(const CloneFacts &f);

// How the copy path reads a source: the qemu format to convert from
// ("raw" = the bytes are the disk), or why it cannot.  The declared format
// wins when it names a container (and the bytes must agree); a source
// declared raw, or not declared, is read as what its bytes are, so a qcow2
// stored as "raw" becomes its guest-visible contents, never a disk holding
// a qcow2 header.
struct CopyFormat {
    std::string format; // "" when refused
    std::string error;  // why not
};
CopyFormat copy_format(const std::string &declared, const std::string &sniffed);

const char *method_name(Method m);

} // namespace rbdclone
