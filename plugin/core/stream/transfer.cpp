#include "stream/transfer.hpp"

#include <cerrno>
#include <cstring>
#include <chrono>
#include <thread>
#include <utility>

#include "base/log.hpp"
#include "io/copy_engine.hpp"
#include "lifecycle/image_activity.hpp"
#include "ceph/image_ops.hpp"

namespace rbdclone {

namespace {

constexpr int kWaitSeconds = 120;

struct TransferPlan {
    uint64_t offset = 0;
    uint64_t length = 0;     // bytes the stream may carry
    uint64_t image_size = 0;
};

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
    return TransferPlan{offset, length ? length : size - offset, size};
}

// The image opened (with its key, if encrypted) and the range checked against it.
struct OpenedTransfer {
    ImageHandle img;
    TransferPlan plan;
};

Result<OpenedTransfer> open_transfer(Pool &pool, const std::string &name, bool read_only, const VolumeKey *key,
                                     uint64_t offset, uint64_t length, const char *verb)
{
    auto img = open_image(pool, name, read_only, key);
    if (!img)
        return img.error();
    auto p = plan(pool, name, img->get(), offset, length, verb);
    if (!p)
        return p.error();
    return OpenedTransfer{std::move(*img), *p};
}

// A stream's eventfd (its readiness for libvirt's event loop) could not be made.
Error no_eventfd(const char *kind)
{
    const int err = errno; // before anything else can change it
    return plain_error(RBDC_ERR_SYSTEM, -err, cat("cannot create an eventfd for the ", kind, " stream"));
}

// An upload's bytes go through the copy engine's aio pipeline.
class ImageSink final : public UploadSink {
  public:
    ImageSink(rbd_image_t img, const std::string &label, const CopyOptions &opts) : w_(img, label, opts) {}
    Status write(uint64_t off, MappedBuffer &buf, size_t len) override
    {
        auto slot = w_.acquire();
        if (!slot)
            return slot.error();
        MappedBuffer &mine = w_.buffer(*slot);
        if (buf.len == mine.len)
            std::swap(buf, mine); // the stream's buffer goes to librbd as it is, ours back to the stream
        else
            memcpy(mine.get(), buf.get(), len);
        return w_.submit(*slot, off, len);
    }
    Status zero(uint64_t off, uint64_t len) override { return w_.zero(off, len); }
    Status finish() override { return w_.finish(); }
    CopyStats stats() const override { return w_.stats(); }

  private:
    ImageWriter w_;
};

void run_upload(std::shared_ptr<Pool> pool, std::string name, ImageHandle img, std::shared_ptr<UploadStream> stream,
                TransferPlan p, std::unique_ptr<ActivityMark> mark)
{
    const std::string label = pool->image_label(name);
    CopyOptions opts;
    opts.zeros = ZeroPolicy::WriteZeroes;
    opts.stall_timeout = stall_limit(pool->cluster().get());
    Status st;
    CopyStats stats;
    {
        ImageSink sink(img.get(), label, opts);
        st = stream->run(sink);
        stats = sink.stats();
    }
    const uint64_t got = stream->bytes_received();
    if (!st)
        log_message(st.error().rc == -EPIPE ? RBDC_LOG_WARN : RBDC_LOG_ERROR,
                    cat("upload into ", label, " at offset ", p.offset, " ended after ", got,
                        " bytes: ", st.error().message));
    else
        log_info("uploaded ", got, " bytes into ", label, " at offset ", p.offset, " (", stats.bytes_written,
                 " bytes written, ", stats.bytes_skipped, " zero or hole bytes written as zeroes)");
    if (!st && st.error().rc == -ETIMEDOUT)
        close_in_background(std::move(img), pool->cluster_ptr()); // its writes may never complete
    img.reset();
    mark.reset();
}

// `keep`: the image's cluster connection outlives its handle.
void run_download(std::shared_ptr<Pool> keep, std::unique_ptr<RbdSource> src, std::shared_ptr<DownloadStream> stream,
                  TransferPlan p, bool sparse)
{
    const auto t0 = std::chrono::steady_clock::now();
    Status st = stream->run(*src);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    if (!st)
        log_message(RBDC_LOG_ERROR, cat("download of ", src->label(), " failed: ", st.error().message));
    else
        log_info("downloaded ", src->label(), " from offset ", p.offset, ", ", p.length, " bytes",
                 sparse ? " as a sparse stream" : "", " in ", ms.count(), " ms");
    src.reset();
    keep.reset();
}

} // namespace

void wait_for_uploads(const Pool &pool, const std::string &name)
{
    wait_for_activity(pool, name, Activity::Upload, kWaitSeconds);
}

Result<std::unique_ptr<UploadIntake>> start_upload(std::shared_ptr<Pool> pool, const std::string &name,
                                                   uint64_t offset, uint64_t length, const VolumeKey *key)
{
    auto t = open_transfer(*pool, name, false, key, offset, length, "upload into");
    if (!t)
        return t.error();
    auto stream = std::make_shared<UploadStream>(t->plan.offset, t->plan.length, pool->image_label(name));
    if (stream->ready_fd() < 0)
        return no_eventfd("upload");
    auto mark = std::make_unique<ActivityMark>(*pool, name, Activity::Upload);
    std::thread([pool, name, img = std::move(t->img), stream, plan = t->plan, mark = std::move(mark)]() mutable {
        thread_body("upload worker", [&] { run_upload(pool, name, std::move(img), stream, plan, std::move(mark)); });
    }).detach();
    return std::make_unique<UploadIntake>(std::move(stream));
}

Result<std::shared_ptr<DownloadStream>> start_download(std::shared_ptr<Pool> pool, const std::string &name,
                                                       uint64_t offset, uint64_t length, bool sparse,
                                                       const VolumeKey *key)
{
    auto t = open_transfer(*pool, name, true, key, offset, length, "download");
    if (!t)
        return t.error();
    const TransferPlan p = t->plan;
    auto src = std::make_unique<RbdSource>(std::move(t->img), pool->image_label(name), p.image_size, key != nullptr);
    auto stream =
        std::make_shared<DownloadStream>(p.offset, p.length, sparse, pool->image_label(name), kDownloadLimits);
    if (stream->ready_fd() < 0)
        return no_eventfd("download");
    std::thread([pool, src = std::move(src), stream, plan = p, sparse]() mutable {
        thread_body("download worker", [&] { run_download(pool, std::move(src), stream, plan, sparse); });
    }).detach();
    return stream;
}

} // namespace rbdclone
