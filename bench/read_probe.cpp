// The librbd read probe: how fast can this cluster hand out the bytes of an
// RBD image, at best?  The RBD side of a vol-download alone (no libvirt, no
// RPC), measured beside it in stream-bench; rbd export and vol-download are
// held against it.
//
// Each trial opens the image read-only, reads every byte with up to `depth`
// librbd aio reads of `chunk` bytes in flight into `depth` buffers, and is
// timed from the first read to the last completion.  By default the bytes go
// nowhere (a buffer is reused as soon as its read is done); with --to-file
// each chunk is written at its offset into PATH (pwrite, on the issuing
// thread, before its buffer is reused), as any export of an image must.
//
//   read-probe POOL IMAGE [--chunk MIB] [--depth N] [--reps N] [--to-file PATH]
//       defaults: chunk 2 MiB, depth 8 (what the module's download keeps in
//       flight), 1 trial, after one untimed warm-up trial; prints each
//       trial and the best.
//
// The last line of the output is for scripts:
//   READPROBE MIBS=<MiB/s> CHUNK=<MiB> DEPTH=<n> MS=<ms>
#include "probe_conn.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <vector>

namespace {

using probe::Conn;
using probe::die;
using probe::MiB;

struct Settings {
    unsigned chunk_mib = 2;
    unsigned depth = 8;
    std::string to_file; // empty: into memory only
};

// One buffer and its read; completions run in librados threads and hand the
// slot back to the issuing thread through `done`.
struct Reads {
    struct Slot {
        Reads *owner = nullptr;
        std::vector<char> buf;
        uint64_t off = 0;
        size_t len = 0;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Slot> slots;
    std::deque<Slot *> done; // read, its bytes not yet consumed
    unsigned in_flight = 0;
    int first_error = 0;

    static void complete(rbd_completion_t c, void *arg)
    {
        auto *s = static_cast<Slot *>(arg);
        const ssize_t r = rbd_aio_get_return_value(c);
        rbd_aio_release(c);
        Reads *self = s->owner;
        std::lock_guard lk(self->mu);
        if (r < 0 && !self->first_error)
            self->first_error = static_cast<int>(r);
        else if (r >= 0 && static_cast<size_t>(r) != s->len && !self->first_error)
            self->first_error = -EIO;
        self->in_flight--;
        self->done.push_back(s);
        self->cv.notify_all();
    }
    Slot *wait_done()
    {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return !done.empty(); });
        Slot *s = done.front();
        done.pop_front();
        return s;
    }
};

struct Trial {
    double ms = 0;
    uint64_t size = 0;
};

Trial run(rados_ioctx_t io, const std::string &image, const Settings &s)
{
    rbd_image_t img = nullptr;
    int r = rbd_open_read_only(io, image.c_str(), &img, nullptr);
    if (r < 0)
        die("opening " + image, r);
    uint64_t size = 0;
    if ((r = rbd_get_size(img, &size)) < 0) {
        rbd_close(img);
        die("the size of " + image, r);
    }
    int fd = -1;
    if (!s.to_file.empty() && (fd = open(s.to_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
        rbd_close(img);
        die("creating " + s.to_file, -errno);
    }
    const uint64_t chunk = uint64_t{s.chunk_mib} * MiB;
    Reads rd;
    rd.slots.resize(s.depth);
    std::vector<Reads::Slot *> free;
    for (auto &slot : rd.slots) {
        slot.owner = &rd;
        slot.buf.resize(chunk);
        free.push_back(&slot);
    }
    int write_error = 0;
    // Consumes one read's bytes (into the file, if any) and frees its slot.
    auto consume = [&](Reads::Slot *slot) {
        for (size_t k = 0; fd >= 0 && !write_error && k < slot->len;) {
            ssize_t w = pwrite(fd, slot->buf.data() + k, slot->len - k, static_cast<off_t>(slot->off + k));
            if (w <= 0)
                write_error = w < 0 ? -errno : -EIO;
            else
                k += static_cast<size_t>(w);
        }
        free.push_back(slot);
    };
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t off = 0; off < size && !write_error; off += chunk) {
        if (free.empty())
            consume(rd.wait_done());
        {
            std::lock_guard lk(rd.mu);
            if (rd.first_error)
                break;
            rd.in_flight++; // the read below, counted before it can complete
        }
        Reads::Slot *slot = free.back();
        free.pop_back();
        slot->off = off;
        slot->len = static_cast<size_t>(std::min(chunk, size - off));
        rbd_completion_t c;
        rbd_aio_create_completion(slot, Reads::complete, &c);
        if ((r = rbd_aio_read2(img, off, slot->len, slot->buf.data(), c, LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL)) < 0) {
            rbd_aio_release(c);
            std::lock_guard lk(rd.mu);
            rd.in_flight--;
            rd.first_error = r;
            free.push_back(slot);
            break;
        }
    }
    for (;;) {
        {
            std::lock_guard lk(rd.mu);
            if (rd.in_flight == 0 && rd.done.empty())
                break;
        }
        consume(rd.wait_done());
    }
    // No fsync: neither rbd export nor virsh vol-download makes one.
    auto t1 = std::chrono::steady_clock::now();
    rbd_close(img);
    if (fd >= 0)
        close(fd);
    if (rd.first_error)
        die("reading " + image, rd.first_error);
    if (write_error)
        die("writing " + s.to_file, write_error);
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    printf("  chunk %u MiB, depth %2u, %-16s %7.1f ms, %7.1f MiB/s\n", s.chunk_mib, s.depth,
           s.to_file.empty() ? "into memory:" : "into the file:", ms, static_cast<double>(size) / MiB / (ms / 1000));
    fflush(stdout);
    return Trial{ms, size};
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s POOL IMAGE [--chunk MIB] [--depth N] [--reps N] [--to-file PATH]\n", argv[0]);
        return 2;
    }
    Settings s;
    int reps = 1;
    for (int i = 3; i < argc; i++) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        const char *v = argv[++i];
        if (a == "--chunk")
            s.chunk_mib = static_cast<unsigned>(std::atoi(v));
        else if (a == "--depth")
            s.depth = static_cast<unsigned>(std::atoi(v));
        else if (a == "--reps")
            reps = std::atoi(v);
        else if (a == "--to-file")
            s.to_file = v;
        else {
            fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (!s.chunk_mib || !s.depth || reps < 1) {
        fprintf(stderr, "chunk, depth and reps must be positive\n");
        return 2;
    }
    try {
        Conn conn(argv[1], false);
        printf("librbd read probe: %s/%s\n", argv[1], argv[2]);
        printf("warm-up (untimed):\n");
        run(conn.io, argv[2], s);
        Trial best;
        for (int i = 0; i < reps; i++) {
            const Trial t = run(conn.io, argv[2], s);
            if (i == 0 || t.ms < best.ms)
                best = t;
        }
        printf("READPROBE MIBS=%.1f CHUNK=%u DEPTH=%u MS=%.0f\n", static_cast<double>(best.size) / MiB / (best.ms / 1000),
               s.chunk_mib, s.depth, best.ms);
        return 0;
    } catch (const std::exception &e) {
        fprintf(stderr, "read-probe: ERROR: %s\n", e.what());
        return 1;
    }
}
