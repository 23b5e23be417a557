#include "lab_client.hpp"

#include "ceph/image_open.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <cstdlib>
#include <stdexcept>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lab {

std::string env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "integration tests need the lab's environment: %s is not set "
                        "(run them through tests/run-all.sh)\n", name);
        abort();
    }
    return v;
}

bool testing_stock()
{
    const char *v = getenv("LAB_BACKEND");
    return v && std::string(v) == "stock";
}

std::map<std::string, std::string> read_env_file(const std::string &path)
{
    std::map<std::string, std::string> out;
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("export ", 0) != 0)
            continue;
        auto eq = line.find('=');
        if (eq == std::string::npos)
            continue;
        std::string v = line.substr(eq + 1);
        if (v.size() >= 2 && v.front() == '\'')
            v = v.substr(1, v.size() - 2);
        out[line.substr(7, eq - 7)] = v;
    }
    return out;
}

std::string unique(const std::string &prefix)
{
    static std::atomic<int> n{0};
    return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
}

std::string random_bytes(size_t n, unsigned seed)
{
    std::mt19937_64 g(seed);
    std::string s(n, '\0');
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = g();
        memcpy(&s[i], &v, 8);
    }
    return s;
}

int count(const std::string &hay, const std::string &needle)
{
    int n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
        n++;
    return n;
}

std::string mon_command(const std::string &json)
{
    const char *cmd[] = {json.c_str()};
    char *outb = nullptr, *outs = nullptr;
    size_t outbl = 0, outsl = 0;
    int r = rados_mon_command(ceph().cluster(), cmd, 1, "", 0, &outb, &outbl, &outs, &outsl);
    std::string err = r == 0 ? "" : std::string(strerror(-r)) + ": " + std::string(outs ? outs : "", outsl);
    rados_buffer_free(outb);
    rados_buffer_free(outs);
    return err;
}

std::string require_mimic_clients()
{
    return mon_command(
        R"({"prefix": "osd set-require-min-compat-client", "version": "mimic", "yes_i_really_mean_it": true})");
}

std::string base64_decode(const std::string &in)
{
    static const std::string chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned val = 0;
    int bits = -8;
    for (char c : in) {
        size_t p = chars.find(c);
        if (p == std::string::npos)
            break; // '=' padding ends the data
        val = (val << 6) | static_cast<unsigned>(p);
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((val >> bits) & 0xff));
            bits -= 8;
        }
    }
    return out;
}

static void check(int r, const std::string &what)
{
    if (r < 0)
        throw std::runtime_error(what + ": " + strerror(-r));
}

Ceph::Ceph()
{
    check(rados_create(&cluster_, "admin"), "rados_create");
    check(rados_conf_read_file(cluster_, env("CEPH_CONF").c_str()), "rados_conf_read_file");
    check(rados_conf_set(cluster_, "key", env("CEPH_ADMIN_KEY").c_str()), "key");
    check(rados_connect(cluster_), "rados_connect");
}

Ceph::~Ceph()
{
    for (auto &[n, io] : ioctxs_)
        rados_ioctx_destroy(io);
    rados_shutdown(cluster_);
}

rados_ioctx_t Ceph::io(const std::string &pool)
{
    for (auto &[n, io] : ioctxs_)
        if (n == pool)
            return io;
    rados_ioctx_t io;
    check(rados_ioctx_create(cluster_, pool.c_str(), &io), "ioctx " + pool);
    ioctxs_.emplace_back(pool, io);
    return io;
}

namespace {
struct Image {
    rbd_image_t img = nullptr;
    Image(rados_ioctx_t io, const std::string &name)
    {
        check(rbd_open(io, name.c_str(), &img, nullptr), "open " + name);
    }
    ~Image() { rbd_close(img); }
};
} // namespace

bool Ceph::exists(const std::string &pool, const std::string &image)
{
    // Not by a failing open: librbd 16.2 mishandles those (plugin/core/ceph/image_open.hpp).
    return rbdclone::image_exists(io(pool), image) == 1;
}

void Ceph::create(const std::string &pool, const std::string &image, uint64_t size, uint64_t features)
{
    int order = 0;
    if (features)
        check(rbd_create2(io(pool), image.c_str(), size, features, &order), "create " + image);
    else
        check(rbd_create(io(pool), image.c_str(), size, &order), "create " + image);
}

void Ceph::remove(const std::string &pool, const std::string &image)
{
    if (!exists(pool, image))
        return;
    {
        Image i(io(pool), image);
        for (const auto &s : snapshots(pool, image)) {
            int prot = 0;
            rbd_snap_is_protected(i.img, s.c_str(), &prot);
            if (prot)
                rbd_snap_unprotect(i.img, s.c_str());
            rbd_snap_remove(i.img, s.c_str());
        }
    }
    rbd_remove(io(pool), image.c_str());
}

void Ceph::write(const std::string &pool, const std::string &image, uint64_t off, const std::string &data)
{
    Image i(io(pool), image);
    ssize_t w = rbd_write(i.img, off, data.size(), data.data());
    if (w != static_cast<ssize_t>(data.size()))
        throw std::runtime_error("short write to " + image);
}

std::string Ceph::read(const std::string &pool, const std::string &image, uint64_t off, size_t len)
{
    Image i(io(pool), image);
    std::string buf(len, '\0');
    ssize_t r = rbd_read(i.img, off, len, buf.data());
    if (r < 0)
        throw std::runtime_error("read " + image);
    buf.resize(static_cast<size_t>(r));
    return buf;
}

uint64_t Ceph::size(const std::string &pool, const std::string &image)
{
    Image i(io(pool), image);
    uint64_t s = 0;
    check(rbd_get_size(i.img, &s), "size");
    return s;
}

static int add_allocated(uint64_t, size_t len, int exists, void *arg)
{
    if (exists)
        *static_cast<uint64_t *>(arg) += len;
    return 0;
}

uint64_t Ceph::allocated(const std::string &pool, const std::string &image)
{
    Image i(io(pool), image);
    uint64_t size = 0, used = 0;
    check(rbd_get_size(i.img, &size), "size");
    check(rbd_diff_iterate2(i.img, nullptr, 0, size, 1, 1, add_allocated, &used), "diff");
    return used;
}

std::string Ceph::contents(const std::string &pool, const std::string &image)
{
    return read(pool, image, 0, static_cast<size_t>(size(pool, image)));
}

uint64_t Ceph::features(const std::string &pool, const std::string &image)
{
    Image i(io(pool), image);
    uint64_t f = 0;
    check(rbd_get_features(i.img, &f), "features");
    return f;
}

std::vector<std::string> Ceph::snapshots(const std::string &pool, const std::string &image)
{
    Image i(io(pool), image);
    int max = 64;
    std::vector<rbd_snap_info_t> buf(max);
    int n = rbd_snap_list(i.img, buf.data(), &max);
    if (n == -ERANGE) {
        buf.resize(max);
        n = rbd_snap_list(i.img, buf.data(), &max);
    }
    check(n, "snap list");
    std::vector<std::string> out;
    for (int k = 0; k < n; k++)
        out.emplace_back(buf[k].name);
    rbd_snap_list_end(buf.data());
    return out;
}

void Ceph::snapshot(const std::string &pool, const std::string &image, const std::string &snap, bool protect)
{
    Image i(io(pool), image);
    check(rbd_snap_create(i.img, snap.c_str()), "snap create");
    if (protect)
        check(rbd_snap_protect(i.img, snap.c_str()), "snap protect");
}

std::string Ceph::parent(const std::string &pool, const std::string &image)
{
    Image i(io(pool), image);
    rbd_linked_image_spec_t p;
    rbd_snap_spec_t s;
    int r = rbd_get_parent(i.img, &p, &s);
    if (r == -ENOENT)
        return "";
    check(r, "get parent");
    std::string out = std::string(p.pool_name) + "/" + p.image_name + "@" + s.name;
    rbd_linked_image_spec_cleanup(&p);
    rbd_snap_spec_cleanup(&s);
    return out;
}

std::vector<std::string> Ceph::list(const std::string &pool)
{
    std::vector<rbd_image_spec_t> specs(256);
    size_t n = specs.size();
    int r = rbd_list2(io(pool), specs.data(), &n);
    if (r == -ERANGE) {
        specs.resize(n);
        r = rbd_list2(io(pool), specs.data(), &n);
    }
    check(r, "list");
    std::vector<std::string> out;
    for (size_t k = 0; k < n; k++)
        out.emplace_back(specs[k].name);
    rbd_image_spec_list_cleanup(specs.data(), n);
    return out;
}

Ceph &ceph()
{
    static Ceph c;
    return c;
}

static void ignore_errors(void *, virErrorPtr) {}

virConnectPtr storage()
{
    static virConnectPtr c = [] {
        virSetErrorFunc(nullptr, ignore_errors);
        virConnectPtr conn = virConnectOpen(env("LIBVIRT_STORAGE_URI").c_str());
        if (!conn) {
            fprintf(stderr, "cannot connect to %s\n", env("LIBVIRT_STORAGE_URI").c_str());
            abort();
        }
        return conn;
    }();
    return c;
}

virConnectPtr secrets()
{
    static virConnectPtr c = [] {
        virConnectPtr conn = virConnectOpen(env("LIBVIRT_SECRET_URI").c_str());
        if (!conn)
            abort();
        return conn;
    }();
    return c;
}

LastError last_error()
{
    LastError e;
    if (virErrorPtr err = virGetLastError()) {
        e.code = err->code;
        e.message = err->message ? err->message : "";
    }
    return e;
}

std::string pool_xml(const PoolSpec &s)
{
    std::string x = "<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>\n";
    x += "  <name>" + s.name + "</name>\n";
    x += "  <source>\n";
    // The msgr2 port: librados speaks msgr2 first, and pointing it at a v1
    // port makes it log a protocol error line to the daemon's stderr.
    int port = s.port ? s.port : std::stoi(env("CEPH_MON_V2_PORT"));
    x += "    <host name='" + s.host + "' port='" + std::to_string(port) + "'/>\n";
    x += "    <name>" + s.ceph_pool + "</name>\n";
    if (!s.user.empty()) {
        std::string uuid = s.secret_uuid;
        if (uuid.empty())
            uuid = s.user == "admin" ? env("LAB_SECRET_ADMIN_UUID") : env("LAB_SECRET_LIBVIRT_UUID");
        x += "    <auth type='ceph' username='" + s.user + "'><secret uuid='" + uuid + "'/></auth>\n";
    }
    x += "  </source>\n";
    x += s.extra;
    if (!s.config_opts.empty()) {
        x += "  <rbd:config_opts>\n";
        for (auto &[n, v] : s.config_opts)
            x += "    <rbd:option name='" + n + "' value='" + v + "'/>\n";
        x += "  </rbd:config_opts>\n";
    }
    x += "</pool>\n";
    return x;
}

Pool::Pool(const PoolSpec &spec) : name_(spec.name)
{
    pool_ = virStoragePoolCreateXML(storage(), pool_xml(spec).c_str(), 0);
}

Pool::~Pool()
{
    if (pool_) {
        virStoragePoolDestroy(pool_);
        virStoragePoolFree(pool_);
    }
}

namespace {

// A private secret of the lab's libvirtd with a UUID of its own and `usage` (the <usage>
// element); its value `raw` unless without_value. Null on failure.
virSecretPtr define_lab_secret(const std::string &usage, const std::string *raw, std::string &uuid_out)
{
    static std::atomic<int> n{0};
    char uuid[40];
    snprintf(uuid, sizeof(uuid), "6a1d4c6e-0c0e-4d8e-9a1b-%012d", getpid() * 100 + ++n);
    uuid_out = uuid;
    const std::string xml = "<secret ephemeral='no' private='yes'><uuid>" + uuid_out + "</uuid>" + usage + "</secret>";
    virSecretPtr s = virSecretDefineXML(secrets(), xml.c_str(), 0);
    if (!s || !raw)
        return s;
    if (virSecretSetValue(s, reinterpret_cast<const unsigned char *>(raw->data()), raw->size(), 0) < 0) {
        virSecretUndefine(s);
        virSecretFree(s);
        return nullptr;
    }
    return s;
}

} // namespace

CephSecret::CephSecret(const std::string &base64_key)
{
    // libvirt stores the raw secret bytes; the cephx key is their base64.
    const std::string raw = base64_decode(base64_key);
    secret_ = define_lab_secret("<usage type='ceph'><name>" + unique("test-secret") + "</name></usage>", &raw, uuid_);
}

CephSecret::~CephSecret()
{
    if (secret_) {
        virSecretUndefine(secret_);
        virSecretFree(secret_);
    }
}

TempDir::TempDir(const std::string &prefix)
{
    std::string tmpl = "/tmp/rbdclone-" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()))
        path_ = tmpl;
}

TempDir::~TempDir()
{
    if (!path_.empty())
        (void)!system(("rm -rf '" + path_ + "'").c_str());
}

DirPool::DirPool(const std::string &dir, virConnectPtr conn)
{
    const std::string xml =
        "<pool type='dir'><name>" + unique("files") + "</name><target><path>" + dir + "</path></target></pool>";
    pool_ = virStoragePoolCreateXML(conn ? conn : storage(), xml.c_str(), 0);
}

DirPool::~DirPool()
{
    if (pool_) {
        virStoragePoolDestroy(pool_);
        virStoragePoolFree(pool_);
    }
}

std::string vol_xml(const std::string &name, uint64_t capacity, const std::string &extra)
{
    return "<volume><name>" + name + "</name><capacity unit='bytes'>" + std::to_string(capacity) +
           "</capacity><target><format type='raw'/></target>" + extra + "</volume>";
}

VolumeSecret::VolumeSecret(const std::string &passphrase, bool without_value)
{
    secret_ = define_lab_secret("<usage type='volume'><volume>" + unique("/rbd/encrypted") + "</volume></usage>",
                                without_value ? nullptr : &passphrase, uuid_);
}

VolumeSecret::~VolumeSecret()
{
    if (secret_) {
        virSecretUndefine(secret_);
        virSecretFree(secret_);
    }
}

std::string encrypted_vol_xml(const std::string &name, uint64_t capacity, const std::string &secret_uuid,
                              const std::string &format, const std::string &engine)
{
    return "<volume><name>" + name + "</name><capacity unit='bytes'>" + std::to_string(capacity) +
           "</capacity><target><format type='raw'/><encryption format='" + format + "'" +
           (engine.empty() ? "" : " engine='" + engine + "'") + ">" +
           (secret_uuid.empty() ? "" : "<secret type='passphrase' uuid='" + secret_uuid + "'/>") +
           "</encryption></target></volume>";
}

int upload_pieces(virStorageVolPtr vol, const std::vector<std::pair<uint64_t, std::string>> &pieces,
                  uint64_t offset, uint64_t length, unsigned flags, LastError *err)
{
    virStreamPtr st = virStreamNew(storage(), 0);
    int rc = virStorageVolUpload(vol, st, offset, length, flags);
    for (const auto &[hole, data] : pieces) {
        if (rc == 0 && hole > 0)
            rc = virStreamSendHole(st, static_cast<long long>(hole), 0);
        for (size_t done = 0; rc == 0 && done < data.size();) {
            int n = virStreamSend(st, data.data() + done, std::min<size_t>(data.size() - done, 256 * 1024));
            if (n < 0)
                rc = -1;
            else
                done += static_cast<size_t>(n);
        }
    }
    rc = rc == 0 ? virStreamFinish(st) : -1;
    if (rc != 0) {
        if (err)
            *err = last_error();
        virStreamAbort(st);
    }
    virStreamFree(st);
    return rc;
}

int upload(virStorageVolPtr vol, const std::string &data, uint64_t offset)
{
    return upload_pieces(vol, {{0, data}}, offset, data.size());
}

std::string download(virStorageVolPtr vol, uint64_t offset, uint64_t length, int *rc_out, unsigned flags,
                     LastError *err)
{
    std::string out;
    virStreamPtr st = virStreamNew(storage(), 0);
    int rc = virStorageVolDownload(vol, st, offset, length, flags);
    if (rc == 0) {
        char buf[65536];
        int n;
        while ((n = virStreamRecv(st, buf, sizeof(buf))) > 0)
            out.append(buf, static_cast<size_t>(n));
        rc = n < 0 ? -1 : virStreamFinish(st);
    }
    if (rc != 0) {
        if (err)
            *err = last_error();
        virStreamAbort(st);
    }
    virStreamFree(st);
    if (rc_out)
        *rc_out = rc;
    return out;
}

virStorageVolPtr golden_volume(virStoragePoolPtr pool, const std::string &image, const std::string &ceph_pool,
                               uint64_t size)
{
    ceph().create(ceph_pool, image, size);
    ceph().write(ceph_pool, image, 0, "golden bytes");
    virStoragePoolRefresh(pool, 0);
    return virStorageVolLookupByName(pool, image.c_str());
}

std::string stored_objects(const std::string &pool, const std::string &image)
{
    // Straight from RADOS (the image's id object names its data objects), as `rados get` reads
    // them: no librbd open of an encrypted image in the test's process.
    rados_ioctx_t io = ceph().io(pool);
    std::string id;
    if (rbdclone::image_id_of(io, image, id) < 0 || id.empty())
        return "";
    const std::string prefix = "rbd_data." + id + ".";
    rados_list_ctx_t ls;
    if (rados_nobjects_list_open(io, &ls) < 0)
        return "";
    const char *oid = nullptr;
    std::vector<std::string> oids;
    while (rados_nobjects_list_next(ls, &oid, nullptr, nullptr) == 0)
        if (std::string(oid).rfind(prefix, 0) == 0)
            oids.push_back(oid);
    rados_nobjects_list_close(ls);
    std::string out, buf(64 << 20, '\0');
    for (const auto &o : oids) {
        int n = rados_read(io, o.c_str(), buf.data(), buf.size(), 0);
        if (n > 0)
            out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
}

PoolSpec ReadOnlyUserPool::spec(const std::string &name, const CephSecret &key)
{
    PoolSpec ro{name};
    ro.user = "ro";
    ro.secret_uuid = key.uuid();
    return ro;
}

ReadOnlyUserPool::ReadOnlyUserPool(const std::string &name) : key_(env("CEPH_RO_KEY")), pool_(spec(name, key_)) {}

FrozenOsd::FrozenOsd()
{
    std::ifstream f(env("CEPH_LAB_DIR") + "/osd.pid");
    f >> pid_;
}

bool FrozenOsd::freeze() { return pid_ > 0 && kill(pid_, SIGSTOP) == 0 && (frozen_ = true); }

void FrozenOsd::thaw()
{
    if (frozen_)
        kill(pid_, SIGCONT);
    frozen_ = false;
}

CpuHogs::CpuHogs(int n)
{
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            volatile unsigned long x = 0;
            for (;;)
                x = x + 1;
        }
        if (p > 0)
            pids_.push_back(p);
    }
}

CpuHogs::~CpuHogs()
{
    for (pid_t p : pids_)
        kill(p, SIGKILL);
    for (pid_t p : pids_)
        waitpid(p, nullptr, 0);
}

PrivateDaemon::PrivateDaemon(const std::string &backend_dir)
{
    char tmpl[] = "/tmp/rbdclone-lvd-XXXXXX";
    if (!mkdtemp(tmpl))
        return;
    top_ = tmpl;
    dir_ = top_ + "/d";
    ok_ = script("start '" + dir_ + "' '" + (backend_dir.empty() ? env("LIBVIRTD_BACKEND_DIR") : backend_dir) + "'") &&
          connect();
}

PrivateDaemon::~PrivateDaemon()
{
    disconnect();
    // A daemon that died leaves its core, log and stderr for the post-mortem.
    const pid_t p = pid();
    if (!top_.empty() && (p <= 0 || kill(p, 0) != 0 || access((dir_ + "/core").c_str(), F_OK) == 0)) {
        const std::string keep = top_ + "-dead";
        (void)!system(("mkdir -p '" + keep + "' && cp -a '" + dir_ + "'/core* '" + dir_ + "'/libvirtd.log '" + dir_ +
                       "'/libvirtd.stderr '" + keep + "'/ 2>/dev/null")
                          .c_str());
        fprintf(stderr, "the second libvirtd (pid %d) died: its core, log and stderr are in %s\n", p, keep.c_str());
    }
    if (!top_.empty())
        (void)!system(("'" + env("LAB_TOOLS_DIR") + "/libvirtd-lab.sh' stop '" + dir_ + "' >>'" + top_ +
                       "/lab.log' 2>&1; rm -rf '" + top_ + "'")
                          .c_str());
}

bool PrivateDaemon::define_admin_secret()
{
    const std::string xml = "<secret ephemeral='no' private='yes'><uuid>" + env("LAB_SECRET_ADMIN_UUID") +
                            "</uuid><usage type='ceph'><name>client.admin secret</name></usage></secret>";
    virSecretPtr s = virSecretDefineXML(secrets_, xml.c_str(), 0);
    if (!s)
        return false;
    const std::string raw = base64_decode(env("CEPH_ADMIN_KEY"));
    bool ok = virSecretSetValue(s, reinterpret_cast<const unsigned char *>(raw.data()), raw.size(), 0) == 0;
    virSecretFree(s);
    return ok;
}

bool PrivateDaemon::restart(bool kill)
{
    disconnect();
    return script("restart '" + dir_ + "'" + (kill ? " --kill" : "")) && connect();
}

std::string PrivateDaemon::storage_uri() const
{
    return read_env_file(dir_ + "/libvirtd.env")["LIBVIRT_STORAGE_URI"];
}

std::string PrivateDaemon::log_path() const { return read_env_file(dir_ + "/libvirtd.env")["LIBVIRTD_LOG"]; }

pid_t PrivateDaemon::pid() const
{
    const std::string p = read_env_file(dir_ + "/libvirtd.env")["LIBVIRTD_PID"];
    return p.empty() ? 0 : static_cast<pid_t>(std::stol(p));
}

bool PrivateDaemon::script(const std::string &args)
{
    return system(("'" + env("LAB_TOOLS_DIR") + "/libvirtd-lab.sh' " + args + " >>'" + top_ + "/lab.log' 2>&1")
                      .c_str()) == 0;
}

bool PrivateDaemon::connect()
{
    auto e = read_env_file(dir_ + "/libvirtd.env");
    storage_ = virConnectOpen(e["LIBVIRT_STORAGE_URI"].c_str());
    secrets_ = virConnectOpen(e["LIBVIRT_SECRET_URI"].c_str());
    return storage_ && secrets_;
}

void PrivateDaemon::disconnect()
{
    if (storage_)
        virConnectClose(storage_);
    if (secrets_)
        virConnectClose(secrets_);
    storage_ = secrets_ = nullptr;
}

} // namespace lab
