// main() of every test program: GoogleTest, plus two things that keep the
// suite honest (tests/results.py reads them when a program dies):
//  - SIGPIPE is ignored, as virsh does: a connection dropped by a dying
//    libvirtd is a failed call, not a silent death of the test program;
//  - with RBDCLONE_TEST_PROGRESS set, every test's start and end is appended
//    to that file as it happens, so a program that crashes or hangs still
//    leaves what it passed and which test it died in.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace {

class ProgressFile : public ::testing::EmptyTestEventListener {
  public:
    explicit ProgressFile(const char *path) : fd_(open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {}
    ~ProgressFile() override
    {
        if (fd_ >= 0)
            close(fd_);
    }
    bool ok() const { return fd_ >= 0; }

    void OnTestStart(const ::testing::TestInfo &t) override { line("START", t); }
    void OnTestEnd(const ::testing::TestInfo &t) override
    {
        const auto *r = t.result();
        line(r->Skipped() ? "SKIP" : r->Failed() ? "FAIL" : "PASS", t);
    }

  private:
    void line(const char *word, const ::testing::TestInfo &t)
    {
        // One write(2) per line, straight to the kernel: it survives a crash.
        const std::string s = std::string(word) + " " + t.test_suite_name() + "." + t.name() + "\n";
        if (fd_ >= 0)
            (void)!write(fd_, s.data(), s.size());
    }
    int fd_;
};

} // namespace

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    ::testing::InitGoogleTest(&argc, argv);
    if (const char *p = getenv("RBDCLONE_TEST_PROGRESS"); p && *p) {
        auto *progress = new ProgressFile(p);
        if (progress->ok())
            ::testing::UnitTest::GetInstance()->listeners().Append(progress); // owned by GoogleTest
        else
            delete progress;
    }
    return RUN_ALL_TESTS();
}
