// Creating a new RBD image from a byte source so that users never see a
// half-written volume: the bytes go into a hidden image named
// "<name>.rbdclone-partial-<random>", renamed to <name> only once complete.
// A partial image is never listed as a volume; on any failure it is
// removed, and one left behind by a daemon that died (no watcher, older than
// a few seconds) is removed at the next pool refresh.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ceph/names.hpp"
#include "ceph/pool.hpp"
#include "io/copy_engine.hpp"

namespace rbdclone {

// Copies src into a new image `name` of `capacity` bytes (0 = the source's
// size; smaller than the source is an error naming both sizes).
// `seal`, when given, runs on the complete hidden image before it is
// renamed (e.g. to add metadata and a snapshot that must exist as soon as
// the name does).
using ImageSealer = std::function<Status(const std::string &partial, const CopyStats &stats)>;
Result<CopyStats> import_image(Pool &dst, const std::string &name, uint64_t capacity, ByteSource &src,
                               const CopyOptions &opts = {}, const ImageSealer &seal = nullptr);

// The general form: `fill` writes the bytes into the hidden image (created
// with `capacity` bytes, zero-filled); source_size is what the source holds.
using ImageFiller = std::function<Result<CopyStats>(const std::string &partial)>;
Result<CopyStats> import_with(Pool &dst, const std::string &name, uint64_t capacity, uint64_t source_size,
                              const std::string &source_label, const ImageFiller &fill,
                              const ImageSealer &seal = nullptr);

// Removes the partial image `partial` if nobody is writing it any more (no
// import of this process, no watcher, older than a few seconds).
void remove_if_stale(Pool &pool, const std::string &partial);

} // namespace rbdclone
