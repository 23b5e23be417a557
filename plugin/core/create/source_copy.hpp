// The copy a create runs when it does not clone: a source's guest-visible bytes into a new
// image of dst, hidden until complete (create/image_import.hpp). Raw bytes go through the copy
// engine; containers through qemu: qemu-img into RBD when this host's qemu-img has the rbd
// driver, else read through qemu-nbd. The facts that chose the copy are create/source.hpp's.
#pragma once

#include <cstdint>
#include <string>

#include "ceph/encryption.hpp"
#include "ceph/pool.hpp"
#include "create/image_import.hpp"
#include "create/source.hpp"

namespace rbdclone {

// Writes src's guest-visible bytes into `image` of dst, reading src as `format` (the plan's:
// "raw" = its bytes are the disk, else the container qemu converts). Its header must have
// passed Source::header_problem(). With checksum, stats carry the checksum of the guest-visible bytes
// (an image cache entry's). With dst_key the new image is encrypted (containers then go through
// the reader: qemu-img cannot write librbd's encryption).
Result<CopyStats> copy_source(Source &src, const std::string &format, Pool &dst, const std::string &image,
                              uint64_t capacity, bool checksum, const ImageSealer &seal = nullptr,
                              const VolumeKey *dst_key = nullptr);

} // namespace rbdclone
