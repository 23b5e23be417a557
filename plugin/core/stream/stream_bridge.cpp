#include "stream/stream_bridge.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <system_error>

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
            st = sink.write(b.off, b.buf.get(), b.len);
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

void DownloadStream::push_hole(uint64_t len)
{
    std::lock_guard lk(mu_);
    push_hole_locked(len);
    update_ready_locked();
    cv_.notify_all();
}

void DownloadStream::push_chunk(MappedBuffer buf, size_t len)
{
    std::vector<std::pair<size_t, size_t>> runs;
    if (sparse_)
        runs = nonzero_runs(buf.get(), len, zero_block_);
    else
        runs.emplace_back(0, len);
    std::lock_guard lk(mu_);
    if (stopped_)
        return;
    size_t at = 0;
    for (size_t i = 0; i < runs.size(); i++) {
        auto [b, e] = runs[i];
        push_hole_locked(b - at);
        segs_.push_back(Segment{false, e - b, buf.get() + b, i + 1 == runs.size()});
        at = e;
    }
    push_hole_locked(len - at);
    if (runs.empty())
        spare_.push_back(std::move(buf));
    else
        chunks_.push_back(std::move(buf)); // the pointers above stay valid
    update_ready_locked();
    cv_.notify_all();
}

Status DownloadStream::emit_range(ByteSource &src, uint64_t off, uint64_t len)
{
    // Half the stream's buffers are read at once (librbd serves reads of
    // one handle in parallel), the other half wait for the glue.
    const uint64_t end = off + len;
    while (off < end) {
        const uint64_t left = (end - off + lim_.chunk - 1) / lim_.chunk;
        const unsigned width = static_cast<unsigned>(std::min<uint64_t>(std::max(1u, lim_.buffers / 2), left));
        std::vector<MappedBuffer> bufs;
        {
            std::unique_lock lk(mu_);
            // The worker's buffers plus those queued stay within the limit.
            cv_.wait(lk, [&] { return stopped_ || chunks_.size() + width <= lim_.buffers; });
            if (stopped_)
                return plain_error(RBDC_ERR_OPERATION_INVALID, -ECANCELED, "the download of " + label_ + " stopped");
            for (unsigned k = 0; k < width && off + uint64_t{k} * lim_.chunk < end && !spare_.empty(); k++) {
                bufs.push_back(std::move(spare_.back()));
                spare_.pop_back();
            }
        }
        std::vector<size_t> lens;
        for (uint64_t at = off; lens.size() < width && at < end; at += lim_.chunk)
            lens.push_back(static_cast<size_t>(std::min<uint64_t>(lim_.chunk, end - at)));
        bufs.resize(lens.size());
        for (auto &b : bufs)
            if (!b && !b.allocate(lim_.chunk))
                return plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "out of memory for the download of " + label_);
        std::vector<Status> read(lens.size());
        {
            std::vector<std::future<void>> others;
            try {
                for (size_t k = 1; k < lens.size(); k++)
                    others.push_back(std::async(std::launch::async, [&, k] {
                        read[k] = src.read_exact(off + k * lim_.chunk, bufs[k].get(), lens[k]);
                    }));
            } catch (const std::system_error &) { // no thread: read here instead
                for (size_t k = others.size() + 1; k < lens.size(); k++)
                    read[k] = src.read_exact(off + k * lim_.chunk, bufs[k].get(), lens[k]);
            }
            read[0] = src.read_exact(off, bufs[0].get(), lens[0]);
        } // every read done
        for (size_t k = 0; k < lens.size(); k++) {
            if (!read[k])
                return read[k];
            push_chunk(std::move(bufs[k]), lens[k]);
            off += lens[k];
        }
    }
    return {};
}

Status DownloadStream::run(ByteSource &src)
{
    Status st;
    if (sparse_) {
        uint64_t pos = begin_;
        st = src.for_each_data_extent([&](const Extent &e) -> Status {
            const uint64_t b = std::max(e.offset, pos);
            const uint64_t en = std::min(e.offset + e.length, end_);
            if (b >= en)
                return {};
            push_hole(b - pos);
            pos = en;
            return emit_range(src, b, en - b);
        });
        if (st && pos < end_)
            push_hole(end_ - pos);
    } else {
        st = emit_range(src, begin_, end_ - begin_);
    }
    std::lock_guard lk(mu_);
    if (!st && !stopped_)
        error_ = st.error();
    worker_done_ = true;
    update_ready_locked();
    cv_.notify_all();
    return stopped_ && !st ? Status{} : st;
}

Result<std::optional<size_t>> DownloadStream::recv(char *buf, size_t n, bool block)
{
    std::unique_lock lk(mu_);
    for (;;) {
        if (!segs_.empty()) {
            Segment &s = segs_.front();
            if (s.hole)
                return plain_error(RBDC_ERR_INTERNAL, -EINVAL,
                                   cat("the download of ", label_, " is at a hole of ", s.len,
                                       " bytes: the reader must skip it"));
            const size_t k = static_cast<size_t>(std::min<uint64_t>(n, s.len));
            memcpy(buf, s.data, k);
            s.data += k;
            s.len -= k;
            if (s.len == 0)
                pop_front_locked();
            update_ready_locked();
            return std::optional<size_t>(k);
        }
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
    if (!segs_.empty())
        return InData{!segs_.front().hole, segs_.front().len};
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
