// Test-side view of a running lab (tests/lab/lab.sh): its environment, a
// libvirt connection to the lab's libvirtd, and an admin librados/librbd
// client to check results in Ceph directly.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lab {

std::string env(const char *name);          // fails the test run if unset
bool testing_stock();                       // LAB_BACKEND=stock

// Skips the current test when the lab runs the stock module: the behaviour
// checked from here on is one the stock backend lacks.
#define BEYOND_STOCK()                                                          \
    do {                                                                        \
        if (lab::testing_stock())                                               \
            GTEST_SKIP() << "improvement over the stock backend";               \
    } while (0)

std::string unique(const std::string &prefix);

// n bytes of seeded pseudo-random data (neither compressible nor zero).
std::string random_bytes(size_t n, unsigned seed);
// How often needle occurs in hay.
int count(const std::string &hay, const std::string &needle);

// The NAME=value pairs of an env file the lab scripts write
// ("export NAME='value'" lines); empty when it cannot be read.
std::map<std::string, std::string> read_env_file(const std::string &path);
std::string base64_decode(const std::string &in);

// Admin access to the lab cluster.
class Ceph {
  public:
    Ceph();
    ~Ceph();
    rados_ioctx_t io(const std::string &pool);
    bool exists(const std::string &pool, const std::string &image);
    void create(const std::string &pool, const std::string &image, uint64_t size,
                uint64_t features = 0 /* 0 = cluster default */);
    void remove(const std::string &pool, const std::string &image); // with snapshots; ignores missing
    void write(const std::string &pool, const std::string &image, uint64_t off, const std::string &data);
    std::string read(const std::string &pool, const std::string &image, uint64_t off, size_t len);
    uint64_t size(const std::string &pool, const std::string &image);
    uint64_t features(const std::string &pool, const std::string &image);
    // Bytes in allocated objects (whole objects, parents included).
    uint64_t allocated(const std::string &pool, const std::string &image);
    // Every byte of the image.
    std::string contents(const std::string &pool, const std::string &image);
    std::vector<std::string> snapshots(const std::string &pool, const std::string &image);
    void snapshot(const std::string &pool, const std::string &image, const std::string &snap,
                  bool protect);
    // "pool/image@snap" of the parent, "" when none.
    std::string parent(const std::string &pool, const std::string &image);
    std::vector<std::string> list(const std::string &pool);
    rados_t cluster() const { return cluster_; }

  private:
    rados_t cluster_ = nullptr;
    std::vector<std::pair<std::string, rados_ioctx_t>> ioctxs_;
};

Ceph &ceph();

// A monitor command (JSON) as the lab's admin: "" or the monitor's error.
std::string mon_command(const std::string &json);

// `ceph osd set-require-min-compat-client mimic` on the lab cluster (clone
// format 2 from then on; it only ever rises): "" or the monitor's error.
std::string require_mimic_clients();

// A connection to the lab's libvirtd (storage driver).
virConnectPtr storage();
// A connection to the lab's secret driver.
virConnectPtr secrets();

struct LastError {
    int code = 0;
    std::string message;
};
LastError last_error();

// Pool XML for the lab cluster.
struct PoolSpec {
    explicit PoolSpec(std::string n) : name(std::move(n)) {}
    std::string name;
    std::string ceph_pool = "rbd";
    std::string user = "admin";        // "" = no <auth>
    std::string secret_uuid;           // default: the lab's secret for user
    std::string host = "127.0.0.1";
    int port = 0;                      // default: the lab's monitor port
    std::vector<std::pair<std::string, std::string>> config_opts;
    std::string extra;                 // e.g. "<refresh>...</refresh>"
};
std::string pool_xml(const PoolSpec &spec);

// RAII transient pool.
class Pool {
  public:
    explicit Pool(const PoolSpec &spec);
    explicit Pool(const std::string &name) : Pool(PoolSpec{name}) {}
    ~Pool();
    virStoragePoolPtr get() const { return pool_; }
    bool ok() const { return pool_ != nullptr; }
    const std::string &name() const { return name_; }

  private:
    virStoragePoolPtr pool_ = nullptr;
    std::string name_;
};

// A directory of the test's own, /tmp/rbdclone-PREFIX-XXXXXX, removed with
// everything in it when this object goes away.
class TempDir {
  public:
    explicit TempDir(const std::string &prefix);
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    bool ok() const { return !path_.empty(); }
    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// A transient dir pool (libvirt's fs backend) on an existing directory, in
// the lab's libvirtd or the one `conn` reaches: its files are the pool's
// volumes (file sources for vol-create-from).  Destroyed when this object
// goes away; the directory stays.
class DirPool {
  public:
    explicit DirPool(const std::string &dir, virConnectPtr conn = nullptr);
    ~DirPool();
    DirPool(const DirPool &) = delete;
    DirPool &operator=(const DirPool &) = delete;
    virStoragePoolPtr get() const { return pool_; }
    bool ok() const { return pool_ != nullptr; }

  private:
    virStoragePoolPtr pool_ = nullptr;
};

std::string vol_xml(const std::string &name, uint64_t capacity, const std::string &extra = "");

constexpr uint64_t MiB = 1024 * 1024;

struct VolDeleter {
    void operator()(virStorageVol *v) const { virStorageVolFree(v); }
};
using Vol = std::unique_ptr<virStorageVol, VolDeleter>;

// A new image `image` of `size` bytes in `ceph_pool` holding "golden bytes" at its start (what
// clones are made from), looked up as a volume of `pool` after a refresh: null when `pool`
// does not list it.  The caller frees the volume and removes the image.
virStorageVolPtr golden_volume(virStoragePoolPtr pool, const std::string &image,
                               const std::string &ceph_pool = "rbd", uint64_t size = 8 * MiB);

// A ceph <secret> in the lab's libvirtd holding `base64_key`, undefined
// when this object goes away.
class CephSecret {
  public:
    explicit CephSecret(const std::string &base64_key);
    ~CephSecret();
    const std::string &uuid() const { return uuid_; }
    bool ok() const { return secret_ != nullptr; }

  private:
    std::string uuid_;
    virSecretPtr secret_ = nullptr;
};

// A passphrase <secret> (usage type volume) in the lab's libvirtd, for
// encrypted volumes; without_value: defined, no value set.  Undefined when
// this object goes away.
class VolumeSecret {
  public:
    explicit VolumeSecret(const std::string &passphrase, bool without_value = false);
    ~VolumeSecret();
    VolumeSecret(const VolumeSecret &) = delete;
    VolumeSecret &operator=(const VolumeSecret &) = delete;
    const std::string &uuid() const { return uuid_; }
    bool ok() const { return secret_ != nullptr; }

  private:
    std::string uuid_;
    virSecretPtr secret_ = nullptr;
};

// Volume XML of an encrypted volume (<encryption> inside <target>).
std::string encrypted_vol_xml(const std::string &name, uint64_t capacity, const std::string &secret_uuid,
                              const std::string &format = "luks2", const std::string &engine = "librbd");

// vol-upload at offset of pieces, each a hole of `first` bytes (sent as a hole) followed by the
// data `second`, as libvirt's clients send them: 0, or -1 with the error in *err.
int upload_pieces(virStorageVolPtr vol, const std::vector<std::pair<uint64_t, std::string>> &pieces,
                  uint64_t offset, uint64_t length = 0, unsigned flags = 0, LastError *err = nullptr);
int upload(virStorageVolPtr vol, const std::string &data, uint64_t offset);
// vol-download of length bytes at offset (0 = to the end); *rc -1 on failure, the error in *err.
std::string download(virStorageVolPtr vol, uint64_t offset, uint64_t length, int *rc = nullptr,
                     unsigned flags = 0, LastError *err = nullptr);

// Every RADOS data object of an image (rbd_data.<id>.*), as `rados get` reads them,
// concatenated: the bytes the image itself stores (not its parent's).
std::string stored_objects(const std::string &pool, const std::string &image);

// A pool on Ceph pool "rbd" used through the lab's read-only Ceph user
// (profile rbd-read-only), with a secret of its own.
class ReadOnlyUserPool {
  public:
    explicit ReadOnlyUserPool(const std::string &name);
    bool ok() const { return key_.ok() && pool_.ok(); }
    virStoragePoolPtr get() const { return pool_.get(); }

  private:
    static PoolSpec spec(const std::string &name, const CephSecret &key);
    CephSecret key_;
    Pool pool_;
};

// SIGSTOP / SIGCONT of the lab's OSD: a cluster that stops answering
// without closing its sockets.  Thawed when this object goes away.
class FrozenOsd {
  public:
    FrozenOsd();
    ~FrozenOsd() { thaw(); }
    bool freeze();
    void thaw();

  private:
    int pid_ = 0;
    bool frozen_ = false;
};

// Processes spinning on the CPUs until this object goes away (or the test
// program dies): load that makes races likely.
class CpuHogs {
  public:
    explicit CpuHogs(int n);
    ~CpuHogs();
    CpuHogs(const CpuHogs &) = delete;
    CpuHogs &operator=(const CpuHogs &) = delete;
    size_t size() const { return pids_.size(); }

  private:
    std::vector<pid_t> pids_;
};

// A libvirtd of a test's own (tests/lab/libvirtd-lab.sh; the lab's backend
// directory, or BACKEND_DIR) on the lab's cluster, stopped and removed when
// this object goes away; its state survives restart().
class PrivateDaemon {
  public:
    explicit PrivateDaemon(const std::string &backend_dir = "");
    ~PrivateDaemon();
    PrivateDaemon(const PrivateDaemon &) = delete;
    PrivateDaemon &operator=(const PrivateDaemon &) = delete;
    bool ok() const { return ok_; }
    // The lab's admin key as a persistent secret under the lab's UUID, so
    // that pool_xml() works against this daemon too.
    bool define_admin_secret();
    // kill: SIGKILL (a crash) instead of SIGTERM.
    bool restart(bool kill);
    virConnectPtr storage() const { return storage_; }
    virConnectPtr secrets() const { return secrets_; }
    std::string storage_uri() const;
    std::string log_path() const;
    pid_t pid() const; // 0 when unknown

  private:
    bool script(const std::string &args);
    bool connect();
    void disconnect();

    std::string top_, dir_;
    virConnectPtr storage_ = nullptr, secrets_ = nullptr;
    bool ok_ = false;
};

} // namespace lab
