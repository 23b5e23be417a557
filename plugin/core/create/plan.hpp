// A request is a plan: from the facts of a request (its source, the
// destination, the pool's policy, the flags) one function decides what is
// done and why: clone copy-on-write when every condition holds, else copy
// (converting where needed), directly or through the pool's image cache,
// or refuse.  Pure logic over facts gathered elsewhere (create/source.hpp),
// so each row is unit-tested; carrying the plan out is create_request.cpp's.
#pragma once

#include <string>

#include "base/status.hpp"

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
    bool source_encrypted = false;     // read with its own key (librbd's encryption)
    bool encrypt = false;              // the new volume is encrypted with its own key
    bool layered_encryption = false;   // librbd gives a clone its own key (Ceph >= 18)
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

// What is known of the source's image cache identity (image_cache.hpp).
struct CacheFacts {
    bool cacheable = false;
    std::string why_not; // when not
};

struct RequestFacts {
    std::string dst_label;           // "RBD image 'vms/disk1'"
    CloneFacts clone;                // the source and the destination's cluster
    bool source_reachable = true;    // false: its cluster is reached by no pool of this daemon
    CopyFormat copy;                 // how a copy would read it
    std::string header_problem;      // why its header must not reach qemu ("" = it may)
    bool reflink = false;            // clone or fail, never copy
    bool cache_enabled = false;      // the destination pool's image cache
    CacheFacts cache;
};

enum class Step {
    Clone,    // clone the source (from the named snapshot, or one of ours)
    Copy,     // copy (and convert) it into the new volume
    ViaCache, // clone the cache entry of the source (a miss copies it into the entry first)
    Refuse,
};

struct Plan {
    Step step = Step::Refuse;
    Method method = Method::Copy;   // what happens to the bytes
    std::string format;             // Copy/ViaCache: how the copy reads the source ("raw" or a container)
    std::string reason;             // why: what the decision log says
    bool fill_cache = false;        // ViaCache: a miss fills the entry (never with reflink)
    Error refusal;                  // Refuse: the error returned
};

Plan plan_request(const RequestFacts &f);

// The refusal of a request for a clone (--reflink) that would be a copy.
Error reflink_refusal(const std::string &dst_label, const std::string &reason);

} // namespace rbdclone
