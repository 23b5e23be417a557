// Names a new RBD image may have.  RBD itself accepts almost anything, but
// the name must also be addressable unambiguously by libvirt ("pool/image"
// paths), by qemu (which reads '@' as a snapshot separator and ':' as an
// option separator in its rbd: filenames) and by the cluster (the
// rbd_id.<name> object's name is limited).
#pragma once

#include <string>

namespace rbdclone {

// Longest image name: osd_max_object_name_len (2048) minus "rbd_id.".
inline constexpr size_t kMaxImageNameBytes = 2041;

// Why `name` cannot name a new image, or "" when it can.
std::string image_name_problem(const std::string &name);

} // namespace rbdclone
