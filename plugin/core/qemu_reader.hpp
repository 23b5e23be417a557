// Reading the guest-visible bytes of a container image (qcow2, vmdk, ...)
// through qemu's own block layer: qemu-nbd serves the image read-only on a
// private UNIX socket and we read it with a minimal NBD client, straight
// into the copy pipeline (no temporary copy on local disk).
//
// The format is always given (never probed) and the image is opened with
// "backing": null, so a backing file is never opened; images whose header
// names a backing or external data file are refused before qemu runs at all
// (image_safety.hpp), and qcow2 images must pass `qemu-img check` first,
// because qemu reads the clusters of a truncated qcow2 as zeros without
// complaint.
#pragma once

#include <memory>
#include <string>

#include "byte_source.hpp"
#include "cluster.hpp"

namespace rbdclone {

// A local file (or block device) holding a `format` container.
Result<std::unique_ptr<ByteSource>> open_qemu_file_source(const std::string &path, const std::string &format);

// An RBD image holding a `format` container, reached with `params`.
Result<std::unique_ptr<ByteSource>> open_qemu_rbd_source(const ClusterParams &params, const std::string &pool,
                                                         const std::string &image, const std::string &snap,
                                                         const std::string &format, const std::string &label);

// Reads what `qemu-img check --output=json` printed and its exit status:
// the problems found, or "" when the image is sound enough to read.
std::string qemu_check_problems(const std::string &json, int exit_status);

} // namespace rbdclone
