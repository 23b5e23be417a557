// What each request of libvirt on a pool's contents does, from start to end: the work of
// this process it waits for (an upload still being written, a background flatten), the
// operation itself, and what follows it (the pool's flatten policy after a clone; a failed
// create remembered, so that libvirt's undo of it deletes nothing).  capi.cpp translates
// between the C interface and these; what it answers without them is the pool registry's
// (connecting, finding and forgetting a pool) and pure checks (a name, a pool's policy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "create/create_request.hpp"
#include "lifecycle/volume_ops.hpp"
#include "refresh/pool_refresh.hpp"
#include "stream/transfer.hpp"

namespace rbdclone {

// pool-info: Ceph's figures for the pool.
Result<PoolUsage> pool_stat_request(Pool &pool);

// pool-refresh (also at pool-start): cb for every volume (refresh/pool_refresh.hpp).
Status pool_list_request(const std::shared_ptr<Pool> &pool, AllocMode mode,
                         const std::function<bool(const std::string &, const VolumeInfo &)> &cb);

// vol-info, vol-dumpxml: one volume.
Result<VolumeInfo> volume_info_request(Pool &pool, const std::string &name, AllocMode mode);

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

// vol-upload: the stream the client writes into (stream/transfer.hpp); a download or a
// delete of the volume waits until it is complete.
Result<std::unique_ptr<UploadIntake>> upload_request(const std::shared_ptr<Pool> &pool, const std::string &name,
                                                     uint64_t offset, uint64_t length, const VolumeKey *key);

// vol-download: waits for an upload still being written into the volume first.
Result<std::shared_ptr<DownloadStream>> download_request(const std::shared_ptr<Pool> &pool, const std::string &name,
                                                         uint64_t offset, uint64_t length, bool sparse,
                                                         const VolumeKey *key);

} // namespace rbdclone
