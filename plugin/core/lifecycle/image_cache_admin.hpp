// The image cache's administration (create/image_cache.hpp makes and clones its entries): what
// the entries are and store, removing an unused one, and evicting past the pool's max_size.
// Used after a fill and by operators (tools/rbdclone-cache).
//
// Eviction: past max_size (what the entries store: their allocated objects, from fast-diff
// where an entry has it, else its virtual size), least recently used entries without clones are
// removed; an entry with clones stays (with the deferred delete policy, one evicted goes to the
// RBD trash instead, purged after its last clone).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ceph/pool.hpp"

namespace rbdclone {

struct CacheEntry {
    std::string name;
    std::string source;     // description
    uint64_t size = 0;      // virtual
    uint64_t stored = 0;    // bytes of its allocated objects (what max_size counts)
    size_t clones = 0;
    int64_t last_used = 0;  // unix time
    bool clones_known = true;

    // No clone depends on it: it may be removed.
    bool unused() const { return clones_known && clones == 0; }
};

// Threads that list the cache's entries at once.
inline constexpr size_t kCacheListWidth = 8;

// The entries of the pool's image cache, with what each stores and its
// clones (those of every snapshot, trashed clones included).
Result<std::vector<CacheEntry>> list_cache(Pool &pool);

// Removes an unused entry: its snapshots, the image and its lock object.
// Refused (-EBUSY) while a clone of it is under way; a snapshot that gained
// a clone since the entry was listed refuses to be unprotected, so a clone
// never loses its parent.
Status remove_cache_entry(Pool &pool, const CacheEntry &e);

// Evicts least recently used entries without clones while the entries
// store more than the pool's max_size (allocated objects, from fast-diff
// where the entry has it, else its virtual size).
void evict_cache(Pool &pool);

} // namespace rbdclone
