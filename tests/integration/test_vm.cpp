// From image to running VM: real guests boot from disks our module made.
//
// The lab's libvirtd runs libvirt's qemu driver (tests/lab/libvirtd-lab.sh --qemu); each guest
// is a TCG domain with a direct kernel boot of a Debian kernel and a busybox initramfs
// (tests/lab/guest-kit.sh) that prints the sha256 of the first 16 MiB of each virtio disk on a
// file-backed serial console, optionally overwrites its first disk, and powers off.  A guest
// that does not finish within kGuestLimit fails its test, with its console and qemu log.
// Disks are attached as <disk type='network' protocol='rbd'> with the lab's cephx secret
// (libvirt's qemu driver refuses <disk type='volume'> for rbd pools: checked below), or made
// by virt-install.  Run by tests/run-all.sh in a lab of its own.
#include <gtest/gtest.h>

#include <glib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "lab_client.hpp"
#include "test_files.hpp"

using namespace lab;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kGoldenBytes = 16 * MiB;  // what every guest reads (vmtest.mib=16)
constexpr auto kGuestLimit = std::chrono::seconds(150);

std::string sha256(const std::string &bytes)
{
    gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, reinterpret_cast<const guchar *>(bytes.data()),
                                             bytes.size());
    std::string out(hex);
    g_free(hex);
    return out;
}

std::string quote(const std::string &s)
{
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Runs a shell command; its output (stdout and stderr) and exit status.
struct Ran {
    int status = -1;
    std::string output;
};
Ran run(const std::string &cmd)
{
    Ran r;
    FILE *p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p)
        return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        r.output.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// The guest's kernel and initramfs, made (once, cached in the build dir) by guest-kit.sh.
struct Kit {
    std::string kernel, initrd, error;
};
const Kit &kit()
{
    static const Kit k = [] {
        Kit k;
        const char *dir = getenv("RBDCLONE_GUEST_KIT_DIR");
        Ran r = run("timeout 900 " + quote(std::string(RBDCLONE_SOURCE_DIR) + "/tests/lab/guest-kit.sh") + " " +
                    quote(dir && *dir ? dir : RBDCLONE_BUILD_DIR "/guest-kit"));
        std::smatch m;
        if (std::regex_search(r.output, m, std::regex("KERNEL=(\\S+)")))
            k.kernel = m[1];
        if (std::regex_search(r.output, m, std::regex("INITRD=(\\S+)")))
            k.initrd = m[1];
        if (r.status != 0 || k.kernel.empty() || k.initrd.empty())
            k.error = "tests/lab/guest-kit.sh failed (status " + std::to_string(r.status) + "):\n" + r.output;
        return k;
    }();
    return k;
}

virConnectPtr qemu()
{
    static virConnectPtr c = virConnectOpen(env("LIBVIRT_QEMU_URI").c_str());
    return c;
}

// <disk type='network' protocol='rbd'> of a Ceph image of the lab, through the lab's
// client.admin secret; with passphrase_secret, encrypted by librbd (LUKS2) with that key.
std::string rbd_disk(const std::string &ceph_image, const std::string &dev, bool readonly = false,
                     const std::string &passphrase_secret = "")
{
    const std::string encryption = passphrase_secret.empty() ? "" :
        "<encryption format='luks2' engine='librbd'><secret type='passphrase' uuid='" + passphrase_secret +
        "'/></encryption>";
    return "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>"
           "<auth username='admin'><secret type='ceph' uuid='" + env("LAB_SECRET_ADMIN_UUID") + "'/></auth>"
           "<source protocol='rbd' name='" + ceph_image + "'><host name='127.0.0.1' port='" +
           env("CEPH_MON_V2_PORT") + "'/>" + encryption + "</source><target dev='" + dev + "' bus='virtio'/>" +
           (readonly ? "<readonly/>" : "") + "</disk>";
}

// A guest of the lab's qemu driver: a transient domain (start()) or one that virt-install
// defined (adopt()); destroyed, and undefined if persistent, when this object goes away.
class Guest {
  public:
    Guest(std::string name, std::string console) : name_(std::move(name)), console_(std::move(console)) {}
    ~Guest()
    {
        if (!dom_)
            dom_ = virDomainLookupByName(qemu(), name_.c_str());
        if (!dom_)
            return;
        if (virDomainIsActive(dom_) == 1)
            virDomainDestroy(dom_);
        if (virDomainIsPersistent(dom_) == 1)
            virDomainUndefine(dom_);
        virDomainFree(dom_);
    }
    Guest(const Guest &) = delete;
    Guest &operator=(const Guest &) = delete;

    // Starts a transient domain with these <disk>s; "" or libvirt's error.
    std::string start(const std::string &disks, const std::string &cmdline = "")
    {
        std::string xml = "<domain type='qemu'><name>" + name_ + "</name><memory unit='MiB'>256</memory>"
            "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><kernel>" + kit().kernel +
            "</kernel><initrd>" + kit().initrd + "</initrd><cmdline>console=ttyS0 quiet panic=-1 vmtest.mib=" +
            std::to_string(kGoldenBytes / MiB) + " " + cmdline + "</cmdline></os><features><acpi/></features>"
            "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>"
            "<devices>" + disks + "<serial type='file'><source path='" + console_ + "'/><target port='0'/></serial>"
            "<console type='file'><source path='" + console_ + "'/><target type='serial' port='0'/></console>"
            "<controller type='usb' model='none'/><memballoon model='none'/></devices></domain>";
        dom_ = virDomainCreateXML(qemu(), xml.c_str(), 0);
        return dom_ ? "" : last_error().message;
    }
    // The domain named name() exists (made by someone else: virt-install).
    bool adopt()
    {
        dom_ = virDomainLookupByName(qemu(), name_.c_str());
        return dom_ != nullptr;
    }
    const std::string &name() const { return name_; }
    virDomainPtr domain() const { return dom_; }
    std::string console() const { return testfiles::read_file(console_); }

    // Waits until the console holds `text` (true), or the guest ended or kGuestLimit passed
    // (false, with the reason in `why()`).
    bool wait_for(const std::string &text)
    {
        const auto deadline = Clock::now() + kGuestLimit;
        for (;;) {
            if (console().find(text) != std::string::npos)
                return true;
            bool running = dom_ && virDomainIsActive(dom_) == 1;
            if (!running || Clock::now() > deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(300)); // its last words
                if (console().find(text) != std::string::npos)
                    return true;
                why_ = "guest " + name_ + " did not print '" + text + "' " +
                       (running ? "within " + std::to_string(kGuestLimit.count()) + " s" : "before it stopped") +
                       report();
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }
    // Waits until the guest said "VMTEST done" and powered off.
    bool wait_done()
    {
        if (!wait_for("VMTEST done"))
            return false;
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while (virDomainIsActive(dom_) == 1) {
            if (Clock::now() > deadline) {
                why_ = "guest " + name_ + " said 'VMTEST done' but did not power off within 30 s" + report();
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return true;
    }
    const std::string &why() const { return why_; }

    // What the guest printed after "VMTEST KEY" ("vda read 1 sha256" -> the hex), "" if nothing.
    std::string said(const std::string &key) const
    {
        const std::string text = console(), needle = "VMTEST " + key + "=";
        size_t p = text.find(needle);
        if (p == std::string::npos)
            return "";
        p += needle.size();
        return text.substr(p, text.find_first_of("\r\n", p) - p);
    }
    // How many full read rounds of vda the guest reported.
    int rounds() const { return count(console(), "VMTEST vda read "); }

    // Its console and the end of its qemu log, for failure messages.
    std::string report() const
    {
        const std::string log = env("LIBVIRTD_QEMU_LOG_DIR") + "/" + name_ + ".log";
        std::string q = testfiles::read_file(log);
        size_t start = q.size();
        for (int lines = 0; start > 0 && lines < 20; lines += q[--start] == '\n')
            ;
        return "\n--- its console (" + console_ + "):\n" + console() + "\n--- the end of its qemu log (" + log +
               "):\n" + q.substr(start);
    }

  private:
    std::string name_, console_, why_;
    virDomainPtr dom_ = nullptr;
};

class Vm : public ::testing::Test {
  protected:
    void SetUp() override
    {
        ASSERT_TRUE(kit().error.empty()) << kit().error;
        (void)storage(); // its first call silences libvirt's default error printing
        ASSERT_NE(qemu(), nullptr) << "cannot connect to " << env("LIBVIRT_QEMU_URI")
                                   << " (is the lab's qemu driver loaded? libvirtd-lab.sh --qemu)";
        char tmpl[] = "/tmp/rbdclone-vm-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        images_ = std::make_unique<Pool>(PoolSpec{unique("images")});
        PoolSpec vms{unique("vms")};
        vms.ceph_pool = "rbd2";
        vms_ = std::make_unique<Pool>(vms);
        ASSERT_TRUE(images_->ok() && vms_->ok()) << last_error().message;
        golden_ = unique("golden");
        golden_bytes_ = random_bytes(kGoldenBytes, 20);
        golden_sum_ = sha256(golden_bytes_);
        ceph().create("rbd", golden_, kGoldenBytes);
        ceph().write("rbd", golden_, 0, golden_bytes_);
        ASSERT_EQ(virStoragePoolRefresh(images_->get(), 0), 0) << last_error().message;
    }
    void TearDown() override
    {
        guests_.clear(); // domains first: they hold the images open
        for (auto it = images_made_.rbegin(); it != images_made_.rend(); ++it)
            ceph().remove(it->first, it->second);
        if (!golden_.empty())
            ceph().remove("rbd", golden_);
        vms_.reset();
        images_.reset();
        if (!dir_.empty())
            (void)!system(("rm -rf " + quote(dir_)).c_str());
    }

    Guest &guest(const std::string &prefix)
    {
        std::string name = unique(prefix);
        guests_.push_back(std::make_unique<Guest>(name, dir_ + "/" + name + ".console"));
        return *guests_.back();
    }
    // vol-create-from SOURCE (a volume of another pool) into `into`; the new image's
    // "cephpool/name".
    std::string create_from(Pool &into, virStorageVolPtr source, const std::string &prefix)
    {
        const std::string name = unique(prefix);
        Vol v(virStorageVolCreateXMLFrom(into.get(), vol_xml(name, kGoldenBytes).c_str(), source, 0));
        EXPECT_TRUE(v) << "vol-create-from " << prefix << ": " << last_error().message;
        const std::string ceph_pool = &into == images_.get() ? "rbd" : "rbd2";
        made(ceph_pool, name);
        return ceph_pool + "/" + name;
    }
    Vol golden_vol() { return Vol(virStorageVolLookupByName(images_->get(), golden_.c_str())); }
    void made(const std::string &ceph_pool, const std::string &name) { images_made_.emplace_back(ceph_pool, name); }
    static std::string parent_of(const std::string &image)
    {
        const size_t slash = image.find('/');
        return ceph().parent(image.substr(0, slash), image.substr(slash + 1));
    }
    std::string golden_parent_prefix() const { return "rbd/" + golden_ + "@"; }

    std::string dir_, golden_, golden_bytes_, golden_sum_;
    std::unique_ptr<Pool> images_, vms_;
    std::vector<std::pair<std::string, std::string>> images_made_;
    std::vector<std::unique_ptr<Guest>> guests_;
};

// A guest on a clone (vol-create-from across pools) reads the golden bytes and overwrites its
// disk; then a guest on the golden image and on a second clone still reads the golden bytes.
TEST_F(Vm, AGuestOnACloneReadsTheImageAndItsWritesStayInItsClone)
{
    Vol src = golden_vol();
    ASSERT_TRUE(src) << last_error().message;
    const std::string first = create_from(*vms_, src.get(), "clone");
    const std::string second = create_from(*vms_, src.get(), "clone");
    ASSERT_EQ(parent_of(first).rfind(golden_parent_prefix(), 0), 0u) << "not a clone: " << parent_of(first);
    ASSERT_EQ(parent_of(second).rfind(golden_parent_prefix(), 0), 0u) << "not a clone: " << parent_of(second);

    Guest &writer = guest("writer");
    ASSERT_EQ(writer.start(rbd_disk(first, "vda"), "vmtest.write=1"), "");
    ASSERT_TRUE(writer.wait_done()) << writer.why();
    EXPECT_EQ(writer.said("vda read 1 sha256"), golden_sum_) << writer.report();
    const std::string wrote = writer.said("vda wrote sha256");
    ASSERT_EQ(wrote.size(), 64u) << "the guest did not report its write" << writer.report();
    EXPECT_NE(wrote, golden_sum_);
    const size_t slash = first.find('/');
    EXPECT_EQ(sha256(ceph().read(first.substr(0, slash), first.substr(slash + 1), 0, kGoldenBytes)), wrote)
        << "what the guest wrote is not what its clone holds in Ceph";

    Guest &reader = guest("reader");
    ASSERT_EQ(reader.start(rbd_disk("rbd/" + golden_, "vda", true) + rbd_disk(second, "vdb")), "");
    ASSERT_TRUE(reader.wait_done()) << reader.why();
    EXPECT_EQ(reader.said("vda read 1 sha256"), golden_sum_) << "the golden image changed" << reader.report();
    EXPECT_EQ(reader.said("vdb read 1 sha256"), golden_sum_) << "the second clone changed" << reader.report();
    EXPECT_EQ(sha256(ceph().read("rbd", golden_, 0, kGoldenBytes)), golden_sum_);
}

// Encrypted disks of a plain golden image, each with its own key (a clone where librbd has
// layered encryption, Ceph 18; an encrypted copy on Ceph 16): a guest boots from one with its
// <encryption engine='librbd'> and reads the golden bytes, overwrites its disk, and Ceph stores
// neither what it wrote nor the golden bytes in the clear; a second disk with another key reads
// the golden bytes, and the first disk's key does not open it; the golden image and a plain
// clone of it still read the golden bytes.
TEST_F(Vm, AGuestBootsFromAnEncryptedDiskOfAPlainImage)
{
    VolumeSecret key1("vm test passphrase one"), key2("vm test passphrase two");
    ASSERT_TRUE(key1.ok() && key2.ok()) << last_error().message;
    Vol src = golden_vol();
    ASSERT_TRUE(src) << last_error().message;
    std::string disks[2];
    Vol vols[2];
    const VolumeSecret *keys[2] = {&key1, &key2};
    for (int i = 0; i < 2; i++) {
        const std::string name = unique("encrypted");
        vols[i].reset(virStorageVolCreateXMLFrom(vms_->get(), encrypted_vol_xml(name, 0, keys[i]->uuid()).c_str(),
                                                 src.get(), 0));
        ASSERT_TRUE(vols[i]) << last_error().message;
        made("rbd2", name);
        disks[i] = "rbd2/" + name;
    }
    const std::string plain = create_from(*vms_, src.get(), "plain");

    Guest &writer = guest("encwriter");
    ASSERT_EQ(writer.start(rbd_disk(disks[0], "vda", false, key1.uuid()), "vmtest.write=1"), "");
    ASSERT_TRUE(writer.wait_done()) << writer.why();
    EXPECT_EQ(writer.said("vda read 1 sha256"), golden_sum_) << writer.report();
    const std::string wrote_sum = writer.said("vda wrote sha256");
    ASSERT_EQ(wrote_sum.size(), 64u) << "the guest did not report its write" << writer.report();
    int rc = -1;
    const std::string wrote = download(vols[0].get(), 0, kGoldenBytes, &rc);
    ASSERT_EQ(rc, 0) << last_error().message;
    EXPECT_EQ(sha256(wrote), wrote_sum) << "vol-download does not give what the guest wrote";
    const std::string stored = stored_objects("rbd2", disks[0].substr(5));
    for (uint64_t off : {uint64_t{0}, 5 * MiB, kGoldenBytes - 4096}) {
        EXPECT_EQ(stored.find(wrote.substr(off, 4096)), std::string::npos) << "what the guest wrote, in the clear";
        EXPECT_EQ(stored.find(golden_bytes_.substr(off, 4096)), std::string::npos) << "golden bytes in the clear";
    }

    Guest &reader = guest("encreader");
    ASSERT_EQ(reader.start(rbd_disk(disks[1], "vda", true, key2.uuid()) + rbd_disk("rbd/" + golden_, "vdb", true) +
                           rbd_disk(plain, "vdc", true)),
              "");
    ASSERT_TRUE(reader.wait_done()) << reader.why();
    EXPECT_EQ(reader.said("vda read 1 sha256"), golden_sum_) << "the second encrypted disk" << reader.report();
    EXPECT_EQ(reader.said("vdb read 1 sha256"), golden_sum_) << "the golden image changed" << reader.report();
    EXPECT_EQ(reader.said("vdc read 1 sha256"), golden_sum_) << "the plain clone" << reader.report();

    Guest &intruder = guest("wrongkey");
    const std::string refused = intruder.start(rbd_disk(disks[1], "vda", true, key1.uuid()));
    EXPECT_NE(refused, "") << "the first disk's key opened the second";
}

// virt-install makes a disk with --disk pool=...,backing_store=CEPH_POOL/IMAGE (a clone, as
// Ceph says) and attaches an existing clone with --disk vol=POOL/VOL; the guest reads both.
// The pools report no free space (no ceph-mgr), so virt-install needs --check disk_size=off.
TEST_F(Vm, VirtInstallDisksFromABackingStoreAndAVolumeBoot)
{
    Vol src = golden_vol();
    ASSERT_TRUE(src) << last_error().message;
    const std::string existing = create_from(*vms_, src.get(), "existing");
    Guest &g = guest("virtinst");
    const std::string console = dir_ + "/" + g.name() + ".console";
    const std::string cmd =
        "timeout 300 virt-install --connect " + quote(env("LIBVIRT_QEMU_URI")) + " --name " + g.name() +
        " --memory 256 --vcpus 1 --virt-type qemu --osinfo detect=on,require=off --import"
        " --boot " + quote("kernel=" + kit().kernel + ",initrd=" + kit().initrd +
                           ",kernel_args=console=ttyS0 quiet panic=-1 vmtest.mib=16") +
        " --disk pool=" + vms_->name() + ",size=" + std::to_string(double(kGoldenBytes) / (1024 * MiB)) +
        ",backing_store=rbd/" + golden_ + ",backing_format=raw,bus=virtio"
        " --disk vol=" + vms_->name() + "/" + existing.substr(existing.find('/') + 1) + ",bus=virtio"
        " --serial file,path=" + console + " --graphics none --network none --noautoconsole"
        " --events on_reboot=destroy --check disk_size=off";
    const Ran r = run(cmd);
    const bool adopted = g.adopt(); // cleaned up even if virt-install failed half-way
    ASSERT_EQ(r.status, 0) << cmd << "\n" << r.output;
    ASSERT_TRUE(adopted) << "virt-install succeeded but there is no domain " << g.name();

    // The disk it made: vda, an rbd network disk (libvirt's qemu driver takes no other kind).
    char *xml = virDomainGetXMLDesc(g.domain(), 0);
    ASSERT_NE(xml, nullptr);
    const std::string dxml = xml;
    free(xml);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(dxml, m, std::regex("<source protocol='rbd' name='(rbd2/[^']+)'")))
        << "no rbd disk in the domain virt-install made:\n" << dxml;
    const std::string made_disk = m[1];
    made("rbd2", made_disk.substr(5));
    EXPECT_EQ(parent_of(made_disk).rfind(golden_parent_prefix(), 0), 0u)
        << "virt-install's disk " << made_disk << " is not a clone of the golden image: parent '"
        << parent_of(made_disk) << "'";

    ASSERT_TRUE(g.wait_done()) << g.why();
    EXPECT_EQ(g.said("vda read 1 sha256"), golden_sum_) << g.report();
    EXPECT_EQ(g.said("vdb read 1 sha256"), golden_sum_) << g.report();
}

// A disk copied and converted from a qcow2 file (a pool without cache), and one served by the
// image cache (the second request for the same file: a clone of the cache entry) boot.
TEST_F(Vm, DisksConvertedFromQcow2AndFromTheImageCacheBoot)
{
    const std::string raw = dir_ + "/golden.raw", files = dir_ + "/files";
    ASSERT_EQ(mkdir(files.c_str(), 0755), 0);
    std::ofstream(raw, std::ios::binary) << golden_bytes_;
    const Ran conv = run("qemu-img convert -f raw -O qcow2 " + quote(raw) + " " + quote(files + "/golden.qcow2"));
    ASSERT_EQ(conv.status, 0) << conv.output;
    const std::string dir_pool = "<pool type='dir'><name>" + unique("files") + "</name><target><path>" + files +
                                 "</path></target></pool>";
    virStoragePoolPtr fp = virStoragePoolCreateXML(storage(), dir_pool.c_str(), 0);
    ASSERT_NE(fp, nullptr) << last_error().message;
    std::unique_ptr<virStoragePool, decltype(&virStoragePoolDestroy)> file_pool(fp, [](virStoragePoolPtr p) {
        int r = virStoragePoolDestroy(p);
        virStoragePoolFree(p);
        return r;
    });
    Vol qcow2(virStorageVolLookupByName(fp, "golden.qcow2"));
    ASSERT_TRUE(qcow2) << last_error().message;

    const std::string copy = create_from(*vms_, qcow2.get(), "copy");
    EXPECT_EQ(parent_of(copy), "") << "a qcow2 file cannot be cloned: expected a full copy";

    PoolSpec cached{unique("cached")};
    cached.ceph_pool = "rbd2";
    cached.extra = "<rbd:image_cache enabled='yes'/>";
    Pool cache_pool(cached);
    ASSERT_TRUE(cache_pool.ok()) << last_error().message;
    const std::string miss = create_from(cache_pool, qcow2.get(), "miss");
    const std::string hit = create_from(cache_pool, qcow2.get(), "hit");
    const std::string entry = parent_of(hit);
    EXPECT_EQ(entry.rfind("rbd2/rbdclone-cache-", 0), 0u) << "not a clone of a cache entry: '" << entry << "'";
    EXPECT_EQ(parent_of(miss), entry) << "the second request did not clone the entry the first one filled";
    if (entry.rfind("rbd2/", 0) == 0) // first in the list: removed after its clones
        images_made_.insert(images_made_.begin(), {"rbd2", entry.substr(5, entry.find('@') - 5)});

    Guest &g = guest("converted");
    ASSERT_EQ(g.start(rbd_disk(copy, "vda") + rbd_disk(hit, "vdb")), "");
    ASSERT_TRUE(g.wait_done()) << g.why();
    EXPECT_EQ(g.said("vda read 1 sha256"), golden_sum_) << "the qcow2 copy" << g.report();
    EXPECT_EQ(g.said("vdb read 1 sha256"), golden_sum_) << "the cache hit" << g.report();
}

// A clone flattened (virsh vol-resize --allocate) while its guest runs and keeps reading it:
// every read before, during and after the flatten gives the golden bytes.
TEST_F(Vm, AGuestReadsTheSameBytesWhileItsDiskIsFlattened)
{
    Vol src = golden_vol();
    ASSERT_TRUE(src) << last_error().message;
    const std::string disk = create_from(*vms_, src.get(), "flat");
    ASSERT_EQ(parent_of(disk).rfind(golden_parent_prefix(), 0), 0u) << "not a clone: " << parent_of(disk);

    Guest &g = guest("flatten");
    ASSERT_EQ(g.start(rbd_disk(disk, "vda"), "vmtest.rounds=1000"), "");
    ASSERT_TRUE(g.wait_for("VMTEST vda read 1 ")) << g.why();
    Vol v(virStorageVolLookupByName(vms_->get(), disk.substr(5).c_str()));
    ASSERT_TRUE(v) << last_error().message;
    const int before = g.rounds();
    ASSERT_EQ(virStorageVolResize(v.get(), 0, VIR_STORAGE_VOL_RESIZE_DELTA | VIR_STORAGE_VOL_RESIZE_ALLOCATE), 0)
        << last_error().message;
    EXPECT_EQ(parent_of(disk), "") << "still a clone after vol-resize --allocate";
    const int after = g.rounds();
    // Two more rounds: the second of them started after the flatten.
    const std::string later = "VMTEST vda read " + std::to_string(after + 2) + " ";
    ASSERT_TRUE(g.wait_for(later)) << g.why();
    EXPECT_EQ(virDomainIsActive(g.domain()), 1) << "the guest stopped" << g.report();
    for (int r = 1; r <= after + 2; r++)
        EXPECT_EQ(g.said("vda read " + std::to_string(r) + " sha256"), golden_sum_)
            << "read " << r << " (the flatten ran during reads " << before << ".." << after + 1 << ")"
            << g.report();
}

// libvirt's qemu driver refuses a <disk type='volume'> whose pool is an rbd pool (9.0 and
// 11.3): VMs take <disk type='network' protocol='rbd'> (what virt-install writes).
TEST_F(Vm, QemuRefusesVolumeDisksOfRbdPools)
{
    Vol src = golden_vol();
    ASSERT_TRUE(src) << last_error().message;
    const std::string disk = create_from(*vms_, src.get(), "voldisk");
    Guest &g = guest("voldisk");
    const std::string err = g.start("<disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='" +
                                    vms_->name() + "' volume='" + disk.substr(5) +
                                    "'/><target dev='vda' bus='virtio'/></disk>");
    EXPECT_NE(err.find("using 'rbd' pools for backing 'volume' disks isn't yet supported"), std::string::npos)
        << "libvirt's qemu driver said: '" << err << "' (does it take rbd volume disks now? then README's "
        << "'From image to VM' is out of date)";
}

} // namespace
