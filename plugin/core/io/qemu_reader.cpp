#include "io/qemu_reader.hpp"

#include <libnbd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "base/json_doc.hpp"
#include "base/log.hpp"
#include "base/subprocess.hpp"

namespace rbdclone {

namespace {

constexpr int kIoTimeoutMs = 120 * 1000;   // one NBD request
constexpr int kStartTimeoutMs = 30 * 1000; // qemu-nbd opening the image
constexpr int kCheckTimeoutMs = 600 * 1000;

// One libnbd connection to the qemu-nbd we started (libnbd negotiates and
// keeps the protocol in step; a failed request leaves it usable).  Requests
// are asynchronous underneath so that a qemu-nbd that stops answering is a
// timeout, not a reader blocked forever.
class NbdConnection {
  public:
    explicit NbdConnection(const std::string &label) : h_(nbd_create()), label_(label)
    {
        // libnbd prints debug output to stderr when LIBNBD_DEBUG=1 is in the
        // environment: nothing may reach libvirtd's stderr.
        if (h_)
            nbd_set_debug(h_, false);
    }
    NbdConnection(const NbdConnection &) = delete;
    NbdConnection &operator=(const NbdConnection &) = delete;
    ~NbdConnection()
    {
        // A polite NBD_CMD_DISC, without waiting for qemu-nbd (it may hang);
        // never with a request in flight, whose reply would land in a
        // buffer that is gone.
        if (h_ && usable())
            (void)nbd_aio_disconnect(h_, 0);
        nbd_close(h_);
    }

    // Connects to the socket and negotiates the default export (false, and
    // a fresh handle needed, while nobody listens there yet).
    Status connect(const std::string &socket)
    {
        if (!h_)
            return fail(-ENOMEM, nbd_get_error());
        if (nbd_connect_unix(h_, socket.c_str()) < 0)
            return fail(-nbd_errno(), nbd_get_error());
        return {};
    }

    Result<uint64_t> size()
    {
        int64_t s = nbd_get_size(h_);
        if (s < 0)
            return fail(-nbd_errno(), nbd_get_error());
        return static_cast<uint64_t>(s);
    }

    // A connection that is dead or has a request still in flight (timed
    // out) must not serve again.
    bool usable() const { return nbd_aio_is_ready(h_) > 0 && nbd_aio_in_flight(h_) == 0; }

    Status read(uint64_t off, char *buf, size_t len)
    {
        constexpr size_t kMaxRequest = 16u << 20; // qemu-nbd serves up to 32 MiB
        while (len > 0) {
            size_t n = std::min(len, kMaxRequest);
            int64_t cookie = nbd_aio_pread(h_, buf, n, off, NBD_NULL_COMPLETION, 0);
            if (cookie < 0) // refused before it was sent (e.g. past the end)
                return fail(-nbd_errno(), nbd_get_error());
            for (;;) {
                int done = nbd_aio_command_completed(h_, static_cast<uint64_t>(cookie));
                if (done > 0)
                    break;
                if (done < 0)
                    return nbd_aio_is_dead(h_) > 0 ? fail(-EPIPE, "qemu-nbd closed the connection")
                                                   : read_failed(off);
                int r = nbd_poll(h_, kIoTimeoutMs);
                if (r == 0)
                    return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                                       "qemu-nbd did not answer within " + std::to_string(kIoTimeoutMs / 1000) +
                                           " s while reading " + label_);
                if (r < 0)
                    return fail(-nbd_errno(), nbd_get_error());
            }
            buf += n;
            off += n;
            len -= n;
        }
        return {};
    }

  private:
    static int nbd_errno()
    {
        int e = nbd_get_errno();
        return e > 0 ? e : EIO;
    }

    Error fail(int rc, const char *what)
    {
        return plain_error(RBDC_ERR_SYSTEM, rc,
                           "reading " + label_ + " through qemu-nbd failed: " + (what ? what : strerror(-rc)));
    }

    // qemu's own error for a request (EIO, EINVAL past the end, ...).
    Error read_failed(uint64_t off)
    {
        int e = nbd_errno();
        return plain_error(RBDC_ERR_SYSTEM, -e,
                           cat("qemu failed to read ", label_, " at offset ", off, ": ", strerror(e)));
    }

    nbd_handle *h_;
    const std::string &label_;
};

// A qemu-nbd we started, with one connection per reader thread; the
// process and its work directory go away with it.
class QemuSource final : public ByteSource {
  public:
    QemuSource(WorkDir dir, std::string label, std::string format)
        : dir_(std::move(dir)), label_(std::move(label)), format_(std::move(format)) {}
    ~QemuSource() override
    {
        conns_.clear();
        if (pid_ > 0 && reap_process(pid_, 5000) != 0)
            log_debug("qemu-nbd for ", label_, " did not exit cleanly");
    }

    const std::string &label() const override { return label_; }
    uint64_t size() const override { return size_; }

    Status start(const std::string &image_json, unsigned connections)
    {
        const std::string sock = dir_.file("nbd.sock");
        auto pid = spawn_process({"qemu-nbd", "--read-only", "--shared=" + std::to_string(connections),
                                  "--socket=" + sock, "--cache=writeback", "json:" + image_json},
                                 dir_, "qemu-nbd");
        if (!pid)
            return pid.error();
        pid_ = *pid;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
        while (conns_.size() < connections) {
            int status = 0;
            if (process_exited(pid_, &status)) {
                pid_ = -1;
                std::string why = last_line(read_small_file(dir_.file("qemu-nbd.stderr")));
                return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                                   "qemu cannot open " + label_ + " as " + format_ + ": " +
                                       (why.empty() ? "qemu-nbd exited with status " + std::to_string(status)
                                                    : why));
            }
            auto c = std::make_unique<NbdConnection>(label_);
            if (auto st = c->connect(sock); !st) {
                // Not listening yet (qemu-nbd opens the image first).
                if (std::chrono::steady_clock::now() > deadline)
                    return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                                       "qemu-nbd did not open " + label_ + " within " +
                                           std::to_string(kStartTimeoutMs / 1000) + " s");
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                continue;
            }
            auto size = c->size();
            if (!size)
                return size.error();
            size_ = *size;
            free_.push_back(c.get());
            conns_.push_back(std::move(c));
        }
        return {};
    }

    Status read_exact(uint64_t off, char *buf, size_t len) override
    {
        NbdConnection *c;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return !free_.empty() || in_use_ == 0; });
            if (free_.empty())
                return plain_error(RBDC_ERR_SYSTEM, -EIO, "no usable connection to qemu-nbd left for " + label_);
            c = free_.back();
            free_.pop_back();
            in_use_++;
        }
        Status st = c->read(off, buf, len);
        if (!st) {
            std::string why = last_line(read_small_file(dir_.file("qemu-nbd.stderr")));
            if (!why.empty() && st.error().rc != -ETIMEDOUT) {
                Error e = st.error();
                e.message += ": " + why;
                st = e;
            }
        }
        // A connection that died or still has a request in flight is never
        // reused; one whose request qemu refused still serves.
        {
            std::lock_guard lk(mu_);
            in_use_--;
            if (c->usable())
                free_.push_back(c);
        }
        cv_.notify_all();
        return st;
    }

  private:
    WorkDir dir_;
    std::string label_;
    std::string format_;
    pid_t pid_ = -1;
    uint64_t size_ = 0;
    std::vector<std::unique_ptr<NbdConnection>> conns_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<NbdConnection *> free_;
    unsigned in_use_ = 0;
};

std::string image_json(const std::string &format, const std::string &file_node)
{
    return "{\"driver\":" + json_string(format) + ",\"backing\":null,\"file\":" + file_node + "}";
}

// qemu-img check for formats it can check; "" when sound.
Status check_image(const WorkDir &dir, const std::string &format, const std::string &json,
                   const std::string &label)
{
    if (format != "qcow2" && format != "qed" && format != "vdi" && format != "vhdx" && format != "parallels")
        return {};
    auto res = run_process({"qemu-img", "check", "--output=json", "json:" + json}, dir, kCheckTimeoutMs);
    if (!res)
        return res.error();
    std::string problems = qemu_check_problems(res->out, res->exit_status);
    if (problems.empty())
        return {};
    std::string why = last_line(res->err);
    return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                       label + " is not a sound " + format + " image: " + problems +
                           (why.empty() || res->exit_status == 2 ? "" : " (" + why + ")"));
}

} // namespace

std::string qemu_check_problems(const std::string &json, int exit_status)
{
    // 0: sound, 3: only leaked clusters (harmless for reading).  A
    // truncated image shows up as corruptions (references past the end).
    // qemu prints "corruptions" only when there are some.
    std::string unreadable;
    int64_t corruptions = 0;
    auto doc = JsonDoc::parse(json, "qemu-img check's report");
    if (!doc) {
        unreadable = doc.error().message;
    } else if (auto c = doc->top_int_if_present("corruptions"); !c) {
        unreadable = c.error().message;
    } else {
        corruptions = c->value_or(0);
    }
    if (corruptions > 0)
        return std::to_string(corruptions) + " corruption(s) found by qemu-img check";
    if (exit_status != 0 && exit_status != 3)
        return exit_status == 2 ? "qemu-img check found it corrupt"
                                : "qemu-img check could not check it (exit status " + std::to_string(exit_status) + ")";
    // An exit status saying "sound" is not enough without a report to match.
    return unreadable;
}

Result<uint64_t> qemu_info_virtual_size(const std::string &json, const std::string &label)
{
    // The top-level key only: qemu 10 prints its child nodes first, each
    // with its own "virtual-size" (a qcow2's file node: the file's size).
    auto doc = JsonDoc::parse(json, "qemu-img info's output for " + label);
    if (!doc)
        return doc.error();
    auto size = doc->top_int("virtual-size");
    if (!size)
        return size.error();
    if (*size < 0)
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           doc->what() + ": \"virtual-size\" is negative (" + std::to_string(*size) + ")");
    return static_cast<uint64_t>(*size);
}

Result<std::string> write_ceph_client_conf(const WorkDir &dir, const std::string &name, const ClusterParams &params)
{
    std::string conf = "[global]\n";
    for (auto &[k, v] : connection_settings(params))
        if (k != "key")
            conf += k + " = " + v + "\n";
    if (!params.user.empty()) {
        conf += "keyring = " + dir.file(name + ".keyring") + "\n";
        if (auto st = dir.write_file(name + ".keyring", "[client." + params.user + "]\nkey = " + params.key + "\n");
            !st)
            return st.error();
    }
    if (auto st = dir.write_file(name + ".conf", conf); !st)
        return st.error();
    return dir.file(name + ".conf");
}

namespace {
std::string rbd_node(const std::string &pool, const std::string &image, const std::string &snap,
                     const std::string &conf, const std::string &user)
{
    return "{\"driver\":\"rbd\",\"pool\":" + json_string(pool) + ",\"image\":" + json_string(image) +
           (snap.empty() ? "" : ",\"snapshot\":" + json_string(snap)) + ",\"conf\":" + json_string(conf) +
           (user.empty() ? "" : ",\"user\":" + json_string(user)) + "}";
}

Result<std::unique_ptr<QemuImage>> prepared(WorkDir dir, const std::string &label, const std::string &format,
                                            const std::string &file_node)
{
    std::string json = image_json(format, file_node);
    if (auto st = check_image(dir, format, json, label); !st)
        return st.error();
    return std::make_unique<QemuImage>(std::move(dir), std::move(json), label, format);
}
} // namespace

Result<std::unique_ptr<QemuImage>> QemuImage::file(const std::string &path, const std::string &format)
{
    auto dir = WorkDir::create("convert");
    if (!dir)
        return dir.error();
    struct stat sb {};
    stat(path.c_str(), &sb);
    std::string node = "{\"driver\":\"" + std::string(S_ISBLK(sb.st_mode) ? "host_device" : "file") +
                       "\",\"filename\":" + json_string(path) + "}";
    return prepared(std::move(*dir), "'" + path + "'", format, node);
}

Result<std::unique_ptr<QemuImage>> QemuImage::rbd(const ClusterParams &params, const std::string &pool,
                                                  const std::string &image, const std::string &snap,
                                                  const std::string &format, const std::string &label)
{
    auto dir = WorkDir::create("convert");
    if (!dir)
        return dir.error();
    auto conf = write_ceph_client_conf(*dir, "source", params);
    if (!conf)
        return conf.error();
    return prepared(std::move(*dir), label, format, rbd_node(pool, image, snap, *conf, params.user));
}

Result<uint64_t> QemuImage::virtual_size()
{
    auto res = run_process({"qemu-img", "info", "--output=json", "json:" + json_}, dir_, kStartTimeoutMs);
    if (!res)
        return res.error();
    if (res->exit_status != 0)
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           "qemu cannot read the size of " + label_ + " as " + format_ + ": " + last_line(res->err));
    return qemu_info_virtual_size(res->out, label_);
}

Status QemuImage::convert_into(const ClusterParams &dst, const std::string &pool, const std::string &image)
{
    auto conf = write_ceph_client_conf(dir_, "target", dst);
    if (!conf)
        return conf.error();
    const std::string target = "{\"driver\":\"raw\",\"file\":" + rbd_node(pool, image, "", *conf, dst.user) + "}";
    // -n: the image exists; --target-is-zero: it is new, zero blocks need no
    // write; -W -m 8: up to 8 writes in flight, in any order.
    constexpr int kConvertTimeoutMs = 48 * 3600 * 1000;
    auto res = run_process({"qemu-img", "convert", "-n", "--target-is-zero", "-W", "-m", "8", "json:" + json_, "-O",
                            "raw", "json:" + target},
                           dir_, kConvertTimeoutMs);
    if (!res)
        return res.error();
    if (res->exit_status != 0)
        return plain_error(RBDC_ERR_SYSTEM, -EIO,
                           "qemu-img failed to convert " + label_ + " into RBD image '" + pool + "/" + image +
                               "': " + (res->err.empty() ? "exit status " + std::to_string(res->exit_status)
                                                         : last_line(res->err)));
    return {};
}

Result<std::unique_ptr<ByteSource>> QemuImage::reader(std::unique_ptr<QemuImage> img)
{
    auto src = std::make_unique<QemuSource>(std::move(img->dir_), img->label_, img->format_);
    if (auto st = src->start(img->json_, kSourceReaders); !st)
        return st.error();
    return std::unique_ptr<ByteSource>(std::move(src));
}

bool qemu_img_writes_rbd()
{
    static const bool yes = [] {
        auto dir = WorkDir::create("probe");
        if (!dir)
            return false;
        auto res = run_process({"qemu-img", "--help"}, *dir, 10000);
        if (!res || res->exit_status != 0)
            return false;
        size_t at = res->out.find("Supported formats:");
        return at != std::string::npos && res->out.find(" rbd ", at) != std::string::npos;
    }();
    return yes;
}

} // namespace rbdclone
