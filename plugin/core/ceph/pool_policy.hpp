// A pool's policy for clones and deletion, from the pool XML's `rbd`
// namespace:
//
//   <rbd:clone format='auto|1|2' max_depth='N' flatten='never|depth|always'
//              delete='refuse|deferred'/>
//   <rbd:image_cache enabled='yes|no' max_size='SIZE'/>
//
// The glue hands over every attribute as (element, attribute, value); this
// module validates them (errors name the element, the attribute and what is
// accepted) and turns them into a PoolPolicy.  Pure: no Ceph, no libvirt.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.hpp"

namespace rbdclone {

enum class CloneFormat { Auto, V1, V2 };
enum class FlattenPolicy { Never, Depth, Always };
enum class DeletePolicy { Refuse, Deferred };

inline constexpr unsigned kDefaultMaxDepth = 5; // Cinder's rbd_max_clone_depth
inline constexpr unsigned kMaxMaxDepth = 1000;

struct PoolPolicy {
    CloneFormat clone_format = CloneFormat::Auto;
    FlattenPolicy flatten = FlattenPolicy::Never;
    unsigned max_depth = kDefaultMaxDepth; // used when flatten == Depth
    DeletePolicy on_delete = DeletePolicy::Refuse;
    bool cache_enabled = false;   // convert once, clone forever (image_cache.hpp)
    uint64_t cache_max_size = 0;  // bytes the cache entries store (allocated objects, from
                                  // fast-diff where an entry has it); 0 = no limit
};

struct PolicyAttribute {
    std::string element; // "clone"
    std::string name;     // "max_depth"
    std::string value;
};

// Every attribute known, an element given twice, an unknown element or
// attribute, a bad value or a contradiction is an error
// (RBDC_ERR_INVALID_ARG) naming them.  max_depth alone implies
// flatten='depth'; flatten='depth' alone uses max_depth 5.  max_size is
// bytes or a number with a binary unit (K, M, G, T, with or without "iB").
Result<PoolPolicy> parse_pool_policy(const std::vector<PolicyAttribute> &attrs);

} // namespace rbdclone
