// Creating a new RBD image from a byte source so that users never see a
// half-written volume: the bytes go into a hidden image named
// "<name>.rbdclone-partial-<random>", renamed to <name> only once complete.
// A partial image is never listed as a volume; on any failure it is
// removed, and one left behind by a daemon that died (no watcher, older than
// a few seconds) is removed at the next pool refresh.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ceph/encryption.hpp"
#include "ceph/names.hpp"
#include "ceph/pool.hpp"
#include "io/copy_engine.hpp"

namespace rbdclone {

class ImportMark;

// A new image under a hidden name ("<name>.rbdclone-partial-<random>") until it is published
// (renamed to its name); removed, with any snapshot a sealer gave it, if it goes unpublished.
class HiddenImage {
  public:
    // Fails when `name` exists already. Creates nothing: the caller makes `partial()` (by
    // create_volume, a clone, qemu-img).
    static Result<std::unique_ptr<HiddenImage>> reserve(Pool &dst, const std::string &name);
    ~HiddenImage();
    HiddenImage(const HiddenImage &) = delete;
    HiddenImage &operator=(const HiddenImage &) = delete;

    const std::string &partial() const { return partial_; }
    // Renames it to its name (someone who took the name meanwhile: RBDC_ERR_EXISTS).
    Status publish();

  private:
    HiddenImage(Pool &dst, std::string name);
    Pool &dst_;
    std::string name_, partial_;
    std::unique_ptr<ImportMark> running_;
    bool published_ = false;
};

// Copies src into a new image `name` of `capacity` bytes (0 = the source's
// size; smaller than the source is an error naming both sizes); with `key`,
// an encrypted image whose guest sees those bytes.
// `seal`, when given, runs on the complete hidden image before it is
// renamed (e.g. to add metadata and a snapshot that must exist as soon as
// the name does).
using ImageSealer = std::function<Status(const std::string &partial, const CopyStats &stats)>;
Result<CopyStats> import_image(Pool &dst, const std::string &name, uint64_t capacity, ByteSource &src,
                               const CopyOptions &opts = {}, const ImageSealer &seal = nullptr,
                               const VolumeKey *key = nullptr);

// The general form: `fill` writes the bytes into the hidden image (created
// with `capacity` bytes, zero-filled; 0 = source_size); source_size is what the source holds.
using ImageFiller = std::function<Result<CopyStats>(const std::string &partial)>;
Result<CopyStats> import_with(Pool &dst, const std::string &name, uint64_t capacity, uint64_t source_size,
                              const std::string &source_label, const ImageFiller &fill,
                              const ImageSealer &seal = nullptr);

// Removes the partial image `partial` if nobody is writing it any more (no
// import of this process, no watcher, older than a few seconds).
void remove_if_stale(Pool &pool, const std::string &partial);

} // namespace rbdclone
