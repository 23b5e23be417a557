#include "copy_engine.hpp"

#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "log.hpp"

namespace rbdclone {

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
    std::unique_ptr<char[]> buf;
    unsigned pending = 0;
};

struct ImageWriter::State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Slot> slots;
    int rc = 0;                 // first failed write
    uint64_t failed_offset = 0;
};

namespace {
struct Pending {
    ImageWriter *writer;
    void *state;
    size_t slot;
    uint64_t offset;
};
} // namespace

ImageWriter::ImageWriter(rbd_image_t dst, std::string dst_label, const CopyOptions &opts)
    : dst_(dst), label_(std::move(dst_label)), opts_(opts), s_(new State)
{
    if (opts_.in_flight == 0)
        opts_.in_flight = 1;
    s_->slots.resize(opts_.in_flight);
}

ImageWriter::~ImageWriter()
{
    wait_idle();
    delete s_;
}

void ImageWriter::on_complete(rbd_completion_t c, void *arg)
{
    auto *p = static_cast<Pending *>(arg);
    auto *s = static_cast<State *>(p->state);
    ssize_t r = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    {
        std::lock_guard lk(s->mu);
        if (r < 0 && s->rc == 0) {
            s->rc = static_cast<int>(r);
            s->failed_offset = p->offset;
        }
        s->slots[p->slot].pending--;
    }
    s->cv.notify_all();
    delete p;
}

void ImageWriter::wait_idle()
{
    std::unique_lock lk(s_->mu);
    s_->cv.wait(lk, [&] {
        for (auto &sl : s_->slots)
            if (sl.pending)
                return false;
        return true;
    });
}

Status ImageWriter::first_error()
{
    std::lock_guard lk(s_->mu);
    if (s_->rc < 0)
        return ceph_error(s_->rc, cat("failed to write ", label_, " at offset ", s_->failed_offset));
    if (opts_.cancel && opts_.cancel->load())
        return plain_error(RBDC_ERR_OPERATION_INVALID, -ECANCELED, "copy into " + label_ + " was cancelled");
    return {};
}

Result<char *> ImageWriter::buffer()
{
    if (auto st = first_error(); !st)
        return st.error();
    std::unique_lock lk(s_->mu);
    for (;;) {
        for (size_t i = 0; i < s_->slots.size(); i++) {
            Slot &sl = s_->slots[i];
            if (sl.pending == 0) {
                if (!sl.buf)
                    sl.buf.reset(new char[opts_.chunk]);
                current_ = static_cast<int>(i);
                return sl.buf.get();
            }
        }
        s_->cv.wait(lk);
    }
}

Status ImageWriter::aio_write(Slot &slot, uint64_t off, const char *data, size_t len)
{
    rbd_completion_t c;
    auto *p = new Pending{this, s_, static_cast<size_t>(&slot - s_->slots.data()), off};
    int r = rbd_aio_create_completion(p, on_complete, &c);
    if (r < 0) {
        delete p;
        return ceph_error(r, "failed to start a write to " + label_);
    }
    {
        std::lock_guard lk(s_->mu);
        slot.pending++;
    }
    r = data ? rbd_aio_write2(dst_, off, len, data, c, LIBRADOS_OP_FLAG_FADVISE_DONTNEED)
             : rbd_aio_write_zeroes(dst_, off, len, c, 0, 0);
    if (r < 0) {
        rbd_aio_release(c);
        delete p;
        std::lock_guard lk(s_->mu);
        slot.pending--;
        return ceph_error(r, cat("failed to write ", label_, " at offset ", off));
    }
    return {};
}

Status ImageWriter::submit(uint64_t off, size_t len)
{
    if (current_ < 0)
        return plain_error(RBDC_ERR_INTERNAL, -EINVAL, "write submitted without a buffer");
    Slot &slot = s_->slots[static_cast<size_t>(current_)];
    current_ = -1;
    const uint64_t dst = opts_.dest_offset + off;
    stats_.bytes_read += len;
    size_t zero_from = 0;
    for (auto [b, e] : nonzero_runs(slot.buf.get(), len, opts_.zero_block)) {
        if (b > zero_from && opts_.zeros == ZeroPolicy::WriteZeroes)
            if (auto st = aio_write(slot, dst + zero_from, nullptr, b - zero_from); !st)
                return st;
        stats_.bytes_skipped += b - zero_from;
        if (auto st = aio_write(slot, dst + b, slot.buf.get() + b, e - b); !st)
            return st;
        stats_.bytes_written += e - b;
        zero_from = e;
    }
    if (zero_from < len) {
        if (opts_.zeros == ZeroPolicy::WriteZeroes)
            if (auto st = aio_write(slot, dst + zero_from, nullptr, len - zero_from); !st)
                return st;
        stats_.bytes_skipped += len - zero_from;
    }
    return {};
}

Status ImageWriter::zero(uint64_t off, uint64_t len)
{
    if (opts_.zeros == ZeroPolicy::Skip || len == 0)
        return {};
    // Holes do not need a buffer; any idle slot carries the accounting.
    auto b = buffer();
    if (!b)
        return b.error();
    Slot &slot = s_->slots[static_cast<size_t>(current_)];
    current_ = -1;
    return aio_write(slot, opts_.dest_offset + off, nullptr, len);
}

Status ImageWriter::finish()
{
    wait_idle();
    if (auto st = first_error(); !st)
        return st;
    int r = rbd_flush(dst_);
    if (r < 0)
        return ceph_error(r, "failed to flush " + label_);
    return {};
}

Result<CopyStats> copy_to_image(ByteSource &src, rbd_image_t dst, const std::string &dst_label,
                                const CopyOptions &opts)
{
    ImageWriter w(dst, dst_label, opts);
    uint64_t pos = 0; // end of the last range handled
    auto st = src.for_each_data_extent([&](const Extent &e) -> Status {
        if (auto z = w.zero(pos, e.offset - pos); !z)
            return z;
        for (uint64_t off = e.offset; off < e.offset + e.length;) {
            // Chunks aligned to the chunk size, so writes map to whole objects.
            uint64_t next = std::min(e.offset + e.length, (off / opts.chunk + 1) * opts.chunk);
            size_t len = static_cast<size_t>(next - off);
            auto buf = w.buffer();
            if (!buf)
                return buf.error();
            if (auto r = src.read_exact(off, *buf, len); !r)
                return r;
            if (auto s = w.submit(off, len); !s)
                return s;
            off = next;
        }
        pos = e.offset + e.length;
        return {};
    });
    if (st && pos < src.size())
        st = w.zero(pos, src.size() - pos);
    Status fin = w.finish();
    if (!st)
        return st.error();
    if (!fin)
        return fin.error();
    return w.stats();
}

} // namespace rbdclone
