#include "transfer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "copy_engine.hpp"
#include "image_activity.hpp"
#include "log.hpp"
#include "volume_ops.hpp"

namespace rbdclone {

namespace {

constexpr size_t kChunk = 2u << 20; // as CopyOptions::chunk
constexpr int kWaitSeconds = 120;

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd &&o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

// Reads up to len bytes, less only at EOF.
ssize_t read_full(int fd, char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = ::read(fd, buf + done, len - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLIN, 0};
            poll(&p, 1, -1);
            continue;
        }
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        done += static_cast<size_t>(r);
    }
    return static_cast<ssize_t>(done);
}

int write_full(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t r = ::write(fd, buf, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            poll(&p, 1, -1);
            continue;
        }
        if (r < 0)
            return -errno;
        buf += r;
        len -= static_cast<size_t>(r);
    }
    return 0;
}

Result<TransferPlan> plan(Pool &pool, const std::string &name, rbd_image_t img, uint64_t offset, uint64_t length,
                          const char *verb)
{
    uint64_t size = 0;
    int r = rbd_get_size(img, &size);
    if (r < 0)
        return ceph_error(r, "failed to get the size of " + pool.image_label(name));
    if (offset > size || (offset == size && length > 0))
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           cat("cannot ", verb, " ", pool.image_label(name), " at offset ", offset, ": the image has ",
                               size, " bytes"));
    if (length > size - offset)
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           cat("cannot ", verb, " ", length, " bytes of ", pool.image_label(name), " at offset ",
                               offset, ": that reaches past its end (", size, " bytes)"));
    return TransferPlan{offset, length ? length : size - offset};
}

void run_upload(std::shared_ptr<Pool> pool, std::string name, ImageHandle img, Fd fd, TransferPlan p,
                std::shared_ptr<ActivityMark> mark)
{
    const std::string label = pool->image_label(name);
    CopyOptions opts;
    opts.zeros = ZeroPolicy::WriteZeroes;
    opts.dest_offset = p.offset;
    opts.chunk = kChunk;
    opts.stall_timeout = stall_limit(pool->cluster().get());
    ImageWriter w(img.get(), label, opts);
    uint64_t pos = 0;
    Status st;
    for (;;) {
        auto slot = w.acquire();
        if (!slot) {
            st = slot.error();
            break;
        }
        ssize_t n = read_full(fd.fd, w.data(*slot),
                              static_cast<size_t>(std::min<uint64_t>(kChunk, p.length - pos + 1)));
        if (n <= 0 || pos + static_cast<uint64_t>(n) > p.length) {
            w.release(*slot);
            if (n < 0)
                st = plain_error(RBDC_ERR_SYSTEM, static_cast<int>(n), "failed to read the upload stream for " +
                                                                           label + ": " + strerror(static_cast<int>(-n)));
            else if (n > 0)
                st = plain_error(RBDC_ERR_INVALID_ARG, -ENOSPC,
                                 cat("upload into ", label, " carries more than the ", p.length, " bytes allowed"));
            break;
        }
        if (st = w.submit(*slot, pos, static_cast<size_t>(n)); !st)
            break;
        pos += static_cast<uint64_t>(n);
    }
    Status fin = w.finish();
    if (st && !fin)
        st = fin;
    ::close(std::exchange(fd.fd, -1));
    if (!st)
        log_message(RBDC_LOG_ERROR, "upload into " + label + " failed after " + std::to_string(pos) +
                                        " bytes: " + st.error().message);
    else
        log_info("uploaded ", pos, " bytes into ", label, " at offset ", p.offset, " (", w.stats().bytes_skipped,
                 " zero bytes written as zeroes)");
    if (!st && st.error().rc == -ETIMEDOUT)
        close_in_background(std::move(img), pool->cluster_ptr()); // its writes may never complete
    img.reset();
    mark.reset();
}

void run_download(std::shared_ptr<Pool> pool, std::string name, ImageHandle img, Fd fd, TransferPlan p)
{
    const std::string label = pool->image_label(name);
    MappedBuffer buf;
    if (!buf.allocate(kChunk)) {
        log_message(RBDC_LOG_ERROR, "download of " + label + ": out of memory");
        return;
    }
    uint64_t pos = 0;
    std::string failure;
    while (pos < p.length) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, p.length - pos));
        ssize_t r = rbd_read2(img.get(), p.offset + pos, n, buf.get(), LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL);
        if (r < 0 || static_cast<size_t>(r) != n) {
            failure = cat("failed to read ", label, " at offset ", p.offset + pos, ": ",
                          r < 0 ? describe_rc(static_cast<int>(r)) : "short read");
            break;
        }
        if (int w = write_full(fd.fd, buf.get(), n); w < 0) {
            failure = cat("the download stream of ", label, " closed after ", pos, " bytes: ", strerror(-w));
            break;
        }
        pos += n;
    }
    if (!failure.empty())
        log_message(RBDC_LOG_ERROR, failure);
    else
        log_info("downloaded ", pos, " bytes of ", label, " from offset ", p.offset);
}

} // namespace

void wait_for_uploads(const Pool &pool, const std::string &name)
{
    wait_for_activity(pool, name, Activity::Upload, kWaitSeconds);
}

Result<TransferPlan> start_upload(std::shared_ptr<Pool> pool, const std::string &name, int raw_fd, uint64_t offset,
                                  uint64_t length)
{
    Fd fd{raw_fd};
    auto img = open_image(*pool, name, false);
    if (!img)
        return img.error();
    auto p = plan(*pool, name, img->get(), offset, length, "upload into");
    if (!p)
        return p.error();
    auto mark = std::make_shared<ActivityMark>(*pool, name, Activity::Upload);
    std::thread(run_upload, pool, name, std::move(*img), Fd{std::exchange(fd.fd, -1)}, *p, mark).detach();
    return *p;
}

Result<TransferPlan> start_download(std::shared_ptr<Pool> pool, const std::string &name, int raw_fd,
                                    uint64_t offset, uint64_t length)
{
    Fd fd{raw_fd};
    wait_for_uploads(*pool, name);
    auto img = open_image(*pool, name, true);
    if (!img)
        return img.error();
    auto p = plan(*pool, name, img->get(), offset, length, "download");
    if (!p)
        return p.error();
    std::thread(run_download, pool, name, std::move(*img), Fd{std::exchange(fd.fd, -1)}, *p).detach();
    return *p;
}

} // namespace rbdclone
