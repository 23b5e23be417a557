// Encrypted volumes with librbd's own LUKS: created, reported (also from a fresh pool, as
// another host sees them), moved through vol-upload/vol-download as the guest's bytes, resized,
// made from a plain golden image (a clone with its own key where librbd has layered encryption,
// Ceph >= 18; an encrypted copy on Ceph 16), and refused with a clear error for bad input,
// nothing created. The stock backend refuses every encrypted volume (test_parity.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "ceph/encryption.hpp"
#include "lab_client.hpp"
#include "test_files.hpp"

using namespace lab;

namespace {

const std::string kLuksMagic("LUKS\xba\xbe", 6);

bool has_partial(const std::string &pool)
{
    for (const auto &n : ceph().list(pool))
        if (n.find(".rbdclone-partial-") != std::string::npos)
            return true;
    return false;
}

// Whether `passphrase` opens pool/image as LUKS2 (librbd directly, as a guest's qemu does).
bool opens_with(const std::string &pool, const std::string &image, const std::string &passphrase)
{
    rbd_image_t img;
    if (rbd_open_read_only(ceph().io(pool), image.c_str(), &img, nullptr) < 0)
        return false;
    rbd_encryption_luks2_format_options_t o{RBD_ENCRYPTION_ALGORITHM_AES256, passphrase.data(), passphrase.size()};
    int r = rbd_encryption_load(img, RBD_ENCRYPTION_FORMAT_LUKS2, &o, sizeof(o));
    rbd_close(img);
    return r == 0;
}

class Encryption : public ::testing::Test {
  protected:
    void SetUp() override
    {
        BEYOND_STOCK();
        reopen_vms();
        ASSERT_TRUE(vms_->ok()) << last_error().message;
        images_ = std::make_unique<Pool>(unique("images"));
        ASSERT_TRUE(images_->ok()) << last_error().message;
        ASSERT_TRUE(key1_.ok() && key2_.ok()) << last_error().message;
    }
    void TearDown() override
    {
        vms_.reset();
        images_.reset();
        for (auto &[pool, name] : created_)
            ceph().remove(pool, name);
    }
    // The pool of the disks, defined anew: what it lists comes from Ceph alone.
    void reopen_vms()
    {
        vms_.reset();
        PoolSpec vms{unique("vms")};
        vms.ceph_pool = "rbd2";
        vms_ = std::make_unique<Pool>(vms);
    }
    std::string track(const std::string &pool, const std::string &name)
    {
        created_.emplace_back(pool, name);
        return name;
    }
    Vol create(const std::string &name, uint64_t capacity, const std::string &secret,
               const std::string &format = "luks2")
    {
        return Vol(virStorageVolCreateXML(vms_->get(), encrypted_vol_xml(name, capacity, secret, format).c_str(), 0));
    }
    // V, a new volume NAME of CAPACITY bytes encrypted with key1_, holding DATA (uploaded) at
    // OFFSET; each step asserted.  Call it inside ASSERT_NO_FATAL_FAILURE.
    void create_holding(const std::string &name, uint64_t capacity, const std::string &data, uint64_t offset,
                        Vol &v)
    {
        v = create(name, capacity, key1_.uuid());
        ASSERT_TRUE(v) << last_error().message;
        ASSERT_EQ(upload(v.get(), data, offset), 0) << last_error().message;
    }
    // A plain golden image of `size` random bytes in the images pool.
    std::string golden(uint64_t size)
    {
        const std::string name = track("rbd", unique("golden"));
        ceph().create("rbd", name, size);
        golden_bytes_ = random_bytes(size, 7);
        // Zeros inside objects that hold data: a copy must make them read as zeros too.
        for (uint64_t z : {size / 2, size - 300 * 1024})
            std::fill_n(golden_bytes_.begin() + static_cast<long>(z), 256 * 1024, '\0');
        ceph().write("rbd", name, 0, golden_bytes_);
        virStoragePoolRefresh(images_->get(), 0);
        return name;
    }
    Vol lookup(Pool &pool, const std::string &name)
    {
        return Vol(virStorageVolLookupByName(pool.get(), name.c_str()));
    }
    std::string xml_of(virStorageVolPtr v)
    {
        char *x = virStorageVolGetXMLDesc(v, 0);
        std::string s = x ? x : "";
        free(x);
        return s;
    }
    void expect_encrypted(virStorageVolPtr v, const std::string &format, const std::string &secret, uint64_t cap)
    {
        const std::string xml = xml_of(v);
        EXPECT_NE(xml.find("<encryption format='" + format + "' engine='librbd'>"), std::string::npos) << xml;
        EXPECT_NE(xml.find("<secret type='passphrase' uuid='" + secret + "'/>"), std::string::npos) << xml;
        virStorageVolInfo info;
        ASSERT_EQ(virStorageVolGetInfo(v, &info), 0) << last_error().message;
        EXPECT_EQ(info.capacity, cap);
    }
    void expect_nothing_created(const std::string &name)
    {
        EXPECT_FALSE(ceph().exists("rbd2", name));
        EXPECT_FALSE(has_partial("rbd2"));
    }

    std::unique_ptr<Pool> vms_, images_;
    VolumeSecret key1_{"first passphrase"}, key2_{"second, other passphrase"};
    std::vector<std::pair<std::string, std::string>> created_;
    std::string golden_bytes_;
};

TEST_F(Encryption, CreatedVolumeIsLuksReportedWithItsSecretAndGuestCapacity)
{
    for (const std::string format : {"luks2", "luks"}) {
        const std::string name = track("rbd2", unique("enc"));
        Vol v = create(name, 64 * MiB, key1_.uuid(), format);
        ASSERT_TRUE(v) << format << ": " << last_error().message;
        expect_encrypted(v.get(), format, key1_.uuid(), 64 * MiB);
        // At rest: a LUKS header, then ciphertext; the image is the guest's size plus the header.
        EXPECT_EQ(ceph().read("rbd2", name, 0, 6), kLuksMagic) << format;
        EXPECT_GT(ceph().size("rbd2", name), 64 * MiB) << format;
        // As a fresh pool (another host, a restarted daemon) sees it.
        v.reset();
        reopen_vms();
        Vol seen = lookup(*vms_, name);
        ASSERT_TRUE(seen) << last_error().message;
        expect_encrypted(seen.get(), format, key1_.uuid(), 64 * MiB);
    }
}

TEST_F(Encryption, UploadAndDownloadMoveTheGuestsBytesAndOnlyCiphertextIsStored)
{
    const std::string name = track("rbd2", unique("enc"));
    const std::string data = random_bytes(3 * MiB, 11);
    Vol v;
    ASSERT_NO_FATAL_FAILURE(create_holding(name, 16 * MiB, data, 1 * MiB, v));
    int rc = -1;
    const std::string all = download(v.get(), 0, 0, &rc);
    ASSERT_EQ(rc, 0) << last_error().message;
    ASSERT_EQ(all.size(), 16 * MiB);
    EXPECT_TRUE(all.compare(1 * MiB, data.size(), data) == 0);
    // Objects never written read as zeros. (librbd 16 decrypts the unwritten rest of an object
    // it stores into noise, as any LUKS device shows where nothing was written.)
    EXPECT_EQ(all.find_first_not_of('\0', 8 * MiB), std::string::npos) << "unwritten objects not zero";
    const std::string stored = stored_objects("rbd2", name);
    EXPECT_EQ(stored.find(data.substr(0, 4096)), std::string::npos) << "plaintext at rest";
}

TEST_F(Encryption, ResizeKeepsTheEncryptionAndTheData)
{
    const std::string name = track("rbd2", unique("enc"));
    const std::string data = random_bytes(1 * MiB, 5);
    Vol v;
    ASSERT_NO_FATAL_FAILURE(create_holding(name, 8 * MiB, data, 0, v));
    ASSERT_EQ(virStorageVolResize(v.get(), 32 * MiB, 0), 0) << last_error().message;
    expect_encrypted(v.get(), "luks2", key1_.uuid(), 32 * MiB);
    int rc = -1;
    const std::string all = download(v.get(), 0, 0, &rc);
    ASSERT_EQ(rc, 0) << last_error().message;
    ASSERT_EQ(all.size(), 32 * MiB);
    EXPECT_TRUE(all.compare(0, data.size(), data) == 0);
}

TEST_F(Encryption, BadInputIsRefusedNamingVolumeAndSecretAndCreatesNothing)
{
    VolumeSecret no_value("unused", true);
    ASSERT_TRUE(no_value.ok()) << last_error().message;
    CephSecret wrong_type(env("CEPH_ADMIN_KEY"));
    ASSERT_TRUE(wrong_type.ok()) << last_error().message;
    const std::string missing = "0badc0de-0000-4000-8000-000000000001";
    struct Case {
        std::string what, secret, format, engine;
        int code;
        std::string needle; // in the message, beside the volume's name
    } cases[] = {
        {"missing secret", missing, "luks2", "librbd", VIR_ERR_NO_SECRET, missing},
        {"secret without value", no_value.uuid(), "luks2", "librbd", VIR_ERR_NO_SECRET, no_value.uuid()},
        {"secret of another type", wrong_type.uuid(), "luks2", "librbd", VIR_ERR_INVALID_ARG, wrong_type.uuid()},
        {"qemu's engine", key1_.uuid(), "luks2", "qemu", VIR_ERR_CONFIG_UNSUPPORTED, "librbd"},
        {"qcow encryption", key1_.uuid(), "qcow", "", VIR_ERR_CONFIG_UNSUPPORTED, "luks"},
        {"no secret", "", "luks2", "librbd", VIR_ERR_CONFIG_UNSUPPORTED, "secret"},
    };
    for (const auto &c : cases) {
        const std::string name = unique("bad");
        Vol v(virStorageVolCreateXML(vms_->get(), encrypted_vol_xml(name, 8 * MiB, c.secret, c.format, c.engine).c_str(),
                                     0));
        EXPECT_FALSE(v) << c.what;
        if (v)
            track("rbd2", name);
        const LastError e = last_error();
        EXPECT_EQ(e.code, c.code) << c.what << ": " << e.message;
        EXPECT_NE(e.message.find(name), std::string::npos) << c.what << ": " << e.message;
        EXPECT_NE(e.message.find(c.needle), std::string::npos) << c.what << ": " << e.message;
        expect_nothing_created(name);
    }
}

// Ceph 18: a clone of the plain golden image with the disk's own key; Ceph 16: an encrypted copy.
// Either way the guest reads the golden bytes, the golden image stays plain, and the disk
// stores none of them in the clear.
TEST_F(Encryption, DiskFromPlainGoldenImageHasItsOwnKey)
{
    // Larger than a LUKS2 header (16 MiB): a clone reads most of it from its parent, and the
    // last 16 MiB from what the module wrote back.
    const std::string gold = golden(40 * MiB);
    Vol src = lookup(*images_, gold);
    ASSERT_TRUE(src) << last_error().message;
    std::string disks[2];
    const VolumeSecret *keys[2] = {&key1_, &key2_};
    for (int i = 0; i < 2; i++) {
        disks[i] = track("rbd2", unique("encdisk"));
        Vol d(virStorageVolCreateXMLFrom(vms_->get(), encrypted_vol_xml(disks[i], 0, keys[i]->uuid()).c_str(),
                                         src.get(), 0));
        ASSERT_TRUE(d) << last_error().message;
        expect_encrypted(d.get(), "luks2", keys[i]->uuid(), 40 * MiB);
        const std::string parent = ceph().parent("rbd2", disks[i]);
        if (rbdclone::layered_encryption())
            EXPECT_EQ(parent.rfind("rbd/" + gold + "@", 0), 0u) << "a clone: " << parent;
        else
            EXPECT_EQ(parent, "") << "an encrypted copy";
        int rc = -1;
        EXPECT_TRUE(download(d.get(), 0, 0, &rc) == golden_bytes_) << "the guest reads the golden bytes";
        EXPECT_EQ(rc, 0) << last_error().message;
        const std::string marker = "marker of disk " + disks[i] + std::string(4000, 'm');
        ASSERT_EQ(upload(d.get(), marker, 4096), 0) << last_error().message;
        const std::string stored = stored_objects("rbd2", disks[i]);
        EXPECT_EQ(stored.find(marker.substr(0, 64)), std::string::npos) << "marker in the clear";
        EXPECT_EQ(stored.find(golden_bytes_.substr(1 * MiB, 4096)), std::string::npos) << "golden bytes in the clear";
    }
    EXPECT_TRUE(opens_with("rbd2", disks[1], "second, other passphrase"));
    EXPECT_FALSE(opens_with("rbd2", disks[1], "first passphrase")) << "the first disk's key opens the second";
    EXPECT_TRUE(ceph().contents("rbd", gold) == golden_bytes_) << "the golden image changed";
    // The check above can see plaintext: the golden image's own objects hold its bytes.
    EXPECT_NE(stored_objects("rbd", gold).find(golden_bytes_.substr(1 * MiB, 4096)), std::string::npos);
    // A plain disk of the same golden image still reads it.
    const std::string plain = track("rbd2", unique("plain"));
    Vol p(virStorageVolCreateXMLFrom(vms_->get(), vol_xml(plain, 0).c_str(), src.get(), 0));
    ASSERT_TRUE(p) << last_error().message;
    EXPECT_TRUE(ceph().contents("rbd2", plain) == golden_bytes_);
}

TEST_F(Encryption, ReflinkOnCeph16RefusesTheEncryptedCopy)
{
    if (rbdclone::layered_encryption())
        GTEST_SKIP() << "this librbd clones encrypted volumes";
    const std::string gold = golden(4 * MiB);
    Vol src = lookup(*images_, gold);
    ASSERT_TRUE(src);
    const std::string name = unique("encdisk");
    Vol d(virStorageVolCreateXMLFrom(vms_->get(), encrypted_vol_xml(name, 0, key1_.uuid()).c_str(), src.get(),
                                     VIR_STORAGE_VOL_CREATE_REFLINK));
    EXPECT_FALSE(d);
    if (d)
        track("rbd2", name);
    EXPECT_EQ(last_error().code, VIR_ERR_OPERATION_UNSUPPORTED) << last_error().message;
    EXPECT_NE(last_error().message.find("layered encryption"), std::string::npos) << last_error().message;
    expect_nothing_created(name);
}

TEST_F(Encryption, EncryptedSourceIsReadWithItsOwnKey)
{
    const std::string name = track("rbd2", unique("encsrc"));
    const std::string data = random_bytes(4 * MiB, 3);
    Vol v;
    ASSERT_NO_FATAL_FAILURE(create_holding(name, 4 * MiB, data, 0, v));
    // Into a plain volume: the guest's bytes, decrypted.
    const std::string plain = track("rbd2", unique("plain"));
    Vol p(virStorageVolCreateXMLFrom(vms_->get(), vol_xml(plain, 0).c_str(), v.get(), 0));
    ASSERT_TRUE(p) << last_error().message;
    EXPECT_EQ(ceph().parent("rbd2", plain), "");
    EXPECT_TRUE(ceph().contents("rbd2", plain) == data);
    // Into another key.
    const std::string other = track("rbd2", unique("rekeyed"));
    Vol o(virStorageVolCreateXMLFrom(vms_->get(), encrypted_vol_xml(other, 0, key2_.uuid()).c_str(), v.get(), 0));
    ASSERT_TRUE(o) << last_error().message;
    int rc = -1;
    EXPECT_TRUE(download(o.get(), 0, 0, &rc) == data);
    EXPECT_TRUE(opens_with("rbd2", other, "second, other passphrase"));
}

} // namespace

namespace {

TEST_F(Encryption, WrongPassphraseOfAnEncryptedSourceIsRefusedNamingItAndItsSecret)
{
    VolumeSecret key("the source's passphrase");
    ASSERT_TRUE(key.ok()) << last_error().message;
    const std::string name = track("rbd2", unique("encsrc"));
    Vol v = create(name, 4 * MiB, key.uuid());
    ASSERT_TRUE(v) << last_error().message;
    // The secret's value changes under the volume: it no longer opens it.
    virSecretPtr s = virSecretLookupByUUIDString(secrets(), key.uuid().c_str());
    ASSERT_NE(s, nullptr) << last_error().message;
    const std::string wrong = "not the passphrase";
    ASSERT_EQ(virSecretSetValue(s, reinterpret_cast<const unsigned char *>(wrong.data()), wrong.size(), 0), 0);
    virSecretFree(s);
    const std::string copy = unique("copy");
    Vol c(virStorageVolCreateXMLFrom(vms_->get(), vol_xml(copy, 0).c_str(), v.get(), 0));
    EXPECT_FALSE(c);
    if (c)
        track("rbd2", copy);
    const LastError e = last_error();
    EXPECT_EQ(e.code, VIR_ERR_AUTH_FAILED) << e.message;
    EXPECT_NE(e.message.find(key.uuid()), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(name), std::string::npos) << e.message;
    expect_nothing_created(copy);
}

// Everything above ran through this daemon with storage logging at debug: no passphrase of
// the tests' secrets is in its log. (Suite-wide: gtest runs the tests of a suite in order.)
TEST_F(Encryption, NoPassphraseReachesTheDaemonsLog)
{
    const std::string name = track("rbd2", unique("enc"));
    Vol v = create(name, 4 * MiB, key2_.uuid());
    ASSERT_TRUE(v) << last_error().message;
    ASSERT_EQ(upload(v.get(), "some bytes", 0), 0) << last_error().message;
    const std::string log = testfiles::read_file(env("LIBVIRTD_LOG"));
    ASSERT_NE(log.find("formatted RBD image 'rbd2/" + name + "'"), std::string::npos) << "not the daemon's log?";
    for (const char *p : {"first passphrase", "second, other passphrase", "the source's passphrase", "not the passphrase"})
        EXPECT_EQ(log.find(p), std::string::npos) << "'" << p << "' is in " << env("LIBVIRTD_LOG");
}

} // namespace
