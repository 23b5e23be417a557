// The source of a request (vol-create-from, vol-clone, vol-create with a
// <backingStore>): a file, a block device, or an RBD image of this or
// another cluster, opened once.  It carries what the planner needs to know
// (its label, what its first bytes are, how a copy would read it, whether
// its header may be converted, its cache identity) and what the copy
// (create/source_copy.hpp) needs to read it (its bytes as they are, or the
// container through qemu).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ceph/cluster.hpp"
#include "ceph/rbd_place.hpp"
#include "ceph/snapshot_lock.hpp"
#include "create/clone.hpp"
#include "create/image_cache.hpp"
#include "create/plan.hpp"
#include "io/byte_source.hpp"
#include "io/qemu_reader.hpp"

namespace rbdclone {

class Source {
  public:
    // A local file or block device; kind names it in messages ("file",
    // "block device", ...).
    static Result<std::unique_ptr<Source>> open_file(const std::string &path, const std::string &kind,
                                                     const std::string &declared_format);
    // An RBD image, at place.where.snap when one is given.  Opened under the
    // shared lock of its snapshots (snapshot_lock.hpp), taken first, so that
    // a clone from it can use this very handle; a Ceph user who may not
    // take the lock opens it without.  The head of an image whose newest
    // snapshot is ours and equal to it is not opened at all: read as
    // ceph/header_view.hpp reads it (two round trips), the clone reuses that
    // snapshot, and librbd opens the image only if a copy reads it.
    // key: an encrypted image's, loaded: it is read as its guest sees it (never cloned).
    static Result<std::unique_ptr<Source>> open_rbd(const RbdPlace &place, const std::string &declared_format,
                                                    const VolumeKey *key = nullptr);

    // "'<path>'", or the RBD image's place.where.label_at().
    const std::string &label() const { return label_; }
    // The facts the planner reads (CloneFacts' source part).
    void describe(CloneFacts &f) const;
    // How a copy reads it (copy_format of the declared and sniffed formats).
    const CopyFormat &copy_format() const { return copy_; }
    // Why its header must not be given to qemu ("" = it may).
    std::string header_problem() const;
    // Its identity in the image cache, in the copy's format.
    CacheIdentity cache_identity() const;

    // RBD only: the place, the read-only handle (at the snapshot; null
    // while not opened: see known_snapshot) and size.
    const RbdPlace &place() const { return place_; }
    rbd_image_t image() const;
    uint64_t size() const { return size_; }
    // RBD only: the snapshot of ours a clone reuses, known equal to the
    // head without opening it (null: the clone reads the handle).
    const KnownSnapshot *known_snapshot() const { return known_ ? &*known_ : nullptr; }
    // Whether the handle was opened under the clone lock, still held.
    bool opened_under_clone_lock() const { return clone_lock_.held(); }
    // A copy needs no lock: let removals of our snapshots go on.
    void release_clone_lock() { clone_lock_ = SnapshotLock(); }

    // What a copy reads (create/source_copy.hpp): the bytes as they are (opened now if they
    // were not: an RBD head read without librbd), or the container through qemu.
    Result<ByteSource *> bytes();
    Result<std::unique_ptr<QemuImage>> container() const;
    bool is_rbd() const { return is_rbd_; }
    bool encrypted() const { return key_.has_value(); }
    const std::string &path() const { return path_; }

  private:
    Source() = default;
    Status sniff();
    void sniff(std::string head, const std::string &tail);

    std::string label_;
    std::string kind_;                // non-RBD
    std::string path_;                // non-RBD
    std::string declared_;
    std::string head_, sniffed_;
    CopyFormat copy_;
    bool is_rbd_ = false;
    bool format_1_ = false, layering_ = false;
    RbdPlace place_;
    SnapshotLock clone_lock_;           // RBD: taken before the open
    std::string image_id_;              // RBD: "" = format 1 or unknown
    std::optional<KnownSnapshot> known_; // RBD: read by its header view, not opened
    uint64_t size_ = 0;
    std::unique_ptr<ByteSource> bytes_; // a FileSource or an RbdSource (null: not opened yet)
    std::optional<VolumeKey> key_;      // RBD: an encrypted source's key
};

} // namespace rbdclone
