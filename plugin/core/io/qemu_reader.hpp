// Reading the guest-visible bytes of a container image (qcow2, vmdk, ...)
// through qemu's own block layer: qemu-nbd serves the image read-only on a
// private UNIX socket and we read it with libnbd (one connection per reader
// thread), straight into the copy pipeline (no temporary copy on local disk).
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

#include "base/subprocess.hpp"
#include "ceph/cluster.hpp"
#include "io/byte_source.hpp"

namespace rbdclone {

// A container image ready for qemu: its JSON (format given, "backing":
// null), a private work directory (ceph.conf and keyring of an RBD source),
// and `qemu-img check` passed.
class QemuImage {
  public:
    // A local file (or block device) holding a `format` container.
    static Result<std::unique_ptr<QemuImage>> file(const std::string &path, const std::string &format);
    // An RBD image holding a `format` container, reached with `params`.
    static Result<std::unique_ptr<QemuImage>> rbd(const ClusterParams &params, const std::string &pool,
                                                  const std::string &image, const std::string &snap,
                                                  const std::string &format, const std::string &label);

    const std::string &label() const { return label_; }
    // The guest-visible size (qemu-img info).
    Result<uint64_t> virtual_size();
    // Converts it with qemu-img straight into the existing, zero-filled RBD
    // image pool/image (qemu's rbd driver), writing no zero blocks.
    Status convert_into(const ClusterParams &dst, const std::string &pool, const std::string &image);
    // Reads it through qemu-nbd instead (one connection per reader).
    static Result<std::unique_ptr<ByteSource>> reader(std::unique_ptr<QemuImage> img);

    QemuImage(WorkDir dir, std::string json, std::string label, std::string format)
        : dir_(std::move(dir)), json_(std::move(json)), label_(std::move(label)), format_(std::move(format)) {}

  private:
    WorkDir dir_;
    std::string json_;
    std::string label_;
    std::string format_;
};

// Whether this host's qemu-img has the rbd driver (qemu-block-extra).
bool qemu_img_writes_rbd();

// Writes NAME.conf (and NAME.keyring) for a client of `params` into dir;
// the conf's path.  Keys never appear on a command line.
Result<std::string> write_ceph_client_conf(const WorkDir &dir, const std::string &name, const ClusterParams &params);

// Reads what `qemu-img check --output=json` printed and its exit status:
// the problems found, or "" when the image is sound enough to read (a
// report that cannot be read is a problem).
std::string qemu_check_problems(const std::string &json, int exit_status);

// The image's own guest-visible size in what `qemu-img info --output=json`
// printed for it: the top-level "virtual-size" (never a child node's).
// Malformed JSON, a missing key or a wrong type is an error naming `label`.
Result<uint64_t> qemu_info_virtual_size(const std::string &json, const std::string &label);

} // namespace rbdclone
