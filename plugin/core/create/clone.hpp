// Copy-on-write clones (RBD layering) from a shared, reused snapshot.
#pragma once

#include <cstdint>
#include <string>

#include "ceph/pool.hpp"
#include "ceph/rbd_place.hpp"

namespace rbdclone {

// Parses rbd_default_features: a number ("61") or names
// ("layering,exclusive-lock").  Unknown names are an error.
Result<uint64_t> parse_rbd_features(const std::string &text);

// Clone format for a cluster whose require_min_compat_client is `release`
// (e.g. "luminous"): 2 from mimic on, else 1.
int clone_format_for_release(const std::string &release);

// Extracts "require_min_compat_client" from `ceph osd dump -f json` output.
std::string min_compat_client_from_osd_dump(const std::string &json);

struct CloneOutcome {
    std::string snapshot;
    bool snapshot_created = false;
    int clone_format = 2;
};

// Clones src (an RBD place whose I/O context may snapshot it) into dst_pool/dst_name (same
// cluster), from src.where.snap when one is given, else from a snapshot of ours chosen or
// made.  `src_img` is the
// source opened read-only (at that snapshot), `size` its size;
// the caller has checked it is a layerable format 2 image.  A read-write
// handle is opened only when a snapshot must be created or protected.  A
// capacity larger than the source grows the clone; smaller is an error
// naming both sizes.  On any failure nothing new is left behind but a
// (reusable) snapshot.
// `under_lock`: src_img was opened after the caller took the shared
// snapshot lock of the source, which it holds until this returns (else
// clone_image takes it and opens a fresh handle itself).
// `known`: a snapshot of ours the caller found equal to the source's head,
// under the lock (ceph/header_view.hpp): it is reused, src_img is not read
// (it may be null).
struct KnownSnapshot {
    std::string name;
    bool is_protected = false;
};
Result<CloneOutcome> clone_image(const RbdPlace &src, rbd_image_t src_img, uint64_t size, Pool &dst_pool,
                                 const std::string &dst_name, uint64_t capacity, bool under_lock = false,
                                 const KnownSnapshot *known = nullptr);

} // namespace rbdclone
