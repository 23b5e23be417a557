// The two halves of a vol-upload / vol-download stream, between libvirt's
// stream (the glue's stream driver, called from libvirtd's event loop,
// never blocking unless asked to) and a worker thread that talks to the
// image.  Memory is bounded by a few chunk buffers whatever the size, and
// sparse streams keep holes as holes in both directions:
//
//   upload:   glue --send / send_hole--> UploadIntake --> UploadStream --run(sink)--> image
//   download: image --run(source)--> DownloadStream --in_data / recv / skip_hole--> glue
//
// A ReadyFlag (an eventfd) is readable while the glue's next call would make
// progress; the glue watches it in libvirt's event loop.  No librbd here:
// the worker side talks to an UploadSink or a ByteSource, so this is tested
// with fakes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "io/copy_engine.hpp"
#include "io/byte_source.hpp"

namespace rbdclone {

// An eventfd that is readable exactly while set.  Not thread-safe by
// itself: its owner calls set() under its own lock.
class ReadyFlag {
  public:
    ReadyFlag();
    ~ReadyFlag();
    ReadyFlag(const ReadyFlag &) = delete;
    ReadyFlag &operator=(const ReadyFlag &) = delete;
    bool valid() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void set(bool on);

  private:
    int fd_ = -1;
    bool on_ = false;
};

// Where an upload's bytes go, in increasing offsets: written data, and
// ranges that must read as zeros afterwards (the stream's holes).
class UploadSink {
  public:
    virtual ~UploadSink() = default;
    // Writes the first len bytes of buf at off.  The sink may keep buf and
    // leave in its place another buffer of the same size, free to refill
    // (a pipeline that writes from its own buffers then copies nothing).
    virtual Status write(uint64_t off, MappedBuffer &buf, size_t len) = 0;
    virtual Status zero(uint64_t off, uint64_t len) = 0;
    // After the last write: waits for every write to be stable.
    virtual Status finish() = 0;
    virtual CopyStats stats() const = 0;
};

struct StreamLimits {
    size_t chunk = 2u << 20; // bytes per buffer
    unsigned buffers = 4;    // buffers per stream at most
    unsigned readers = 1;    // a download's reads of the source at once
};

// A download's: 8 reads of 2 MiB in flight keep a memstore OSD busy (one
// librbd handle serves them in parallel; measured: 1 GiB in 0.7-1.2 s at
// 8-16 in flight, 1.8-2.9 s two at a time), 4 more buffers queue for the
// glue; 24 MiB at most.
inline constexpr StreamLimits kDownloadLimits{2u << 20, 12, 8};

class UploadStream {
  public:
    // Bytes land at [offset, offset + length) of the image; `label` names it.
    UploadStream(uint64_t offset, uint64_t length, std::string label, StreamLimits lim = {});
    int ready_fd() const { return ready_.fd(); }

    // The glue's side.  send() copies up to n bytes and returns how many it
    // took; std::nullopt when it would block (all buffers queued, only when
    // !block).  Bytes past the end of the range are an error and are not
    // taken; a hole past the end fails the stream (the next call says so).
    Result<std::optional<size_t>> send(const char *data, size_t n, bool block);
    Status send_hole(uint64_t len);
    // No more bytes: waits until the worker wrote everything (and zeroed
    // the trailing hole) and returns its outcome.
    Status finish();
    // Stops the worker after the block it is writing; does not wait.
    void abort();

    // The worker's side: writes what arrives until finish() or abort(),
    // and returns the outcome (also what finish() returns).
    Status run(UploadSink &sink);
    uint64_t bytes_received() const;

    // The range, its label, and the bytes it still takes at the position
    // the stream has reached.
    uint64_t begin() const { return begin_; }
    uint64_t end() const { return end_; }
    const std::string &label() const { return label_; }
    uint64_t room() const;

  private:
    struct Block {
        uint64_t off = 0;
        size_t len = 0;
        MappedBuffer buf;
    };
    void seal_open_locked();
    bool take_buffer_locked();
    void fail_locked(Error e);
    void update_ready_locked();

    const uint64_t begin_, end_;
    const std::string label_;
    const StreamLimits lim_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    ReadyFlag ready_;
    std::deque<Block> queue_;
    std::vector<MappedBuffer> spare_;
    unsigned buffers_ = 0; // allocated, wherever they are
    Block open_;           // being filled by send()
    uint64_t pos_;         // the next byte's offset in the image
    uint64_t received_ = 0;
    bool done_ = false;     // finish() called
    bool aborted_ = false;
    bool worker_done_ = false;
    std::optional<Error> error_;
};

// What the glue's stream driver talks to for an upload.  libvirt 11.3's
// daemon crashes (it queues the error reply twice) when a stream driver
// fails a send in the middle of an upload, so a stream carrying more than
// its range never fails a send or a hole here: what fits goes on to the
// UploadStream (which still refuses anything past the range), the rest is
// counted and dropped on the spot (memory stays bounded), and finish()
// reports that the stream carried more than the range allows, once every
// byte within the range is written.  A failure of the worker (a write
// error) reaches the sender as before.  The glue's calls come one at a
// time (libvirt serializes a stream's calls).
class UploadIntake {
  public:
    explicit UploadIntake(std::shared_ptr<UploadStream> stream) : stream_(std::move(stream)) {}
    int ready_fd() const { return stream_->ready_fd(); }

    // As UploadStream's, but bytes past the range are taken (and dropped).
    Result<std::optional<size_t>> send(const char *data, size_t n, bool block);
    Status send_hole(uint64_t len);
    // The worker's outcome; if that is success but the stream reached past
    // the range, the error saying so (VIR_ERR_INVALID_ARG in the glue).
    Status finish();
    void abort() { stream_->abort(); }

    uint64_t bytes_discarded() const { return discarded_; }

  private:
    void note_over_length(uint64_t n, const char *what);

    std::shared_ptr<UploadStream> stream_;
    std::optional<Error> over_; // about the first call that reached past the range
    uint64_t discarded_ = 0;
};

struct InData {
    bool data = false;
    uint64_t length = 0; // 0 with !data: the end
};

class DownloadStream {
  public:
    // Carries [offset, offset + length) of the source.  sparse: holes of
    // the source and all-zero blocks (StreamLimits-aligned, zero_block
    // bytes) travel as holes; otherwise every byte is sent.
    DownloadStream(uint64_t offset, uint64_t length, bool sparse, std::string label, StreamLimits lim = {},
                   size_t zero_block = 64u << 10);
    int ready_fd() const { return ready_.fd(); }

    // The glue's side.  recv() copies up to n bytes of the data at the
    // head, across chunks up to the next hole: 0 at the end, std::nullopt
    // when it would block (!block).  A hole at the head is an error for
    // recv (call in_data first).
    Result<std::optional<size_t>> recv(char *buf, size_t n, bool block);
    // What the head is (waits until known): data of `length` bytes (all
    // that is ready before the next hole), a hole of `length` bytes, or
    // the end.
    Result<InData> in_data();
    // Consumes len bytes of the hole at the head.
    Status skip_hole(uint64_t len);
    // The reader went away (finish or abort): the worker stops.
    void stop();

    // The worker's side: walks the source (its data extents when sparse)
    // and queues chunk-sized reads, which lim.readers threads read at once,
    // each as soon as a buffer is free; what they read reaches the glue in
    // order.  The outcome (a reader that stopped early is no failure).
    Status run(ByteSource &src);

  private:
    // What the glue reads, in order: data inside a buffer of chunks_, or
    // a hole.
    struct Segment {
        bool hole = false;
        uint64_t len = 0;
        const char *data = nullptr;
        bool last_of_chunk = false; // popping it frees chunks_.front()
    };
    // What the walk found and the glue does not have yet, in order: a hole,
    // or a chunk to read, being read, or read (then buf holds it, `runs`
    // are its non-zero runs and `read` its outcome).
    struct Piece {
        enum class State { Hole, Queued, Reading, Read } state = State::Hole;
        uint64_t off = 0;
        uint64_t len = 0;
        MappedBuffer buf;
        std::vector<std::pair<size_t, size_t>> runs;
        Status read;
    };
    Status queue_range(ByteSource &src, uint64_t off, uint64_t len, bool inline_reads);
    void queue_hole(uint64_t len);
    void read_pieces(ByteSource &src, bool until_walk_done);
    Piece *first_queued_locked();
    void publish_locked();
    void push_hole_locked(uint64_t len);
    void pop_front_locked();
    void update_ready_locked();
    bool halted_locked() const { return stopped_ || failed_; }

    const uint64_t begin_, end_;
    const bool sparse_;
    const std::string label_;
    const StreamLimits lim_;
    const size_t zero_block_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    ReadyFlag ready_;
    std::deque<Segment> segs_;
    std::deque<MappedBuffer> chunks_; // referenced by segs_, in order
    std::deque<Piece> pieces_;        // references to them stay valid at push_back / pop_front
    unsigned chunk_pieces_ = 0;       // pieces_ that are chunks: each holds a buffer or will
    std::vector<MappedBuffer> spare_;
    bool walk_done_ = false;
    bool failed_ = false; // a read failed: nothing after it is sent
    bool stopped_ = false;
    bool worker_done_ = false;
    std::optional<Error> error_;
};

} // namespace rbdclone
