#include "stream/stream_bridge.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>

#include "base/log.hpp"

namespace rbdclone {

ReadyFlag::ReadyFlag() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ReadyFlag::~ReadyFlag()
{
    if (fd_ >= 0)
        ::close(fd_);
}

void ReadyFlag::set(bool on)
{
    if (fd_ < 0 || on == on_)
        return;
    uint64_t v = 1;
    // An eventfd counter never overflows at 1, and reading it resets it to
    // 0: neither call can fail short of EBADF.
    ssize_t r = on ? ::write(fd_, &v, sizeof(v)) : ::read(fd_, &v, sizeof(v));
    if (r == sizeof(v))
        on_ = on;
}

namespace {

Error past_the_end(const std::string &label, uint64_t begin, uint64_t end, uint64_t pos, uint64_t n,
                   const char *what)
{
    return plain_error(RBDC_ERR_INVALID_ARG, -ENOSPC,
                       cat("upload into ", label, " carries more than the ", end - begin,
                           " bytes allowed: ", what, " of ", n, " bytes at offset ", pos,
                           " reaches past the end at ", end));
}

Error finished_error(const std::string &what) { return plain_error(RBDC_ERR_OPERATION_INVALID, -EPIPE, what); }

} // namespace

// ---- upload ----------------------------------------------------------------

UploadStream::UploadStream(uint64_t offset, uint64_t length, std::string label, StreamLimits lim)
    : begin_(offset), end_(offset + length), label_(std::move(label)), lim_(lim), pos_(offset)
{
    std::lock_guard lk(mu_);
    update_ready_locked();
}

void UploadStream::update_ready_locked()
{
    const bool room = (open_.buf && open_.len < lim_.chunk) || !spare_.empty() || buffers_ < lim_.buffers;
    ready_.set(room || error_ || done_ || aborted_);
}

void UploadStream::fail_locked(Error e)
{
    if (!error_)
        error_ = std::move(e);
    update_ready_locked();
    cv_.notify_all();
}

void UploadStream::seal_open_locked()
{
    if (open_.len == 0)
        return;
    queue_.push_back(std::move(open_));
    open_ = Block{};
    cv_.notify_all();
}

bool UploadStream::take_buffer_locked()
{
    if (open_.buf)
        return true;
    if (!spare_.empty()) {
        open_.buf = std::move(spare_.back());
        spare_.pop_back();
        return true;
    }
    if (buffers_ >= lim_.buffers || !open_.buf.allocate(lim_.chunk))
        return false;
    buffers_++;
    return true;
}

Result<std::optional<size_t>> UploadStream::send(const char *data, size_t n, bool block)
{
    std::unique_lock lk(mu_);
    if (n == 0)
        return std::optional<size_t>(0);
    if (n > end_ - pos_)
        return past_the_end(label_, begin_, end_, pos_, n, "data");
    for (;;) {
        if (error_)
            return *error_;
        if (done_ || aborted_)
            return finished_error("the upload into " + label_ + " is already finished");
        size_t taken = 0;
        while (taken < n) {
            if (open_.len > 0 && (open_.off + open_.len != pos_ || open_.len == lim_.chunk))
                seal_open_locked();
            if (!take_buffer_locked())
                break;
            if (open_.len == 0)
                open_.off = pos_;
            const size_t k = std::min(n - taken, lim_.chunk - open_.len);
            memcpy(open_.buf.get() + open_.len, data + taken, k);
            open_.len += k;
            pos_ += k;
            taken += k;
            received_ += k;
            if (open_.len == lim_.chunk)
                seal_open_locked();
        }
        update_ready_locked();
        if (taken > 0)
            return std::optional<size_t>(taken);
        if (!block)
            return std::optional<size_t>();
        cv_.wait(lk);
    }
}

Status UploadStream::send_hole(uint64_t len)
{
    std::lock_guard lk(mu_);
    if (error_)
        return *error_;
    if (done_ || aborted_)
        return finished_error("the upload into " + label_ + " is already finished");
    if (len > end_ - pos_) {
        // The stream fails, but the hole call itself succeeds: libvirt's
        // client loses an error answering a hole message when its finish
        // follows at once, and would report success.  The next send or
        // the finish reports it instead.
        fail_locked(past_the_end(label_, begin_, end_, pos_, len, "a hole"));
        return {};
    }
    pos_ += len; // the worker zeroes the gap before the next block
    return {};
}

Status UploadStream::finish()
{
    std::unique_lock lk(mu_);
    if (!error_ && !aborted_)
        seal_open_locked();
    done_ = true;
    update_ready_locked();
    cv_.notify_all();
    cv_.wait(lk, [&] { return worker_done_; });
    if (error_)
        return *error_;
    if (aborted_)
        return finished_error("the upload into " + label_ + " was aborted");
    return {};
}

void UploadStream::abort()
{
    std::lock_guard lk(mu_);
    aborted_ = true;
    update_ready_locked();
    cv_.notify_all();
}

uint64_t UploadStream::bytes_received() const
{
    std::lock_guard lk(mu_);
    return received_;
}

uint64_t UploadStream::room() const
{
    std::lock_guard lk(mu_);
    return end_ - pos_;
}

Status UploadStream::run(UploadSink &sink)
{
    uint64_t written = begin_;
    Status st;
    bool finished = false;
    for (;;) {
        Block b;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return !queue_.empty() || done_ || aborted_; });
            if (aborted_)
                break;
            if (queue_.empty()) {
                finished = true;
                break;
            }
            b = std::move(queue_.front());
            queue_.pop_front();
        }
        if (b.off > written)
            st = sink.zero(written, b.off - written);
        if (st)
            st = sink.write(b.off, b.buf, b.len);
        written = b.off + b.len;
        std::lock_guard lk(mu_);
        spare_.push_back(std::move(b.buf));
        if (!st) {
            fail_locked(st.error());
            break;
        }
        update_ready_locked();
        cv_.notify_all();
    }
    if (st && finished) {
        uint64_t end;
        {
            std::lock_guard lk(mu_);
            end = pos_; // final once done_
        }
        if (end > written)
            st = sink.zero(written, end - written);
    }
    Status fin = sink.finish(); // waits for the writes in flight, also after a failure
    std::lock_guard lk(mu_);
    if (!st)
        fail_locked(st.error());
    else if (!fin && finished)
        fail_locked(fin.error());
    worker_done_ = true;
    update_ready_locked();
    cv_.notify_all();
    if (error_)
        return *error_;
    if (!finished)
        return finished_error("the upload into " + label_ + " was aborted");
    return {};
}

// ---- the glue's side of an upload --------------------------------------------

void UploadIntake::note_over_length(uint64_t n, const char *what)
{
    if (!over_)
        over_ = past_the_end(stream_->label(), stream_->begin(), stream_->end(),
                             stream_->end() - stream_->room(), n, what);
}

Result<std::optional<size_t>> UploadIntake::send(const char *data, size_t n, bool block)
{
    const uint64_t room = stream_->room();
    if (n > room) {
        note_over_length(n, "data");
        if (room == 0) {
            discarded_ += n;
            return std::optional<size_t>(n);
        }
        n = static_cast<size_t>(room); // the caller sends the rest again
    }
    return stream_->send(data, n, block);
}

Status UploadIntake::send_hole(uint64_t len)
{
    const uint64_t room = stream_->room();
    if (len > room) {
        note_over_length(len, "a hole");
        discarded_ += len - room;
        len = room;
        if (len == 0)
            return {};
    }
    return stream_->send_hole(len);
}

Status UploadIntake::finish()
{
    // The worker's own failure says more about the bytes within the range.
    if (Status st = stream_->finish(); !st)
        return st;
    if (!over_)
        return {};
    Error e = *over_;
    e.message += cat("; ", discarded_, " bytes past the end were discarded");
    return e;
}

// ---- download --------------------------------------------------------------

DownloadStream::DownloadStream(uint64_t offset, uint64_t length, bool sparse, std::string label, StreamLimits lim,
                               size_t zero_block)
    : begin_(offset), end_(offset + length), sparse_(sparse), label_(std::move(label)), lim_(lim),
      zero_block_(zero_block)
{
    std::lock_guard lk(mu_);
    update_ready_locked();
}

void DownloadStream::update_ready_locked() { ready_.set(!segs_.empty() || worker_done_); }

void DownloadStream::push_hole_locked(uint64_t len)
{
    if (len == 0)
        return;
    if (!segs_.empty() && segs_.back().hole)
        segs_.back().len += len;
    else
        segs_.push_back(Segment{true, len, nullptr, false});
}

void DownloadStream::pop_front_locked()
{
    if (segs_.front().last_of_chunk) {
        spare_.push_back(std::move(chunks_.front()));
        chunks_.pop_front();
        cv_.notify_all();
    }
    segs_.pop_front();
}

DownloadStream::Piece *DownloadStream::first_queued_locked()
{
    for (Piece &p : pieces_)
        if (p.state == Piece::State::Queued)
            return &p;
    return nullptr;
}

// Hands what is ready at the head of pieces_ to the glue (holes, chunks
// read), up to the first chunk not read yet, and for good up to a failed
// read: the stream ends there with its error.
void DownloadStream::publish_locked()
{
    if (stopped_)
        return;
    bool moved = false;
    while (!pieces_.empty() && !failed_) {
        Piece &p = pieces_.front();
        if (p.state == Piece::State::Hole) {
            push_hole_locked(p.len);
        } else if (p.state != Piece::State::Read) {
            break;
        } else if (!p.read) {
            failed_ = true;
            error_ = p.read.error();
            break;
        } else {
            size_t at = 0;
            for (size_t i = 0; i < p.runs.size(); i++) {
                auto [b, e] = p.runs[i];
                push_hole_locked(b - at);
                segs_.push_back(Segment{false, e - b, p.buf.get() + b, i + 1 == p.runs.size()});
                at = e;
            }
            push_hole_locked(p.len - at);
            if (p.runs.empty())
                spare_.push_back(std::move(p.buf));
            else
                chunks_.push_back(std::move(p.buf)); // the pointers above stay valid
            chunk_pieces_--;
        }
        pieces_.pop_front();
        moved = true;
    }
    if (moved || failed_) {
        update_ready_locked();
        cv_.notify_all();
    }
}

void DownloadStream::queue_hole(uint64_t len)
{
    if (len == 0)
        return;
    std::lock_guard lk(mu_);
    if (halted_locked())
        return;
    if (!pieces_.empty() && pieces_.back().state == Piece::State::Hole) {
        pieces_.back().len += len;
    } else {
        pieces_.emplace_back();
        pieces_.back().len = len;
    }
    publish_locked();
}

Status DownloadStream::queue_range(ByteSource &src, uint64_t off, uint64_t len, bool inline_reads)
{
    const uint64_t end = off + len;
    for (uint64_t at = off; at < end; at += lim_.chunk) {
        {
            std::unique_lock lk(mu_);
            // Chunks queued, being read or waiting for the glue stay
            // within the limit.
            cv_.wait(lk, [&] { return halted_locked() || chunk_pieces_ + chunks_.size() < lim_.buffers; });
            if (stopped_)
                return plain_error(RBDC_ERR_OPERATION_INVALID, -ECANCELED, "the download of " + label_ + " stopped");
            if (failed_)
                return *error_;
            Piece &p = pieces_.emplace_back();
            p.state = Piece::State::Queued;
            p.off = at;
            p.len = std::min<uint64_t>(lim_.chunk, end - at);
            chunk_pieces_++;
            cv_.notify_all();
        }
        if (inline_reads)
            read_pieces(src, false);
    }
    return {};
}

// Reads queued chunks, one at a time, oldest first; until_walk_done: waits
// for more until the walk is over, else returns when none is queued.
void DownloadStream::read_pieces(ByteSource &src, bool until_walk_done)
{
    for (;;) {
        Piece *p = nullptr;
        MappedBuffer buf;
        {
            std::unique_lock lk(mu_);
            if (until_walk_done)
                cv_.wait(lk, [&] { return halted_locked() || walk_done_ || first_queued_locked(); });
            if (halted_locked() || !(p = first_queued_locked()))
                return;
            p->state = Piece::State::Reading; // its offset and length stay as they are
            if (!spare_.empty()) {
                buf = std::move(spare_.back());
                spare_.pop_back();
            }
        }
        const size_t len = static_cast<size_t>(p->len);
        Status st;
        std::vector<std::pair<size_t, size_t>> runs;
        try {
            if (!buf && !buf.allocate(lim_.chunk))
                st = plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "out of memory for the download of " + label_);
            else
                st = src.read_exact(p->off, buf.get(), len);
            if (st && sparse_)
                runs = nonzero_runs(buf.get(), len, zero_block_);
            else if (st)
                runs.emplace_back(0, len);
        } catch (const std::bad_alloc &) {
            st = plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "out of memory for the download of " + label_);
        } catch (const std::exception &e) {
            st = plain_error(RBDC_ERR_INTERNAL, -EIO, cat("the download of ", label_, " failed: ", e.what()));
        }
        std::lock_guard lk(mu_);
        p->buf = std::move(buf);
        p->runs = std::move(runs);
        p->read = std::move(st);
        p->state = Piece::State::Read;
        publish_locked();
    }
}

Status DownloadStream::run(ByteSource &src)
{
    std::vector<std::thread> readers;
    const unsigned width = std::max(1u, std::min(lim_.readers, lim_.buffers));
    try {
        for (unsigned i = 0; i < width; i++)
            readers.emplace_back([&] { thread_body("download reader", [&] { read_pieces(src, true); }); });
    } catch (const std::system_error &) { // fewer threads; with none, the walk reads itself
    }
    const bool inline_reads = readers.empty();
    Status st;
    if (sparse_) {
        uint64_t pos = begin_;
        st = src.for_each_data_extent([&](const Extent &e) -> Status {
            const uint64_t b = std::max(e.offset, pos);
            const uint64_t en = std::min(e.offset + e.length, end_);
            if (b >= en)
                return {};
            queue_hole(b - pos);
            pos = en;
            return queue_range(src, b, en - b, inline_reads);
        });
        if (st && pos < end_)
            queue_hole(end_ - pos);
    } else {
        st = queue_range(src, begin_, end_ - begin_, inline_reads);
    }
    {
        std::lock_guard lk(mu_);
        walk_done_ = true;
        cv_.notify_all();
    }
    for (auto &t : readers)
        t.join(); // every chunk queued is read (or the stream halted)
    std::lock_guard lk(mu_);
    if (!st && !error_ && !stopped_)
        error_ = st.error();
    worker_done_ = true;
    update_ready_locked();
    cv_.notify_all();
    if (stopped_)
        return {};
    if (error_)
        return *error_;
    return st;
}

Result<std::optional<size_t>> DownloadStream::recv(char *buf, size_t n, bool block)
{
    std::unique_lock lk(mu_);
    for (;;) {
        // Across chunks while their data follows on: libvirtd's messages
        // (262120 bytes) do not divide a chunk, and stopping at its end
        // would send one tiny message per chunk.
        size_t done = 0;
        while (done < n && !segs_.empty() && !segs_.front().hole) {
            Segment &s = segs_.front();
            const size_t k = static_cast<size_t>(std::min<uint64_t>(n - done, s.len));
            memcpy(buf + done, s.data, k);
            done += k;
            s.data += k;
            s.len -= k;
            if (s.len == 0)
                pop_front_locked();
        }
        if (done > 0) {
            update_ready_locked();
            return std::optional<size_t>(done);
        }
        if (!segs_.empty())
            return plain_error(RBDC_ERR_INTERNAL, -EINVAL,
                               cat("the download of ", label_, " is at a hole of ", segs_.front().len,
                                   " bytes: the reader must skip it"));
        if (worker_done_) {
            if (error_)
                return *error_;
            return std::optional<size_t>(0);
        }
        if (!block)
            return std::optional<size_t>();
        cv_.wait(lk);
    }
}

Result<InData> DownloadStream::in_data()
{
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !segs_.empty() || worker_done_; });
    if (!segs_.empty() && segs_.front().hole)
        return InData{false, segs_.front().len}; // consecutive holes are one segment
    if (!segs_.empty()) {
        uint64_t run = 0; // the data ready up to the next hole, as one recv may take it
        for (auto it = segs_.begin(); it != segs_.end() && !it->hole; ++it)
            run += it->len;
        return InData{true, run};
    }
    if (error_)
        return *error_;
    return InData{};
}

Status DownloadStream::skip_hole(uint64_t len)
{
    std::lock_guard lk(mu_);
    if (segs_.empty() || !segs_.front().hole)
        return plain_error(RBDC_ERR_INTERNAL, -EINVAL,
                           cat("the download of ", label_, " has no hole to skip here"));
    Segment &s = segs_.front();
    s.len -= std::min(len, s.len);
    if (s.len == 0)
        pop_front_locked();
    update_ready_locked();
    return {};
}

void DownloadStream::stop()
{
    std::lock_guard lk(mu_);
    stopped_ = true;
    cv_.notify_all();
}

} // namespace rbdclone
