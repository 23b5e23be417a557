// vol-upload and vol-download for RBD images.  An RBD image has no file
// descriptor, so libvirt's stream is bridged through a pipe: the glue hands
// libvirt one end, and a worker thread here moves the bytes between the
// other end and librbd (uploads through the same aio pipeline as copies,
// zero blocks written as zeroes).  Other operations on an image wait for a
// running upload into it to finish, so a finished vol-upload is never
// followed by a read of stale bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "pool.hpp"

namespace rbdclone {

struct TransferPlan {
    uint64_t offset = 0;
    uint64_t length = 0; // bytes the stream may carry
};

// Checks the range against the image (offset past the end or a length
// reaching past it is an error; length 0 = up to the end) and starts a
// worker that reads the pipe `fd` until EOF and writes the image.  Takes
// ownership of fd in every case.
Result<TransferPlan> start_upload(std::shared_ptr<Pool> pool, const std::string &name, int fd, uint64_t offset,
                                  uint64_t length);

// Same for reading the image into the pipe `fd`.
Result<TransferPlan> start_download(std::shared_ptr<Pool> pool, const std::string &name, int fd, uint64_t offset,
                                    uint64_t length);

// Waits (bounded) until no upload into pool/name runs in this process.
void wait_for_uploads(const Pool &pool, const std::string &name);

} // namespace rbdclone
