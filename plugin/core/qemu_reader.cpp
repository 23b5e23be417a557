#include "qemu_reader.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "copy_engine.hpp"
#include "json_doc.hpp"
#include "log.hpp"
#include "subprocess.hpp"

namespace rbdclone {

namespace {

constexpr int kIoTimeoutMs = 120 * 1000;   // one NBD request
constexpr int kStartTimeoutMs = 30 * 1000; // qemu-nbd opening the image
constexpr int kCheckTimeoutMs = 600 * 1000;

uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = static_cast<unsigned char>(v & 0xff);
}

// One NBD client connection (fixed newstyle, simple replies).
class NbdConnection {
  public:
    NbdConnection(int fd, const std::string &label) : fd_(fd), label_(label) {}
    NbdConnection(const NbdConnection &) = delete;
    NbdConnection &operator=(const NbdConnection &) = delete;
    ~NbdConnection()
    {
        unsigned char req[28] = {};
        put_be(req, 0x25609513, 4);
        put_be(req + 6, 2, 2); // NBD_CMD_DISC
        (void)!::send(fd_, req, sizeof(req), MSG_NOSIGNAL);
        ::close(fd_);
    }

    // Negotiates the default export; its size.
    Result<uint64_t> handshake()
    {
        unsigned char hello[18];
        if (auto st = recv_all(hello, sizeof(hello)); !st)
            return st.error();
        if (memcmp(hello, "NBDMAGIC", 8) != 0 || get_be(hello + 8, 8) != 0x49484156454F5054ull)
            return fail(-EPROTO, "not an NBD newstyle server");
        const bool no_zeroes = get_be(hello + 16, 2) & 2;
        unsigned char cflags[4];
        put_be(cflags, 1u | (no_zeroes ? 2u : 0u), 4);
        unsigned char opt[16];
        put_be(opt, 0x49484156454F5054ull, 8);
        put_be(opt + 8, 1, 4); // NBD_OPT_EXPORT_NAME, empty name
        put_be(opt + 12, 0, 4);
        if (auto st = send_all(cflags, 4); !st)
            return st.error();
        if (auto st = send_all(opt, sizeof(opt)); !st)
            return st.error();
        unsigned char info[10 + 124];
        if (auto st = recv_all(info, no_zeroes ? 10 : sizeof(info)); !st)
            return st.error();
        return get_be(info, 8);
    }

    Status read(uint64_t off, char *buf, size_t len)
    {
        constexpr size_t kMaxRequest = 16u << 20;
        while (len > 0) {
            size_t n = std::min(len, kMaxRequest);
            unsigned char req[28] = {};
            put_be(req, 0x25609513, 4); // request magic
            put_be(req + 6, 0, 2);      // NBD_CMD_READ
            put_be(req + 8, ++cookie_, 8);
            put_be(req + 16, off, 8);
            put_be(req + 24, n, 4);
            if (auto st = send_all(req, sizeof(req)); !st)
                return st;
            unsigned char rep[16];
            if (auto st = recv_all(rep, sizeof(rep)); !st)
                return st;
            if (get_be(rep, 4) != 0x67446698 || get_be(rep + 8, 8) != cookie_)
                return fail(-EPROTO, "unexpected reply from qemu-nbd");
            if (uint32_t e = static_cast<uint32_t>(get_be(rep + 4, 4)); e != 0)
                return plain_error(RBDC_ERR_SYSTEM, -static_cast<int>(e),
                                   cat("qemu failed to read ", label_, " at offset ", off, ": ",
                                       strerror(static_cast<int>(e))));
            if (auto st = recv_all(buf, n); !st)
                return st;
            buf += n;
            off += n;
            len -= n;
        }
        return {};
    }

  private:
    Error fail(int rc, const std::string &what)
    {
        return plain_error(RBDC_ERR_SYSTEM, rc, "reading " + label_ + " through qemu-nbd failed: " + what);
    }

    Status wait_fd(short events)
    {
        pollfd p{fd_, events, 0};
        for (;;) {
            int r = poll(&p, 1, kIoTimeoutMs);
            if (r > 0)
                return {};
            if (r == 0)
                return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                                   "qemu-nbd did not answer within " + std::to_string(kIoTimeoutMs / 1000) +
                                       " s while reading " + label_);
            if (errno != EINTR)
                return fail(-errno, strerror(errno));
        }
    }

    Status send_all(const void *data, size_t len)
    {
        auto *p = static_cast<const char *>(data);
        while (len > 0) {
            if (auto st = wait_fd(POLLOUT); !st)
                return st;
            ssize_t r = ::send(fd_, p, len, MSG_NOSIGNAL);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return fail(-errno, strerror(errno));
            p += r;
            len -= static_cast<size_t>(r);
        }
        return {};
    }

    Status recv_all(void *data, size_t len)
    {
        auto *p = static_cast<char *>(data);
        while (len > 0) {
            if (auto st = wait_fd(POLLIN); !st)
                return st;
            ssize_t r = ::recv(fd_, p, len, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return fail(-errno, strerror(errno));
            if (r == 0)
                return fail(-EPIPE, "qemu-nbd closed the connection");
            p += r;
            len -= static_cast<size_t>(r);
        }
        return {};
    }

    int fd_;
    const std::string &label_;
    uint64_t cookie_ = 0;
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
            int fd = connect_socket(sock);
            if (fd < 0) {
                if (std::chrono::steady_clock::now() > deadline)
                    return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                                       "qemu-nbd did not open " + label_ + " within " +
                                           std::to_string(kStartTimeoutMs / 1000) + " s");
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                continue;
            }
            auto c = std::make_unique<NbdConnection>(fd, label_);
            auto size = c->handshake();
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
        // A connection that failed mid-request is out of step: never reused.
        {
            std::lock_guard lk(mu_);
            in_use_--;
            if (st)
                free_.push_back(c);
        }
        cv_.notify_all();
        return st;
    }

  private:
    static int connect_socket(const std::string &path)
    {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
        if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }

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
    if (auto st = src->start(img->json_, CopyOptions{}.readers); !st)
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
