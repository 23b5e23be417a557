// Work that runs in this process on an image after the call that started it
// returned (an upload's worker, a background flatten), so that other
// operations on the image can wait for it: a finished vol-upload is never
// followed by a read of stale bytes, and a delete does not race a flatten.
#pragma once

#include <memory>
#include <string>

#include "pool.hpp"

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

} // namespace rbdclone
