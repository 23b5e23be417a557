// Copy-on-write clones (RBD layering) from a shared, reused snapshot.
#pragma once

#include <cstdint>
#include <string>

#include "pool.hpp"

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

// Clones src_pool/src_name into dst_pool/dst_name (same cluster).  A
// capacity larger than the source grows the clone; smaller is an error.
// On any failure nothing new is left behind but a (reusable) snapshot.
Result<CloneOutcome> clone_image(Pool &src_pool, const std::string &src_name, Pool &dst_pool,
                                 const std::string &dst_name, uint64_t capacity);

} // namespace rbdclone
