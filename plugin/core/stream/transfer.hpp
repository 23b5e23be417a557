// vol-upload and vol-download for RBD images.  An RBD image has no file
// descriptor, so the glue gives libvirt a stream driver of its own, backed
// by the stream bridge (stream_bridge.hpp), and a worker thread here moves
// the bytes between the bridge and librbd: uploads through the same aio
// pipeline as copies (zero blocks and holes written as zeroes, which leaves
// unallocated objects alone), downloads along the image's allocated extents
// when the stream is sparse.  Other operations on an image wait for a
// running upload into it to finish, so a finished vol-upload is never
// followed by a read of stale bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ceph/pool.hpp"
#include "ceph/encryption.hpp"
#include "stream/stream_bridge.hpp"

namespace rbdclone {

// Checks the range against the image (an offset past the end or a length
// reaching past it is an error; length 0 = up to the end), opens the image
// and starts the worker.  A stream carrying more than the range is told so
// when it finishes (UploadIntake).
Result<std::unique_ptr<UploadIntake>> start_upload(std::shared_ptr<Pool> pool, const std::string &name,
                                                   uint64_t offset, uint64_t length,
                                                   const VolumeKey *key = nullptr);
Result<std::shared_ptr<DownloadStream>> start_download(std::shared_ptr<Pool> pool, const std::string &name,
                                                       uint64_t offset, uint64_t length, bool sparse,
                                                       const VolumeKey *key = nullptr);

// Waits (bounded) until no upload into pool/name runs in this process.
void wait_for_uploads(const Pool &pool, const std::string &name);

} // namespace rbdclone
