#include "io/copy_engine.hpp"

#include <condition_variable>
#include <cstring>
#include <sys/mman.h>
#include <deque>
#include <thread>
#include <memory>
#include <mutex>

#include "base/log.hpp"

namespace rbdclone {

MappedBuffer::~MappedBuffer()
{
    if (p)
        munmap(p, len);
}

bool MappedBuffer::allocate(size_t n)
{
    void *m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    p = static_cast<char *>(m);
    len = n;
    return true;
}

bool is_all_zero(const char *buf, size_t len)
{
    if (len == 0)
        return true;
    // The first 16 bytes checked directly, then the buffer against itself
    // shifted by 16: memcmp is vectorised, a byte loop is not.
    const size_t head = std::min<size_t>(len, 16);
    for (size_t i = 0; i < head; i++)
        if (buf[i])
            return false;
    return len <= 16 || memcmp(buf, buf + 16, len - 16) == 0;
}

namespace {

// Word i of a disk is weighed by an odd key, so a change of one word always
// changes the sum; the xorshift of the product makes the sum nonlinear in
// the bytes.  One multiplication per word: a cache fill checksums every
// byte it copies, alongside the copy, on a machine the copy keeps busy.
constexpr uint64_t kKey0 = 0x9e3779b97f4a7c15ull;    // odd
constexpr uint64_t kKeyStep = 0xd6e8feb86659fd92ull; // even: every key odd

uint64_t word_key(uint64_t index) { return kKey0 + kKeyStep * index; }

// mix(0) = 0: a zero word (a hole) adds nothing.
uint64_t mix(uint64_t product) { return product ^ (product >> 29); }

} // namespace

uint64_t content_checksum(const char *buf, size_t len, uint64_t offset)
{
    uint64_t sum = 0;
    size_t i = 0;
    // A leading partial word, then whole words, then a trailing partial one.
    while (i < len) {
        const uint64_t pos = offset + i;
        const size_t in_word = pos % 8;
        const size_t n = std::min<size_t>(8 - in_word, len - i);
        uint64_t w = 0;
        memcpy(reinterpret_cast<char *>(&w) + in_word, buf + i, n);
        sum += mix(w * word_key(pos / 8));
        i += n;
        if (in_word == 0 && n == 8) {
            // Aligned: the fast loop over whole words.
            uint64_t key = word_key((offset + i) / 8);
            for (; i + 8 <= len; i += 8, key += kKeyStep) {
                memcpy(&w, buf + i, 8);
                sum += mix(w * key);
            }
        }
    }
    return sum;
}

Result<uint64_t> source_checksum(ByteSource &src)
{
    MappedBuffer buf;
    constexpr size_t kChunk = 8u << 20;
    if (!buf.allocate(kChunk))
        return plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "out of memory for a checksum buffer");
    uint64_t sum = 0;
    auto st = src.for_each_data_extent([&](const Extent &e) -> Status {
        for (uint64_t off = e.offset; off < e.offset + e.length;) {
            const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, e.offset + e.length - off));
            if (auto r = src.read_exact(off, buf.get(), n); !r)
                return r;
            sum += content_checksum(buf.get(), n, off);
            off += n;
        }
        return {};
    });
    if (!st)
        return st.error();
    return sum;
}

std::vector<std::pair<size_t, size_t>> nonzero_runs(const char *buf, size_t len, size_t block)
{
    std::vector<std::pair<size_t, size_t>> runs;
    if (block == 0)
        block = len ? len : 1;
    for (size_t pos = 0; pos < len; pos += block) {
        size_t n = std::min(block, len - pos);
        if (is_all_zero(buf + pos, n))
            continue;
        if (!runs.empty() && runs.back().second == pos)
            runs.back().second = pos + n;
        else
            runs.emplace_back(pos, pos + n);
    }
    return runs;
}


// One buffer and the writes in flight from it.
struct ImageWriter::Slot {
    MappedBuffer buf;
    bool busy = false;     // acquired, or writes from it in flight
    unsigned pending = 0;  // references: in-flight writes + a submitter
};

struct ImageWriter::State {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<Slot> slots;
    CopyStats stats;
    Error error;           // first failure (rc == 0: none)
    bool failed = false;
    std::string label;
    unsigned in_flight = 0; // aio writes submitted and not completed
    std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
    std::chrono::milliseconds stall{0};

    void fail_locked(const Error &e)
    {
        if (!failed) {
            failed = true;
            error = e;
        }
        cv.notify_all();
    }
    // Called with mu held while waiting: true (and failed) once writes in
    // flight have made no progress for `stall`.
    bool stalled_locked()
    {
        if (stall.count() == 0 || in_flight == 0 || std::chrono::steady_clock::now() - last_progress < stall)
            return false;
        fail_locked(plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                                cat("no write to ", label, " completed in ", stall.count() / 1000,
                                    " s: the Ceph cluster stopped answering")));
        return true;
    }
    // Waits on cv for a while; false once stalled.
    bool wait_a_while(std::unique_lock<std::mutex> &lk)
    {
        cv.wait_for(lk, std::chrono::milliseconds(500));
        return !stalled_locked();
    }
};

namespace {

struct Pending {
    std::shared_ptr<void> state; // ImageWriter::State
    size_t slot;
    uint64_t offset;
};

} // namespace

std::chrono::milliseconds stall_limit(rados_t cluster)
{
    char buf[64] = {0};
    if (rados_conf_get(cluster, "rados_osd_op_timeout", buf, sizeof(buf) - 1) < 0)
        return std::chrono::milliseconds(0);
    double secs = atof(buf);
    if (secs <= 0)
        return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(static_cast<long long>(secs * 1000)) + std::chrono::seconds(5);
}

void close_in_background(ImageHandle img, std::shared_ptr<void> keep)
{
    std::thread([img = std::move(img), keep = std::move(keep)]() mutable {
        thread_body("closing an image", [&] { img.reset(); });
    }).detach();
}

ImageWriter::ImageWriter(rbd_image_t dst, std::string dst_label, const CopyOptions &opts)
    : dst_(dst), label_(std::move(dst_label)), opts_(opts), s_(std::make_shared<State>())
{
    if (opts_.in_flight == 0)
        opts_.in_flight = 1;
    s_->slots.resize(opts_.in_flight);
    s_->label = label_;
    s_->stall = opts_.stall_timeout;
}

ImageWriter::~ImageWriter() { wait_idle(); }

void ImageWriter::fail(const Error &e)
{
    std::lock_guard lk(s_->mu);
    s_->fail_locked(e);
}

// Drops one reference to a slot; the last one frees it.
void ImageWriter::put(size_t slot)
{
    std::lock_guard lk(s_->mu);
    Slot &sl = s_->slots[slot];
    if (--sl.pending == 0) {
        sl.busy = false;
        s_->cv.notify_all();
    }
}

void ImageWriter::on_complete(rbd_completion_t c, void *arg) noexcept
{
    std::unique_ptr<Pending> p(static_cast<Pending *>(arg));
    // Keeps the state (and its buffers) alive through this call even when
    // the writer gave up on the cluster and went away.
    std::shared_ptr<State> s = std::static_pointer_cast<State>(p->state);
    ssize_t r = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    std::lock_guard lk(s->mu);
    if (r < 0) {
        try {
            s->fail_locked(ceph_error(static_cast<int>(r), cat("failed to write ", s->label, " at offset ", p->offset)));
        } catch (...) { // no memory for the message: the error without it
            s->failed = true;
            s->error.rc = static_cast<int>(r);
            s->error.kind = RBDC_ERR_SYSTEM;
            s->cv.notify_all();
        }
    }
    s->in_flight--;
    s->last_progress = std::chrono::steady_clock::now();
    Slot &sl = s->slots[p->slot];
    if (--sl.pending == 0) {
        sl.busy = false;
        s->cv.notify_all();
    }
}

bool ImageWriter::wait_idle()
{
    std::unique_lock lk(s_->mu);
    for (;;) {
        bool busy = false;
        for (auto &sl : s_->slots)
            busy |= sl.busy;
        if (!busy)
            return true;
        if (!s_->wait_a_while(lk))
            return false;
    }
}

Status ImageWriter::first_error()
{
    std::lock_guard lk(s_->mu);
    if (s_->failed)
        return s_->error;
    return {};
}

Result<size_t> ImageWriter::acquire()
{
    std::unique_lock lk(s_->mu);
    for (;;) {
        if (s_->failed)
            return s_->error;
        for (size_t i = 0; i < s_->slots.size(); i++) {
            Slot &sl = s_->slots[i];
            if (!sl.busy) {
                if (!sl.buf && !sl.buf.allocate(opts_.chunk))
                    return plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "out of memory for the copy buffers");
                sl.busy = true;
                sl.pending = 1; // the acquirer's reference
                return i;
            }
        }
        if (!s_->wait_a_while(lk))
            return s_->error;
    }
}

char *ImageWriter::data(size_t slot) { return s_->slots[slot].buf.get(); }

MappedBuffer &ImageWriter::buffer(size_t slot) { return s_->slots[slot].buf; }

void ImageWriter::release(size_t slot) { put(slot); }

Status ImageWriter::aio_write(size_t slot, uint64_t off, const char *data, size_t len)
{
    rbd_completion_t c;
    auto *p = new Pending{s_, slot, off};
    int r = rbd_aio_create_completion(p, on_complete, &c);
    if (r < 0) {
        delete p;
        return ceph_error(r, "failed to start a write to " + label_);
    }
    {
        std::lock_guard lk(s_->mu);
        s_->slots[slot].pending++;
        if (s_->in_flight++ == 0)
            s_->last_progress = std::chrono::steady_clock::now();
    }
    r = data ? rbd_aio_write2(dst_, off, len, data, c, LIBRADOS_OP_FLAG_FADVISE_DONTNEED)
             : rbd_aio_write_zeroes(dst_, off, len, c, 0, 0);
    if (r < 0) {
        rbd_aio_release(c);
        delete p;
        {
            std::lock_guard lk(s_->mu);
            s_->in_flight--;
        }
        put(slot);
        return ceph_error(r, cat("failed to write ", label_, " at offset ", off));
    }
    return {};
}

Status ImageWriter::submit(size_t slot, uint64_t off, size_t len)
{
    if (auto st = first_error(); !st) {
        put(slot);
        return st;
    }
    const char *buf = data(slot);
    const uint64_t dst = opts_.dest_offset + off;
    CopyStats add;
    add.bytes_read = len;
    if (opts_.checksum)
        add.checksum = content_checksum(buf, len, off);
    Status st;
    size_t zero_from = 0;
    auto zeros_until = [&](size_t end) -> Status {
        add.bytes_skipped += end - zero_from;
        if (end > zero_from && opts_.zeros == ZeroPolicy::WriteZeroes)
            return aio_write(slot, dst + zero_from, nullptr, end - zero_from);
        return {};
    };
    for (auto [b, e] : nonzero_runs(buf, len, opts_.zero_block)) {
        if (st = zeros_until(b); !st)
            break;
        if (st = aio_write(slot, dst + b, buf + b, e - b); !st)
            break;
        add.bytes_written += e - b;
        zero_from = e;
    }
    if (st)
        st = zeros_until(len);
    {
        std::lock_guard lk(s_->mu);
        s_->stats.bytes_read += add.bytes_read;
        s_->stats.bytes_written += add.bytes_written;
        s_->stats.bytes_skipped += add.bytes_skipped;
        s_->stats.checksum += add.checksum;
    }
    put(slot); // the acquirer's reference
    if (!st)
        fail(st.error());
    return st;
}

Status ImageWriter::zero(uint64_t off, uint64_t len)
{
    constexpr uint64_t kPiece = 1ull << 30; // bounds librbd's per-request object list
    auto slot = acquire();
    if (!slot)
        return slot.error();
    Status st;
    for (uint64_t done = 0; st && done < len;) {
        const uint64_t k = std::min(kPiece, len - done);
        st = aio_write(*slot, opts_.dest_offset + off + done, nullptr, static_cast<size_t>(k));
        done += k;
    }
    {
        std::lock_guard lk(s_->mu);
        s_->stats.bytes_skipped += len;
    }
    put(*slot); // the acquirer's reference
    if (!st)
        fail(st.error());
    return st;
}

Status ImageWriter::finish()
{
    if (!wait_idle())
        return first_error(); // stalled: a flush would wait as long
    if (auto st = first_error(); !st)
        return st;
    int r = rbd_flush(dst_);
    if (r < 0)
        return ceph_error(r, "failed to flush " + label_);
    return {};
}

CopyStats ImageWriter::stats() const
{
    std::lock_guard lk(s_->mu);
    return s_->stats;
}

namespace {

// Chunks to read, handed from the extent walk to the reader threads.
class ChunkQueue {
  public:
    explicit ChunkQueue(size_t cap) : cap_(cap) {}
    // False when the queue was closed (the copy failed).
    bool push(Extent e)
    {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return q_.size() < cap_ || closed_; });
        if (closed_)
            return false;
        q_.push_back(e);
        cv_.notify_all();
        return true;
    }
    bool pop(Extent &e)
    {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return !q_.empty() || closed_ || done_; });
        if (closed_ || q_.empty())
            return false;
        e = q_.front();
        q_.pop_front();
        cv_.notify_all();
        return true;
    }
    void done() // no more chunks; readers drain what is queued
    {
        std::lock_guard lk(mu_);
        done_ = true;
        cv_.notify_all();
    }
    void close() // abandon the rest
    {
        std::lock_guard lk(mu_);
        closed_ = true;
        cv_.notify_all();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Extent> q_;
    size_t cap_;
    bool done_ = false, closed_ = false;
};

} // namespace

// One reader thread: reads the chunks the queue hands it into the writer's buffers and
// submits them, until the queue ends or something failed (then it closes the queue).
static void read_chunks(ChunkQueue &queue, ImageWriter &w, ByteSource &src)
{
    Extent c;
    while (queue.pop(c)) {
        auto slot = w.acquire();
        if (!slot) {
            queue.close();
            return;
        }
        if (auto r = src.read_exact(c.offset, w.data(*slot), static_cast<size_t>(c.length)); !r) {
            w.release(*slot);
            w.fail(r.error());
            queue.close();
            return;
        }
        if (!w.submit(*slot, c.offset, static_cast<size_t>(c.length))) {
            queue.close();
            return;
        }
    }
}

PieceCutter::PieceCutter(const CopyOptions &opts, uint64_t source_size)
    : unit_(opts.dense_unit ? opts.dense_unit : opts.chunk), phase_(opts.dense_unit ? opts.dense_phase % unit_ : 0),
      size_(source_size), dense_(opts.dense_unit != 0)
{
}

bool PieceCutter::cut(const Extent &e, const std::function<bool(const Extent &)> &push)
{
    uint64_t begin = e.offset, end = e.offset + e.length;
    if (dense_) {
        begin = std::max(covered_, unit_start(begin));
        end = std::min(size_, end == unit_start(end) ? end : unit_end(end));
        covered_ = std::max(covered_, end);
    }
    for (uint64_t off = begin; off < end;) {
        const uint64_t next = std::min(end, unit_end(off));
        if (!push(Extent{off, next - off}))
            return false;
        off = next;
    }
    return true;
}

Result<CopyStats> copy_to_image(ByteSource &src, rbd_image_t dst, const std::string &dst_label,
                                const CopyOptions &opts)
{
    ImageWriter w(dst, dst_label, opts);
    ChunkQueue queue(std::max<size_t>(opts.in_flight, 1) * 2);
    std::vector<std::thread> readers;
    for (unsigned i = 0; i < std::max(1u, opts.readers); i++)
        readers.emplace_back([&] {
            thread_body("copy reader", [&] {
                try {
                    read_chunks(queue, w, src);
                } catch (...) {
                    w.fail(plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "a copy reader failed (out of memory?)"));
                    queue.close();
                    throw;
                }
            });
        });

    // Holes are left alone: the destination is a new image and reads zeros there.
    PieceCutter cutter(opts, src.size());
    auto st = src.for_each_data_extent([&](const Extent &e) -> Status {
        (void)cutter.cut(e, [&](const Extent &piece) { return queue.push(piece); }); // false: a reader failed,
        return {};                                                                     // its error is in w
    });
    if (!st) {
        w.fail(st.error());
        queue.close();
    } else {
        queue.done();
    }
    for (auto &t : readers)
        t.join();
    Status fin = w.finish();
    if (!fin)
        return fin.error();
    return w.stats();
}

} // namespace rbdclone
