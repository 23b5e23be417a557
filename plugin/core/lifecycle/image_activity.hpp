// Work that runs in this process on an image after the call that started it
// returned (an upload's worker, a background flatten), so that other
// operations on the image can wait for it: a finished vol-upload is never
// followed by a read of stale bytes, and a delete does not race a flatten.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "ceph/pool.hpp"

namespace rbdclone {

enum class Activity { Upload, Flatten };

// Held for as long as the activity runs.  Keyed by cluster, Ceph pool and
// image, so two libvirt pools on one Ceph pool see each other's work.
class ActivityMark {
  public:
    ActivityMark(const Pool &pool, const std::string &image, Activity what);
    // A mark, unless `what` already runs on the image in this process.
    static std::unique_ptr<ActivityMark> try_begin(const Pool &pool, const std::string &image, Activity what);
    ~ActivityMark();
    ActivityMark(const ActivityMark &) = delete;
    ActivityMark &operator=(const ActivityMark &) = delete;

  private:
    ActivityMark(std::string key, Activity what) : key_(std::move(key)), what_(what) {} // counted already
    std::string key_;
    Activity what_;
};

// Waits, at most `seconds`, until no `what` runs on the image; logs a
// warning and returns false when it is still running.
bool wait_for_activity(const Pool &pool, const std::string &image, Activity what, int seconds);

// An import (image_import.hpp) writing volume `name` through the hidden
// image `partial`, held for as long as it runs: the volume's size and
// progress are read from the partial, and a refresh never takes it for
// one left behind.  Keyed by libvirt pool.
class ImportMark {
  public:
    ImportMark(const Pool &pool, const std::string &name, const std::string &partial);
    ~ImportMark();
    ImportMark(const ImportMark &) = delete;
    ImportMark &operator=(const ImportMark &) = delete;

  private:
    std::pair<std::string, std::string> key_;
};

// The hidden image a running import of `name` in this process writes to.
std::optional<std::string> partial_of(const Pool &pool, const std::string &name);
// Whether a running import of this process writes `partial`.
bool is_running_partial(const Pool &pool, const std::string &partial);

} // namespace rbdclone
