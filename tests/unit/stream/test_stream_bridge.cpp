// The stream bridge of vol-upload / vol-download, with an in-memory image:
// byte placement, holes in both directions, range limits, back-pressure
// and readiness, failures and early ends.
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "stream/stream_bridge.hpp"

using namespace rbdclone;

namespace {

constexpr size_t kChunk = 4096;
const StreamLimits kLimits{kChunk, 3};

bool readable(int fd, int timeout_ms = 0)
{
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

std::string pattern(size_t n, char seed)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++)
        s[i] = static_cast<char>(seed + static_cast<char>(i % 251) + 1);
    return s;
}

// An image in memory.  Writes can be held back (a slow cluster) or fail.
class MemorySink final : public UploadSink {
  public:
    explicit MemorySink(std::string initial) : image(std::move(initial)) {}
    Status write(uint64_t off, MappedBuffer &buf, size_t len) override
    {
        const char *data = buf.get();
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return !hold; });
        if (fail_at_write >= 0 && writes == fail_at_write)
            return plain_error(RBDC_ERR_SYSTEM, -EIO, "disk on fire");
        writes++;
        image.replace(off, len, data, len);
        stats_.bytes_written += len;
        if (keep_buffers) { // as the upload's image sink does: keeps it, gives back another
            kept.emplace_back(std::string(data, len), std::move(buf));
            if (!buf.allocate(kept.back().second.len))
                return plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "no memory");
        }
        return {};
    }
    Status zero(uint64_t off, uint64_t len) override
    {
        std::lock_guard lk(mu);
        zeroed.emplace_back(off, len);
        image.replace(off, len, std::string(len, '\0'));
        return {};
    }
    Status finish() override
    {
        std::lock_guard lk(mu);
        finished = true;
        return {};
    }
    CopyStats stats() const override { return stats_; }
    void release()
    {
        std::lock_guard lk(mu);
        hold = false;
        cv.notify_all();
    }

    std::mutex mu;
    std::condition_variable cv;
    std::string image;
    bool hold = false;
    int fail_at_write = -1;
    int writes = 0;
    bool keep_buffers = false;
    std::vector<std::pair<std::string, MappedBuffer>> kept; // what was written, the buffer it came in

    bool finished = false;
    std::vector<std::pair<uint64_t, uint64_t>> zeroed;
    CopyStats stats_;
};

// A disk in memory with known data extents; counts its reads.
class MemorySource final : public ByteSource {
  public:
    MemorySource(std::string bytes, std::vector<Extent> extents) : bytes_(std::move(bytes)), extents_(std::move(extents))
    {
    }
    const std::string &label() const override { return label_; }
    uint64_t size() const override { return bytes_.size(); }
    Status for_each_data_extent(const std::function<Status(const Extent &)> &cb) override
    {
        for (const Extent &e : extents_)
            if (auto st = cb(e); !st)
                return st;
        return {};
    }
    Status read_exact(uint64_t off, char *buf, size_t len) override
    {
        reads++;
        if (fail_from && off + len > fail_from)
            return plain_error(RBDC_ERR_SYSTEM, -EIO, "read error at " + std::to_string(off));
        memcpy(buf, bytes_.data() + off, len);
        return {};
    }
    std::atomic<int> reads{0};
    uint64_t fail_from = 0;

  private:
    std::string bytes_;
    std::vector<Extent> extents_;
    std::string label_ = "mem";
};

// A disk whose reads take turns as a test says: the read at `held_at`
// waits until released, and one read (`fail_at`) fails; it counts the
// reads running at once.
class GatedSource final : public ByteSource {
  public:
    explicit GatedSource(std::string bytes) : bytes_(std::move(bytes)) {}
    const std::string &label() const override { return label_; }
    uint64_t size() const override { return bytes_.size(); }
    Status read_exact(uint64_t off, char *buf, size_t len) override
    {
        {
            std::unique_lock lk(mu);
            started++;
            running++;
            peak = std::max(peak, running);
            cv.notify_all();
            cv.wait(lk, [&] { return off != held_at || released; });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1)); // others may start meanwhile
        std::lock_guard lk(mu);
        running--;
        cv.notify_all();
        if (fail_at && off == *fail_at)
            return plain_error(RBDC_ERR_SYSTEM, -EIO, "read error at " + std::to_string(off));
        memcpy(buf, bytes_.data() + off, len);
        return {};
    }
    // Waits until n reads have started; false after 5 s.
    bool wait_started(int n)
    {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, std::chrono::seconds(5), [&] { return started >= n; });
    }
    void release()
    {
        std::lock_guard lk(mu);
        released = true;
        cv.notify_all();
    }

    std::mutex mu;
    std::condition_variable cv;
    int started = 0, running = 0, peak = 0;
    uint64_t held_at = UINT64_MAX;
    bool released = false;
    std::optional<uint64_t> fail_at;

  private:
    std::string bytes_;
    std::string label_ = "gated";
};

size_t send_all(UploadStream &s, const std::string &data)
{
    size_t done = 0;
    while (done < data.size()) {
        auto r = s.send(data.data() + done, data.size() - done, true);
        if (!r || !*r)
            break;
        done += **r;
    }
    return done;
}

// What a sparse reader (libvirtd's) receives: the bytes, holes as zeros,
// and how many bytes came as holes.
struct Received {
    std::string bytes;
    uint64_t hole_bytes = 0;
    std::string error;
};

Received read_all(DownloadStream &s, bool sparse)
{
    Received out;
    char buf[1000];
    for (;;) {
        if (sparse) {
            auto d = s.in_data();
            if (!d) {
                out.error = d.error().message;
                return out;
            }
            if (!d->data && d->length == 0)
                return out;
            if (!d->data) {
                out.bytes.append(d->length, '\0');
                out.hole_bytes += d->length;
                EXPECT_TRUE(s.skip_hole(d->length));
                continue;
            }
        }
        auto r = s.recv(buf, sizeof(buf), true);
        if (!r) {
            out.error = r.error().message;
            return out;
        }
        if (**r == 0)
            return out;
        out.bytes.append(buf, **r);
    }
}

} // namespace

TEST(ReadyFlag, ReadableExactlyWhileSet)
{
    ReadyFlag f;
    ASSERT_TRUE(f.valid());
    EXPECT_FALSE(readable(f.fd()));
    f.set(true);
    f.set(true);
    EXPECT_TRUE(readable(f.fd()));
    f.set(false);
    EXPECT_FALSE(readable(f.fd()));
    f.set(true);
    EXPECT_TRUE(readable(f.fd()));
}

TEST(UploadStream, DataAndHolesLandAtTheirOffsets)
{
    MemorySink sink(std::string(20 * kChunk, 'o')); // old data everywhere
    UploadStream s(kChunk, 15 * kChunk, "img", kLimits);
    std::thread worker([&] { EXPECT_TRUE(s.run(sink)); });
    const std::string a = pattern(kChunk + 100, 1), b = pattern(3 * kChunk, 2);
    EXPECT_EQ(send_all(s, a), a.size());
    ASSERT_TRUE(s.send_hole(5 * kChunk));
    EXPECT_EQ(send_all(s, b), b.size());
    ASSERT_TRUE(s.send_hole(2 * kChunk)); // a trailing hole, short of the end
    ASSERT_TRUE(s.finish());
    worker.join();

    std::string want(20 * kChunk, 'o');
    uint64_t at = kChunk;
    want.replace(at, a.size(), a);
    at += a.size();
    want.replace(at, 5 * kChunk, std::string(5 * kChunk, '\0'));
    at += 5 * kChunk;
    want.replace(at, b.size(), b);
    at += b.size();
    want.replace(at, 2 * kChunk, std::string(2 * kChunk, '\0'));
    EXPECT_TRUE(sink.image == want);
    EXPECT_TRUE(sink.finished);
    EXPECT_EQ(s.bytes_received(), a.size() + b.size());
    // The holes were zeroed as ranges, not written byte by byte.
    ASSERT_EQ(sink.zeroed.size(), 2u);
    EXPECT_EQ(sink.zeroed[0], std::make_pair(kChunk + a.size(), 5 * kChunk));
}

TEST(UploadStream, NothingPastTheEndOfTheRange)
{
    MemorySink sink(std::string(8 * kChunk, 'o'));
    UploadStream s(0, 4 * kChunk, "rbd/img", kLimits);
    std::thread worker([&] { EXPECT_TRUE(s.run(sink)); });
    EXPECT_EQ(send_all(s, pattern(3 * kChunk, 3)), 3 * kChunk);
    auto r = s.send(pattern(kChunk + 1, 4).data(), kChunk + 1, true);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, RBDC_ERR_INVALID_ARG);
    EXPECT_NE(r.error().message.find("rbd/img"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("reaches past the end"), std::string::npos) << r.error().message;
    EXPECT_TRUE(s.send_hole(kChunk)); // exactly to the end is fine
    EXPECT_TRUE(s.finish());
    worker.join();
    EXPECT_EQ(sink.image.substr(4 * kChunk), std::string(4 * kChunk, 'o')) << "nothing written past the range";
}

TEST(UploadStream, AHolePastTheEndFailsTheStream)
{
    MemorySink sink(std::string(8 * kChunk, 'o'));
    UploadStream s(0, 4 * kChunk, "rbd/img", kLimits);
    std::thread worker([&] { EXPECT_FALSE(s.run(sink)); });
    EXPECT_EQ(send_all(s, pattern(kChunk, 3)), kChunk);
    EXPECT_TRUE(s.send_hole(3 * kChunk + 1)) << "reported by the next call, not this one";
    EXPECT_TRUE(readable(s.ready_fd()));
    auto r = s.send("x", 1, true);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("a hole of 12289 bytes"), std::string::npos) << r.error().message;
    auto f = s.finish();
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("reaches past the end"), std::string::npos) << f.error().message;
    worker.join();
    EXPECT_EQ(sink.image.substr(4 * kChunk), std::string(4 * kChunk, 'o'));
}

TEST(UploadStream, BackPressureAndReadiness)
{
    MemorySink sink(std::string(64 * kChunk, '\0'));
    sink.hold = true; // the cluster does not take writes yet
    UploadStream s(0, 64 * kChunk, "img", kLimits);
    std::thread worker([&] { EXPECT_TRUE(s.run(sink)); });
    EXPECT_TRUE(readable(s.ready_fd()));
    const std::string data = pattern(64 * kChunk, 5);
    size_t taken = 0;
    for (;;) {
        auto r = s.send(data.data() + taken, 1000, false);
        ASSERT_TRUE(r);
        if (!*r)
            break;
        taken += **r;
    }
    // The worker holds one buffer while its write waits; the rest are queued.
    EXPECT_LE(taken, kLimits.buffers * kChunk);
    EXPECT_GE(taken, (kLimits.buffers - 1) * kChunk);
    EXPECT_FALSE(readable(s.ready_fd()));
    sink.release();
    EXPECT_TRUE(readable(s.ready_fd(), 5000)) << "a freed buffer makes the stream writable again";
    EXPECT_EQ(send_all(s, data.substr(taken)), data.size() - taken);
    ASSERT_TRUE(s.finish());
    worker.join();
    EXPECT_TRUE(sink.image == data);
}

TEST(UploadStream, AWriteFailureReachesTheSenderAndFinish)
{
    MemorySink sink(std::string(64 * kChunk, '\0'));
    sink.fail_at_write = 1;
    UploadStream s(0, 64 * kChunk, "img", kLimits);
    std::thread worker([&] { EXPECT_FALSE(s.run(sink)); });
    const std::string data = pattern(64 * kChunk, 6);
    size_t done = 0;
    Result<std::optional<size_t>> r = std::optional<size_t>(0);
    while (done < data.size() && (r = s.send(data.data() + done, kChunk, true)))
        done += **r;
    ASSERT_FALSE(r) << "the sender learns of the failure";
    EXPECT_NE(r.error().message.find("disk on fire"), std::string::npos);
    EXPECT_TRUE(readable(s.ready_fd())) << "a failed stream is ready, to report its error";
    auto f = s.finish();
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("disk on fire"), std::string::npos);
    worker.join();
}

TEST(UploadStream, AbortStopsTheWorkerWithoutFinishingTheImage)
{
    MemorySink sink(std::string(8 * kChunk, '\0'));
    UploadStream s(0, 8 * kChunk, "img", kLimits);
    Status outcome;
    std::thread worker([&] { outcome = s.run(sink); });
    EXPECT_EQ(send_all(s, pattern(kChunk / 2, 7)), kChunk / 2);
    s.abort();
    worker.join();
    ASSERT_FALSE(outcome);
    EXPECT_NE(outcome.error().message.find("aborted"), std::string::npos);
    EXPECT_EQ(sink.writes, 0) << "the unsealed half block was not written";
    EXPECT_FALSE(s.send("x", 1, true));
}

namespace {

// An upload as the glue drives it: the intake in front, the worker behind.
struct GlueUpload {
    GlueUpload(uint64_t offset, uint64_t length, MemorySink &sink)
        : stream(std::make_shared<UploadStream>(offset, length, "rbd/img", kLimits)), intake(stream),
          worker([this, &sink] { outcome = stream->run(sink); })
    {
    }
    ~GlueUpload()
    {
        if (worker.joinable())
            worker.join();
    }
    // Sends data in pieces of `piece` bytes as libvirtd does (again from
    // where a partial send stopped); false at the first failed send.
    bool send_pieces(const std::string &data, size_t piece, bool block = true)
    {
        for (size_t done = 0; done < data.size();) {
            auto r = intake.send(data.data() + done, std::min(piece, data.size() - done), block);
            if (!r) {
                send_error = r.error().message;
                return false;
            }
            if (!*r || **r == 0) {
                send_error = "would block";
                return false;
            }
            done += **r;
        }
        return true;
    }

    std::shared_ptr<UploadStream> stream;
    UploadIntake intake;
    Status outcome;
    std::string send_error;
    std::thread worker;
};

} // namespace

TEST(UploadIntake, BytesPastTheRangeAreTakenDroppedAndReportedAtFinish)
{
    // A range of 3 chunks + 100 bytes at offset kChunk; the stream carries
    // 6 chunks, in pieces that do not line up with the range's end.
    MemorySink sink(std::string(8 * kChunk, 'o'));
    const uint64_t length = 3 * kChunk + 100;
    GlueUpload up(kChunk, length, sink);
    const std::string data = pattern(6 * kChunk, 16);
    EXPECT_TRUE(up.send_pieces(data, 1000)) << "a send failed: " << up.send_error;
    auto f = up.intake.finish();
    up.worker.join();
    ASSERT_FALSE(f) << "finish reports the bytes that did not fit";
    EXPECT_EQ(f.error().kind, RBDC_ERR_INVALID_ARG);
    EXPECT_NE(f.error().message.find("upload into rbd/img carries more than the 12388 bytes allowed: data of 1000 "
                                     "bytes at offset 16096 reaches past the end at 16484"),
              std::string::npos)
        << f.error().message;
    EXPECT_NE(f.error().message.find("12188 bytes past the end were discarded"), std::string::npos)
        << f.error().message;
    EXPECT_TRUE(up.outcome) << "the worker wrote the range: " << up.outcome.error().message;
    EXPECT_EQ(up.intake.bytes_discarded(), data.size() - length);
    EXPECT_EQ(sink.image.size(), 8 * kChunk) << "the image did not grow";
    EXPECT_TRUE(sink.image.substr(0, kChunk) == std::string(kChunk, 'o'));
    EXPECT_TRUE(sink.image.substr(kChunk, length) == data.substr(0, length)) << "every byte within the range";
    EXPECT_TRUE(sink.image.substr(kChunk + length) == std::string(8 * kChunk - kChunk - length, 'o'))
        << "nothing past the range";
    EXPECT_TRUE(sink.finished);
}

TEST(UploadIntake, DroppingNeedsNoBuffer)
{
    // The cluster takes no write: every buffer is taken by the range, yet
    // bytes past it are still taken at once, without blocking.
    MemorySink sink(std::string(8 * kChunk, 'o'));
    sink.hold = true;
    GlueUpload up(0, kLimits.buffers * kChunk, sink);
    const std::string range = pattern(kLimits.buffers * kChunk, 17), more = pattern(50 * kChunk, 18);
    EXPECT_TRUE(up.send_pieces(range, kChunk, false)) << up.send_error;
    EXPECT_FALSE(readable(up.intake.ready_fd())) << "all buffers are in use";
    EXPECT_TRUE(up.send_pieces(more, kChunk, false)) << "past the range: " << up.send_error;
    EXPECT_EQ(up.intake.bytes_discarded(), more.size());
    sink.release();
    auto f = up.intake.finish();
    up.worker.join();
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("reaches past the end"), std::string::npos) << f.error().message;
    EXPECT_TRUE(sink.image.substr(0, range.size()) == range);
    EXPECT_TRUE(sink.image.substr(range.size()) == std::string(8 * kChunk - range.size(), 'o'));
}

TEST(UploadIntake, AHolePastTheRangeZeroesUpToItsEndOnly)
{
    MemorySink sink(std::string(8 * kChunk, 'o'));
    GlueUpload up(0, 4 * kChunk, sink);
    const std::string a = pattern(kChunk, 19);
    EXPECT_TRUE(up.send_pieces(a, kChunk)) << up.send_error;
    EXPECT_TRUE(up.intake.send_hole(3 * kChunk + 1));
    EXPECT_TRUE(up.send_pieces("x", 1)) << "data after it: " << up.send_error;
    auto f = up.intake.finish();
    up.worker.join();
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().kind, RBDC_ERR_INVALID_ARG);
    EXPECT_NE(f.error().message.find("a hole of 12289 bytes at offset 4096 reaches past the end at 16384"),
              std::string::npos)
        << f.error().message;
    EXPECT_TRUE(sink.image.substr(0, kChunk) == a);
    EXPECT_TRUE(sink.image.substr(kChunk, 3 * kChunk) == std::string(3 * kChunk, '\0')) << "the hole, to the end";
    EXPECT_TRUE(sink.image.substr(4 * kChunk) == std::string(4 * kChunk, 'o'));
}

TEST(UploadIntake, AStreamThatFitsFinishesCleanly)
{
    MemorySink sink(std::string(4 * kChunk, 'o'));
    GlueUpload up(0, 4 * kChunk, sink);
    const std::string data = pattern(3 * kChunk, 20);
    EXPECT_TRUE(up.send_pieces(data, 1000)) << up.send_error;
    EXPECT_TRUE(up.intake.send_hole(kChunk)) << "exactly to the end";
    auto f = up.intake.finish();
    EXPECT_TRUE(f) << f.error().message;
    up.worker.join();
    EXPECT_EQ(up.intake.bytes_discarded(), 0u);
    EXPECT_TRUE(sink.image == data + std::string(kChunk, '\0'));
}

TEST(UploadIntake, AWriteFailureStillReachesTheSender)
{
    MemorySink sink(std::string(64 * kChunk, '\0'));
    sink.fail_at_write = 1;
    GlueUpload up(0, 64 * kChunk, sink);
    EXPECT_FALSE(up.send_pieces(pattern(64 * kChunk, 21), kChunk));
    EXPECT_NE(up.send_error.find("disk on fire"), std::string::npos) << up.send_error;
    auto f = up.intake.finish();
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("disk on fire"), std::string::npos) << f.error().message;
}

TEST(DownloadStream, SparseCarriesHolesAndZeroBlocksAsHoles)
{
    // 16 chunks: data in chunks 2-5 (chunk 3 all zeros inside the extent,
    // half of chunk 5 zero), and in chunk 12; the rest unallocated.
    std::string disk(16 * kChunk, '\0');
    disk.replace(2 * kChunk, kChunk, pattern(kChunk, 8));
    disk.replace(4 * kChunk, kChunk + kChunk / 2, pattern(kChunk + kChunk / 2, 9));
    disk.replace(12 * kChunk, 100, pattern(100, 10));
    MemorySource src(disk, {{2 * kChunk, 4 * kChunk}, {12 * kChunk, kChunk}});
    // The range starts and ends inside holes.
    DownloadStream s(kChunk, 14 * kChunk, true, "img", kLimits, 1024);
    std::thread worker([&] { EXPECT_TRUE(s.run(src)); });
    Received got = read_all(s, true);
    worker.join();
    EXPECT_EQ(got.error, "");
    ASSERT_EQ(got.bytes.size(), 14 * kChunk);
    EXPECT_TRUE(got.bytes == disk.substr(kChunk, 14 * kChunk));
    // Everything but 2.5 chunks of data and one 1024-byte block of chunk 12.
    EXPECT_EQ(got.hole_bytes, 14 * kChunk - (kChunk + kChunk + kChunk / 2) - 1024);
    EXPECT_EQ(src.reads, 5) << "unallocated ranges are never read";
}

TEST(DownloadStream, NotSparseSendsEveryByte)
{
    std::string disk = pattern(10 * kChunk + 7, 11);
    disk.replace(kChunk, 3 * kChunk, std::string(3 * kChunk, '\0'));
    MemorySource src(disk, {{0, kChunk}});
    DownloadStream s(0, disk.size(), false, "img", kLimits);
    std::thread worker([&] { EXPECT_TRUE(s.run(src)); });
    Received got = read_all(s, false);
    worker.join();
    EXPECT_EQ(got.hole_bytes, 0u);
    EXPECT_TRUE(got.bytes == disk);
}

TEST(DownloadStream, ReadsAheadOnlyAFewBuffers)
{
    std::string disk = pattern(64 * kChunk, 12);
    MemorySource src(disk, {{0, disk.size()}});
    DownloadStream s(0, disk.size(), true, "img", kLimits);
    std::thread worker([&] { EXPECT_TRUE(s.run(src)); });
    EXPECT_TRUE(readable(s.ready_fd(), 5000));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_LE(src.reads.load(), static_cast<int>(kLimits.buffers)) << "the worker waits for the reader";
    Received got = read_all(s, true);
    worker.join();
    EXPECT_TRUE(got.bytes == disk);
}

TEST(DownloadStream, AReadErrorEndsTheStreamWithTheReason)
{
    std::string disk = pattern(8 * kChunk, 13);
    MemorySource src(disk, {{0, disk.size()}});
    src.fail_from = 5 * kChunk;
    DownloadStream s(0, disk.size(), true, "img", kLimits);
    std::thread worker([&] { EXPECT_FALSE(s.run(src)); });
    Received got = read_all(s, true);
    worker.join();
    EXPECT_NE(got.error.find("read error"), std::string::npos) << got.error;
    EXPECT_TRUE(got.bytes == disk.substr(0, 5 * kChunk)) << "what came before the error is delivered";
}

TEST(DownloadStream, AReaderThatStopsReleasesTheWorker)
{
    std::string disk = pattern(64 * kChunk, 14);
    MemorySource src(disk, {{0, disk.size()}});
    DownloadStream s(0, disk.size(), false, "img", kLimits);
    Status outcome = plain_error(RBDC_ERR_INTERNAL, -EIO, "not run");
    std::thread worker([&] { outcome = s.run(src); });
    char buf[100];
    ASSERT_TRUE(s.recv(buf, sizeof(buf), true));
    s.stop();
    worker.join();
    EXPECT_TRUE(outcome) << "stopping is not a failure";
    EXPECT_LT(src.reads.load(), 64);
}

TEST(DownloadStream, RecvDoesNotBlockWhenAskedNotTo)
{
    std::string disk = pattern(kChunk, 15);
    MemorySource src(disk, {{0, disk.size()}});
    DownloadStream s(0, disk.size(), false, "img", kLimits);
    char buf[100];
    auto r = s.recv(buf, sizeof(buf), false);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r) << "nothing read yet: would block";
    EXPECT_FALSE(readable(s.ready_fd()));
    std::thread worker([&] { EXPECT_TRUE(s.run(src)); });
    EXPECT_TRUE(readable(s.ready_fd(), 5000));
    Received got = read_all(s, false);
    worker.join();
    EXPECT_TRUE(got.bytes == disk);
}

TEST(DownloadStream, ReadersStayBusyWhileAnEarlierReadIsSlow)
{
    // One slow read must not stop the others: with 4 readers and 8
    // buffers, the 7 chunks after a held first chunk are all read while it
    // waits, 4 at a time at most, and nothing reaches the glue out of order.
    std::string disk = pattern(32 * kChunk, 16);
    GatedSource src(disk);
    src.held_at = 0;
    const StreamLimits lim{kChunk, 8, 4};
    DownloadStream s(0, disk.size(), false, "img", lim);
    std::thread worker([&] { EXPECT_TRUE(s.run(src)); });
    EXPECT_TRUE(src.wait_started(8)) << "started only " << src.started << " reads";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
        std::lock_guard lk(src.mu);
        EXPECT_EQ(src.started, 8) << "no more buffers than the limit";
        EXPECT_GE(src.peak, 2) << "reads overlap";
        EXPECT_LE(src.peak, 4) << "at most as many reads as readers";
    }
    EXPECT_FALSE(readable(s.ready_fd())) << "the first chunk is not read yet";
    src.release();
    Received got = read_all(s, false);
    worker.join();
    EXPECT_EQ(got.error, "");
    EXPECT_TRUE(got.bytes == disk);
    EXPECT_LE(src.peak, 4);
}

TEST(DownloadStream, AFailedReadInTheMiddleStopsTheStreamThere)
{
    // Reads after the failed one may already be done: they are not sent.
    std::string disk = pattern(16 * kChunk, 17);
    GatedSource src(disk);
    src.fail_at = 3 * kChunk;
    const StreamLimits lim{kChunk, 8, 4};
    for (bool sparse : {false, true}) {
        DownloadStream s(0, disk.size(), sparse, "img", lim, 1024);
        std::thread worker([&] { EXPECT_FALSE(s.run(src)); });
        Received got = read_all(s, sparse);
        worker.join();
        EXPECT_NE(got.error.find("read error at " + std::to_string(3 * kChunk)), std::string::npos) << got.error;
        EXPECT_TRUE(got.bytes == disk.substr(0, 3 * kChunk)) << "sparse " << sparse << ": " << got.bytes.size();
    }
}

TEST(DownloadStream, SparseKeepsHolesInOrderWithParallelReads)
{
    // Holes between extents come out where they belong while the reads of
    // the extents around them overlap.
    std::string disk(40 * kChunk, '\0');
    std::vector<Extent> ext;
    for (size_t i = 0; i < 40; i += 4) {
        disk.replace(i * kChunk, 2 * kChunk, pattern(2 * kChunk, static_cast<char>(i)));
        ext.push_back({i * kChunk, 2 * kChunk});
    }
    MemorySource src(disk, ext);
    const StreamLimits lim{kChunk, 6, 3};
    DownloadStream s(0, disk.size(), true, "img", lim, 1024);
    std::thread worker([&] { EXPECT_TRUE(s.run(src)); });
    Received got = read_all(s, true);
    worker.join();
    EXPECT_EQ(got.error, "");
    EXPECT_TRUE(got.bytes == disk);
    EXPECT_EQ(got.hole_bytes, 20 * kChunk);
    EXPECT_EQ(src.reads, 20);
}

TEST(DownloadStream, RecvFillsTheBufferAcrossChunksUpToAHole)
{
    // libvirtd receives 262120 bytes per message, which no chunk size
    // divides: a recv that stopped at each chunk's end would send one tiny
    // message per chunk.  Data ready in consecutive chunks fills one recv,
    // and in_data reports it as one run; a hole still ends it.
    std::string disk(8 * kChunk, '\0');
    disk.replace(0, 5 * kChunk, pattern(5 * kChunk, 18));
    disk.replace(6 * kChunk, kChunk, pattern(kChunk, 19));
    for (bool sparse : {false, true}) {
        MemorySource src(disk, {{0, 5 * kChunk}, {6 * kChunk, kChunk}});
        DownloadStream s(0, disk.size(), sparse, "img", StreamLimits{kChunk, 16, 2}, 1024);
        Status outcome = plain_error(RBDC_ERR_INTERNAL, -EIO, "not run");
        std::thread worker([&] { outcome = s.run(src); });
        worker.join(); // 16 buffers: every chunk is read before the first recv
        ASSERT_TRUE(outcome);
        if (sparse) {
            auto d = s.in_data();
            ASSERT_TRUE(d);
            EXPECT_TRUE(d->data);
            EXPECT_EQ(d->length, 5 * kChunk) << "five chunks of data, one run";
        }
        std::vector<char> buf(8 * kChunk);
        auto r = s.recv(buf.data(), 3 * kChunk + 10, true);
        ASSERT_TRUE(r);
        ASSERT_EQ(**r, 3 * kChunk + 10) << "sparse " << sparse << ": as much as asked, across chunks";
        EXPECT_EQ(std::string(buf.data(), **r), disk.substr(0, **r));
        r = s.recv(buf.data(), buf.size(), true);
        ASSERT_TRUE(r);
        if (sparse) {
            EXPECT_EQ(**r, 2 * kChunk - 10) << "the hole ends the data";
            EXPECT_EQ(std::string(buf.data(), **r), disk.substr(3 * kChunk + 10, **r));
            Received rest = read_all(s, true);
            EXPECT_EQ(rest.error, "");
            EXPECT_TRUE(rest.bytes == disk.substr(5 * kChunk));
            EXPECT_EQ(rest.hole_bytes, 2 * kChunk);
        } else {
            EXPECT_EQ(**r, 5 * kChunk - 10) << "the rest, in one recv";
            EXPECT_TRUE(std::string(buf.data(), **r) == disk.substr(3 * kChunk + 10));
        }
    }
}

TEST(UploadStream, ASinkMayKeepTheBuffersItWrites)
{
    // The image sink swaps the stream's filled buffer for a free one of its
    // own: the stream must fill only what it got back, never a buffer it
    // handed over (librbd writes from it until the write completes).
    MemorySink sink(std::string(40 * kChunk, 'o'));
    sink.keep_buffers = true;
    UploadStream s(0, 40 * kChunk, "img", kLimits);
    std::thread worker([&] { EXPECT_TRUE(s.run(sink)); });
    const std::string data = pattern(40 * kChunk, 3);
    EXPECT_EQ(send_all(s, data), data.size());
    ASSERT_TRUE(s.finish());
    worker.join();
    EXPECT_TRUE(sink.image == data);
    ASSERT_EQ(sink.kept.size(), 40u);
    for (auto &[written, buf] : sink.kept)
        EXPECT_EQ(std::string(buf.get(), written.size()), written) << "a buffer was refilled after it was handed over";
}
