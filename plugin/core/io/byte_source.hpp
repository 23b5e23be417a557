// Where the copy path reads an image's guest-visible bytes from: a file or
// block device, an RBD image (of any cluster), or qemu's block layer (for
// containers such as qcow2, see qemu_reader.hpp).  A source also says which
// ranges may hold data, so holes are never read or written.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "ceph/encryption.hpp"
#include "ceph/handles.hpp"

namespace rbdclone {

// Threads that read one source at once in a copy (a qemu-nbd serving a
// container is started with as many connections).
inline constexpr unsigned kSourceReaders = 4;

struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
};

class ByteSource {
  public:
    virtual ~ByteSource() = default;
    virtual const std::string &label() const = 0;
    virtual uint64_t size() const = 0;
    // Calls cb, in increasing order, for ranges that may hold data; bytes
    // outside them read as zeros.  The default is the whole image.
    virtual Status for_each_data_extent(const std::function<Status(const Extent &)> &cb);
    // Reads exactly len bytes at off (off + len <= size()).
    virtual Status read_exact(uint64_t off, char *buf, size_t len) = 0;
};

// A regular file or a block device, read-only.  Holes come from
// SEEK_DATA/SEEK_HOLE where the file system supports them.
Result<std::unique_ptr<ByteSource>> open_file_source(const std::string &path);

// An RBD image (at a snapshot when snap is not empty), read-only.  Data
// ranges come from a diff against nothing, parents included.  The handle
// also serves the clone path's questions (features, snapshots).
class RbdSource final : public ByteSource {
  public:
    // encrypted: its key is loaded on img; librbd's allocation map counts stored bytes, not
    // the guest's, so every range is read (zeros are still found and skipped).
    RbdSource(ImageHandle img, std::string label, uint64_t size, bool encrypted = false)
        : img_(std::move(img)), label_(std::move(label)), size_(size), encrypted_(encrypted) {}
    const std::string &label() const override { return label_; }
    uint64_t size() const override { return size_; }
    Status for_each_data_extent(const std::function<Status(const Extent &)> &cb) override;
    Status read_exact(uint64_t off, char *buf, size_t len) override;
    rbd_image_t image() const { return img_.get(); }

  private:
    ImageHandle img_;
    std::string label_;
    uint64_t size_;
    bool encrypted_;
};

// `id`, when known, opens it by id (one round trip fewer); `key`: an encrypted image's, loaded.
Result<std::unique_ptr<RbdSource>> open_rbd_source(rados_ioctx_t io, const std::string &image,
                                                   const std::string &snap, const std::string &label,
                                                   const std::string &id = "", const VolumeKey *key = nullptr);

// The first bytes (up to `head`) and the last `tail` bytes of a source,
// for format sniffing.
Status read_head_tail(ByteSource &src, size_t head, size_t tail, std::string &head_out,
                      std::string &tail_out);

} // namespace rbdclone
