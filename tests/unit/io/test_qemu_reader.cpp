// Reading containers through qemu-nbd and libnbd, without Ceph: the path the
// copy engine takes when qemu-img has no rbd driver (and for an image cache
// entry filled from a container in RBD).  Needs qemu-utils (qemu-img,
// qemu-nbd), as the module does.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "base/subprocess.hpp"
#include "io/qemu_reader.hpp"
#include "test_files.hpp"

using namespace rbdclone;

namespace {

using testfiles::read_file;

class QemuReader : public ::testing::Test {
  protected:
    void SetUp() override
    {
        auto d = WorkDir::create("unittest-qemu");
        ASSERT_TRUE(d.ok());
        dir_ = std::make_unique<WorkDir>(std::move(*d));
        // 12 MiB: data, a hole, data.
        std::string raw(12 << 20, '\0');
        std::mt19937 gen(7);
        for (size_t i = 0; i < (3u << 20); i++)
            raw[i] = static_cast<char>(gen());
        for (size_t i = 9u << 20; i < raw.size(); i++)
            raw[i] = static_cast<char>(gen());
        raw_ = raw;
        std::ofstream(dir_->file("base.raw"), std::ios::binary) << raw;
    }
    int sh(const std::string &cmd) { return system(cmd.c_str()); }
    // The reader of qcow2 file `name` of the test's directory (null, and the test failed, if none).
    std::unique_ptr<ByteSource> qcow2_reader(const std::string &name)
    {
        auto img = QemuImage::file(path(name), "qcow2");
        if (!img) {
            ADD_FAILURE() << img.error().message;
            return nullptr;
        }
        auto src = QemuImage::reader(std::move(*img));
        if (!src) {
            ADD_FAILURE() << src.error().message;
            return nullptr;
        }
        return std::move(*src);
    }
    std::string path(const std::string &n) { return dir_->file(n); }

    std::unique_ptr<WorkDir> dir_;
    std::string raw_;
};

// The pid of the qemu-nbd serving `image` (its command line names it), 0 if none.
pid_t qemu_nbd_serving(const std::string &image)
{
    pid_t found = 0;
    DIR *d = opendir("/proc");
    while (dirent *e = d ? readdir(d) : nullptr) {
        const pid_t pid = atoi(e->d_name);
        if (pid <= 0)
            continue;
        std::string cmd = read_file("/proc/" + std::string(e->d_name) + "/cmdline");
        if (cmd.rfind("qemu-nbd", 0) == 0 && cmd.find(image) != std::string::npos)
            found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

} // namespace

TEST_F(QemuReader, Qcow2IsReadAsItsGuestBytesInParallel)
{
    ASSERT_EQ(sh("qemu-img convert -f raw -O qcow2 -c '" + path("base.raw") + "' '" + path("c.qcow2") + "'"), 0);
    auto img = QemuImage::file(path("c.qcow2"), "qcow2");
    ASSERT_TRUE(img.ok()) << img.error().message;
    auto size = (*img)->virtual_size();
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_EQ(*size, raw_.size());
    auto src = QemuImage::reader(std::move(*img));
    ASSERT_TRUE(src.ok()) << src.error().message;
    ASSERT_EQ((*src)->size(), raw_.size());
    // Four readers at once, as the copy engine does: one connection each.
    std::string got(raw_.size(), '\0');
    std::vector<std::thread> ts;
    std::vector<std::string> errors(4);
    const size_t chunk = 1u << 20;
    for (int t = 0; t < 4; t++)
        ts.emplace_back([&, t] {
            for (size_t off = t * chunk; off < got.size(); off += 4 * chunk)
                if (auto st = (*src)->read_exact(off, got.data() + off, std::min(chunk, got.size() - off)); !st)
                    errors[t] = st.error().message;
        });
    for (auto &t : ts)
        t.join();
    for (auto &e : errors)
        EXPECT_EQ(e, "");
    EXPECT_TRUE(got == raw_);
}

TEST_F(QemuReader, GarbageIsRefusedWithQemusReason)
{
    std::string junk(1 << 20, 'j');
    junk.replace(0, 8, std::string("QFI\xfb\0\0\0\x03", 8));
    std::ofstream(path("junk.qcow2"), std::ios::binary) << junk;
    auto img = QemuImage::file(path("junk.qcow2"), "qcow2");
    ASSERT_FALSE(img.ok());
    EXPECT_NE(img.error().message.find(path("junk.qcow2")), std::string::npos) << img.error().message;
}

TEST_F(QemuReader, TruncatedQcow2FailsTheCheck)
{
    ASSERT_EQ(sh("qemu-img convert -f raw -O qcow2 '" + path("base.raw") + "' '" + path("t.qcow2") + "'"), 0);
    ASSERT_EQ(sh("truncate -s 1M '" + path("t.qcow2") + "'"), 0);
    auto img = QemuImage::file(path("t.qcow2"), "qcow2");
    ASSERT_FALSE(img.ok());
    EXPECT_NE(img.error().message.find("is not a sound qcow2 image"), std::string::npos) << img.error().message;
}

TEST_F(QemuReader, ReadingPastTheEndIsAnError)
{
    ASSERT_EQ(sh("qemu-img convert -f raw -O qcow2 '" + path("base.raw") + "' '" + path("p.qcow2") + "'"), 0);
    auto img = QemuImage::file(path("p.qcow2"), "qcow2");
    ASSERT_TRUE(img.ok()) << img.error().message;
    auto src = QemuImage::reader(std::move(*img));
    ASSERT_TRUE(src.ok()) << src.error().message;
    std::string buf(4096, '\0');
    EXPECT_FALSE((*src)->read_exact(raw_.size(), buf.data(), buf.size()).ok());
    // A request qemu refuses leaves the connections serving.
    EXPECT_TRUE((*src)->read_exact(0, buf.data(), buf.size()).ok());
    EXPECT_EQ(buf, raw_.substr(0, 4096));
}

TEST_F(QemuReader, ABackingFileIsNeverRead)
{
    // An overlay with nothing of its own: through the reader it is all
    // zeros, never the bytes of the file it names ("backing": null).
    ASSERT_EQ(sh("qemu-img create -q -f qcow2 -b '" + path("base.raw") + "' -F raw '" + path("o.qcow2") + "'"), 0);
    auto src = qcow2_reader("o.qcow2");
    ASSERT_TRUE(src);
    ASSERT_EQ(src->size(), raw_.size());
    std::string got(raw_.size(), 'x');
    ASSERT_TRUE(src->read_exact(0, got.data(), got.size()).ok());
    EXPECT_TRUE(got == std::string(raw_.size(), '\0'));
}

TEST_F(QemuReader, AQemuNbdThatDiesIsAnErrorNotAHang)
{
    ASSERT_EQ(sh("qemu-img convert -f raw -O qcow2 '" + path("base.raw") + "' '" + path("k.qcow2") + "'"), 0);
    auto src = qcow2_reader("k.qcow2");
    ASSERT_TRUE(src);
    const pid_t pid = qemu_nbd_serving(path("k.qcow2"));
    ASSERT_GT(pid, 0);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    std::string buf(1 << 20, '\0');
    const auto t0 = std::chrono::steady_clock::now();
    auto st = src->read_exact(0, buf.data(), buf.size());
    ASSERT_FALSE(st.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    EXPECT_NE(st.error().message.find("qemu-nbd"), std::string::npos) << st.error().message;
    // Every connection is dead: the next read fails at once too.
    for (int i = 0; i < 4; i++)
        EXPECT_FALSE(src->read_exact(0, buf.data(), buf.size()).ok());
}
