// Streams a source's guest-visible bytes into an RBD image: the calling
// thread walks the source's data extents and queues chunk-sized pieces,
// `readers` threads read them into the writer's buffers, and up to
// `in_flight` librbd aio writes run, so memory stays at in_flight * chunk
// whatever the image size.  Ranges the source
// reports as holes are never read; all-zero blocks in the data are not
// written (the destination is a fresh, zero-filled image) or are written as
// zeroes (overwriting an existing image).
#pragma once

#include <chrono>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/byte_source.hpp"

namespace rbdclone {

// Buffers come straight from mmap and go back with munmap: malloc would
// keep freed 4 MiB chunks in per-thread arenas (glibc raises its mmap
// threshold after the first free), and libvirtd's RSS would creep up with
// every copy.
struct MappedBuffer {
    char *p = nullptr;
    size_t len = 0;
    MappedBuffer() = default;
    MappedBuffer(const MappedBuffer &) = delete;
    MappedBuffer &operator=(const MappedBuffer &) = delete;
    MappedBuffer(MappedBuffer &&o) noexcept : p(std::exchange(o.p, nullptr)), len(o.len) {}
    MappedBuffer &operator=(MappedBuffer &&o) noexcept
    {
        MappedBuffer old(std::move(*this));
        p = std::exchange(o.p, nullptr);
        len = o.len;
        return *this;
    }
    ~MappedBuffer();
    bool allocate(size_t n);
    char *get() const { return p; }
    explicit operator bool() const { return p != nullptr; }
};

enum class ZeroPolicy {
    Skip,        // destination reads zeros there already (new image)
    WriteZeroes, // destination may hold old data there (upload)
};

struct CopyOptions {
    size_t chunk = 2u << 20;        // bytes per read and largest write (2 MiB measured
                                    // 1.4x faster than whole 4 MiB objects)
    unsigned in_flight = 16;        // aio writes outstanding at most (the write probe
                                    // found depth 16 1.1-1.3x faster than 8 in most searches)
    size_t zero_block = 64u << 10;  // granularity of zero detection
    ZeroPolicy zeros = ZeroPolicy::Skip;
    uint64_t dest_offset = 0;       // where source offset 0 lands
    unsigned readers = kSourceReaders; // threads reading the source in parallel
    // Writes in flight and none completing for this long: the cluster
    // stopped answering (librbd's aio writes are not bounded by
    // rados_osd_op_timeout).  The copy fails with ETIMEDOUT, its buffers
    // live on until librbd lets go of them.  0 = wait forever.
    std::chrono::milliseconds stall_timeout{0};
    bool checksum = false;          // compute CopyStats::checksum (content_checksum)
    // A destination that must be written in whole units: librbd 16's encryption decrypts the
    // unwritten rest of an object it stores into noise, so an encrypted image is written object
    // by object (units of dense_unit bytes, the first ending at dense_unit - dense_phase), each
    // skipped only when all of it is a hole or zeros. 0 = off. Needs chunk = zero_block =
    // dense_unit.
    uint64_t dense_unit = 0;
    uint64_t dense_phase = 0;
};

// The stall limit for writes through a pool's connection: its
// rados_osd_op_timeout plus a margin (0, i.e. none, when that is 0).
std::chrono::milliseconds stall_limit(rados_t cluster);

// Closes an image in a detached thread: closing waits for the image's
// writes in flight, which a stalled cluster may hold indefinitely.
// `keep` (the cluster connection) lives until the close is done.
void close_in_background(ImageHandle img, std::shared_ptr<void> keep);

struct CopyStats {
    uint64_t bytes_read = 0;
    uint64_t bytes_written = 0;
    uint64_t bytes_skipped = 0; // zero blocks in the data, not written
    uint64_t checksum = 0;      // with CopyOptions::checksum: of every byte copied
    bool checksum_of_stored = false; // checksum is of the source as stored (a container file)
};

// A checksum of `len` bytes found at `offset` of a disk: the sum (mod 2^64)
// over its non-zero 8-byte words of a mix of the word and its position
// (x ^ (x >> 29) of the word times an odd key of its index; ~10 GB/s).
// Sums of pieces equal the checksum of the whole, whatever order the pieces
// come in and wherever holes are (they count as zeros), as long as pieces
// split at multiples of 8 bytes.
uint64_t content_checksum(const char *buf, size_t len, uint64_t offset);

// Cuts a source's data extents (in increasing order) into the pieces a copy reads and writes:
// each ends at a unit boundary (the chunk size; a dense destination's unit shifted by its
// phase), so writes map to whole objects; for a dense destination every extent is widened to
// whole units (clipped to the source), and no range is cut twice.
class PieceCutter {
  public:
    PieceCutter(const CopyOptions &opts, uint64_t source_size);
    // Calls push for each piece of e in order; false as soon as push returns false.
    bool cut(const Extent &e, const std::function<bool(const Extent &)> &push);

  private:
    uint64_t unit_end(uint64_t off) const { return ((off + phase_) / unit_ + 1) * unit_ - phase_; }
    uint64_t unit_start(uint64_t off) const { return off + phase_ < unit_ ? 0 : (off + phase_) / unit_ * unit_ - phase_; }
    uint64_t unit_, phase_, size_;
    bool dense_;
    uint64_t covered_ = 0; // dense: where the pieces cut so far end
};

// Copies [0, src.size()) of src to dst at opts.dest_offset, then flushes.
// dst must read zeros where src has holes (a new image): holes are skipped.
Result<CopyStats> copy_to_image(ByteSource &src, rbd_image_t dst, const std::string &dst_label,
                                const CopyOptions &opts);

// content_checksum of every byte of a source, read in chunks along its
// data extents (holes count as zeros).
Result<uint64_t> source_checksum(ByteSource &src);

// The runs [begin, end) of `len` bytes that hold a non-zero byte, at `block`
// granularity (a run ends at len).  Adjacent non-zero blocks form one run.
std::vector<std::pair<size_t, size_t>> nonzero_runs(const char *buf, size_t len, size_t block);

bool is_all_zero(const char *buf, size_t len);

// The write half of the pipeline, shared by copies (several reader
// threads) and uploads (one): a fixed set of buffers, each busy from
// acquire() until the aio writes submitted from it complete.  Thread-safe.
class ImageWriter {
  public:
    ImageWriter(rbd_image_t dst, std::string dst_label, const CopyOptions &opts);
    ~ImageWriter();
    ImageWriter(const ImageWriter &) = delete;
    ImageWriter &operator=(const ImageWriter &) = delete;

    // A free buffer of opts.chunk bytes (waits for one).  Fails when an
    // earlier write failed or the copy was cancelled.
    Result<size_t> acquire();
    char *data(size_t slot);
    // The acquired slot's buffer itself (opts.chunk bytes): the acquirer may
    // exchange it for another buffer of that size, one it filled already.
    MappedBuffer &buffer(size_t slot);
    // Writes len bytes of the slot's buffer at off (zero blocks skipped or
    // written as zeroes, per opts.zeros); the slot is free again once its
    // writes complete.
    Status submit(size_t slot, uint64_t off, size_t len);
    // Makes [off, off + len) read as zeros (write_zeroes, which leaves
    // unallocated objects alone), as one slot's worth of work.
    Status zero(uint64_t off, uint64_t len);
    // Gives a slot back unused (its read failed).
    void release(size_t slot);
    // Records a failure seen elsewhere (a read) so that everyone stops.
    void fail(const Error &e);
    // Waits for every write and flushes; the first error, if any.  A
    // stalled cluster (opts.stall_timeout) is an ETIMEDOUT error.
    Status finish();
    CopyStats stats() const;

  private:
    struct Slot;
    struct State;
    // Runs in a librados thread: never throws (an exception there ends the process).
    static void on_complete(rbd_completion_t c, void *arg) noexcept;
    Status first_error();
    Status aio_write(size_t slot, uint64_t off, const char *data, size_t len);
    void put(size_t slot);
    // Waits until no slot is busy; false when the writes stalled.
    bool wait_idle();

    rbd_image_t dst_;
    std::string label_;
    CopyOptions opts_;
    // Shared with every write in flight: an abandoned writer's buffers go
    // when the last of its writes completes.
    std::shared_ptr<State> s_;
};

} // namespace rbdclone
