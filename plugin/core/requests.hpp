// What each volume request of libvirt does, from start to end: the work of
// this process it waits for (an upload still being written, a background
// flatten), the operation itself, and what follows it (the pool's flatten
// policy after a clone; a failed create remembered, so that libvirt's undo
// of it deletes nothing).  capi.cpp only translates between the C interface
// and these.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "create/create_request.hpp"
#include "lifecycle/volume_ops.hpp"

namespace rbdclone {

// vol-create: a plain image, or with key an encrypted one, formatted under a hidden name and
// renamed when complete (nothing is left by a failure, no one sees it plain).
Status create_request(Pool &pool, const std::string &name, uint64_t capacity, const VolumeKey *key);

// vol-create-from, vol-clone, vol-create with a <backingStore> (create/create_request.hpp
// draws its steps); with key, the new volume is encrypted.
Status create_from_request(const std::shared_ptr<Pool> &dst, const std::string &name, uint64_t capacity,
                           const SourceRequest &src, const VolumeKey *key, bool reflink);

// true: removed; false: there was nothing to remove.
Result<bool> delete_request(Pool &pool, const std::string &name, bool delete_snapshots);

Status resize_request(Pool &pool, const std::string &name, uint64_t capacity, bool allow_shrink);

Status flatten_request(Pool &pool, const std::string &name);

// key: an encrypted volume's, which the wipe goes through (its header stays).
Status wipe_request(Pool &pool, const std::string &name, WipeMode mode, const VolumeKey *key);

} // namespace rbdclone
