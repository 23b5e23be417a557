#include "base/subprocess.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <thread>

#include "base/log.hpp"

namespace rbdclone {

namespace {

const char *const kEnv[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
                            nullptr};

Error sys_error(int e, const std::string &what)
{
    return plain_error(RBDC_ERR_SYSTEM, -e, what + ": " + strerror(e));
}

} // namespace

Result<WorkDir> WorkDir::create(const std::string &purpose)
{
    std::string base = "/tmp";
    if (const char *t = getenv("TMPDIR"); t && *t == '/' && strlen(t) < 64)
        base = t;
    std::string tmpl = base + "/rbdclone-" + purpose + "-XXXXXX";
    if (!mkdtemp(tmpl.data()))
        return sys_error(errno, "cannot create a work directory under " + base);
    return WorkDir(tmpl);
}

WorkDir::~WorkDir()
{
    if (path_.empty())
        return;
    if (DIR *d = opendir(path_.c_str())) {
        while (struct dirent *e = readdir(d))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlink(file(e->d_name).c_str());
        closedir(d);
    }
    rmdir(path_.c_str());
}

Status WorkDir::write_file(const std::string &name, const std::string &content) const
{
    int fd = ::open(file(name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return sys_error(errno, "cannot create " + file(name));
    size_t done = 0;
    while (done < content.size()) {
        ssize_t r = ::write(fd, content.data() + done, content.size() - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            ::close(fd);
            return sys_error(e, "cannot write " + file(name));
        }
        done += static_cast<size_t>(r);
    }
    ::close(fd);
    return {};
}

std::string read_small_file(const std::string &path, size_t max)
{
    std::string out;
    FILE *f = fopen(path.c_str(), "re");
    if (!f)
        return out;
    char buf[4096];
    size_t n;
    while (out.size() < max && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        out.append(buf, n);
    fclose(f);
    return out;
}

std::string last_line(const std::string &text)
{
    size_t end = text.find_last_not_of("\n\r ");
    if (end == std::string::npos)
        return "";
    size_t begin = text.rfind('\n', end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return text.substr(begin, end - begin + 1);
}

std::string json_string(const std::string &s)
{
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20) {
            char b[8];
            snprintf(b, sizeof(b), "\\u%04x", c);
            o += b;
        } else {
            o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

static Result<pid_t> spawn_with(const std::vector<std::string> &argv, const std::string &out_path,
                                const std::string &err_path)
{
    std::vector<char *> args;
    for (auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    // libvirtd blocks signals in its worker threads: the child starts clean.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    pid_t pid = -1;
    int r = posix_spawnp(&pid, args[0], &fa, &at, args.data(), const_cast<char *const *>(kEnv));
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (r != 0)
        return sys_error(r, "cannot run " + argv[0]);
    return pid;
}

bool process_exited(pid_t pid, int *status)
{
    int ws = 0;
    pid_t r = waitpid(pid, &ws, WNOHANG);
    if (r == 0)
        return false;
    if (status)
        *status = (r == pid && WIFEXITED(ws)) ? WEXITSTATUS(ws) : -1;
    return true;
}

int reap_process(pid_t pid, int timeout_ms)
{
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
    int status = -1;
    while (!process_exited(pid, &status)) {
        if (clock::now() >= deadline) {
            kill(pid, SIGKILL);
            int ws = 0;
            while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return status;
}

Result<pid_t> spawn_process(const std::vector<std::string> &argv, const WorkDir &dir, const std::string &name)
{
    return spawn_with(argv, "/dev/null", dir.file(name + ".stderr"));
}

Result<ProcessResult> run_process(const std::vector<std::string> &argv, const WorkDir &dir, int timeout_ms)
{
    static std::atomic<unsigned> seq{0};
    const std::string tag = std::to_string(seq++);
    const std::string out = dir.file("run" + tag + ".out"), err = dir.file("run" + tag + ".err");
    auto pid = spawn_with(argv, out, err);
    if (!pid)
        return pid.error();
    ProcessResult res;
    res.exit_status = reap_process(*pid, timeout_ms);
    res.out = read_small_file(out, 1 << 20);
    res.err = read_small_file(err);
    if (res.exit_status == -1 && res.err.empty())
        res.err = argv[0] + " did not finish within " + std::to_string(timeout_ms / 1000) + " s";
    return res;
}

} // namespace rbdclone
