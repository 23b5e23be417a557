// Running qemu's tools from inside libvirtd: a private 0700 work directory,
// a clean environment, no shell, output kept in files of that directory, and
// a bounded wait.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/status.hpp"

namespace rbdclone {

// A directory only we can read, removed with everything in it.
class WorkDir {
  public:
    static Result<WorkDir> create(const std::string &purpose);
    WorkDir(WorkDir &&o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
    WorkDir &operator=(WorkDir &&) = delete;
    WorkDir(const WorkDir &) = delete;
    ~WorkDir();
    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const { return path_ + "/" + name; }
    // Writes a file readable by us only.
    Status write_file(const std::string &name, const std::string &content) const;

  private:
    explicit WorkDir(std::string p) : path_(std::move(p)) {}
    std::string path_;
};

struct ProcessResult {
    int exit_status = -1; // exit code, or -1 when killed by a signal
    std::string out;      // stdout
    std::string err;      // stderr
};

// Runs argv[0] (found in PATH) with stdout and stderr captured through
// files in `dir`, killing it after timeout_ms.
Result<ProcessResult> run_process(const std::vector<std::string> &argv, const WorkDir &dir, int timeout_ms);

// Starts argv[0] in the background, stderr to dir/<name>.stderr.
Result<pid_t> spawn_process(const std::vector<std::string> &argv, const WorkDir &dir, const std::string &name);

// Waits up to timeout_ms for pid, then kills it; its exit status.
int reap_process(pid_t pid, int timeout_ms);

// Whether pid has exited (reaping it, exit status in *status).
bool process_exited(pid_t pid, int *status);

std::string read_small_file(const std::string &path, size_t max = 64 * 1024);

// The last non-empty line of a tool's stderr, for messages.
std::string last_line(const std::string &text);

// A JSON string literal for s.
std::string json_string(const std::string &s);

} // namespace rbdclone
