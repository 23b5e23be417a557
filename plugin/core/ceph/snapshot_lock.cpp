#include "ceph/snapshot_lock.hpp"

#include <chrono>
#include <thread>

#include "base/log.hpp"
#include "base/text.hpp"
#include "ceph/image_open.hpp"
#include "ceph/names.hpp"

namespace rbdclone {

namespace {

constexpr int kLockSeconds = 60;

} // namespace

SnapshotLock::SnapshotLock(SnapshotLock &&o) noexcept
    : io_(std::exchange(o.io_, nullptr)), oid_(std::move(o.oid_)), cookie_(std::move(o.cookie_))
{
}

SnapshotLock &SnapshotLock::operator=(SnapshotLock &&o) noexcept
{
    if (this != &o) {
        if (io_)
            (void)rados_unlock(io_, oid_.c_str(), kSnapshotLock, cookie_.c_str());
        io_ = std::exchange(o.io_, nullptr);
        oid_ = std::move(o.oid_);
        cookie_ = std::move(o.cookie_);
    }
    return *this;
}

SnapshotLock::~SnapshotLock()
{
    if (io_)
        (void)rados_unlock(io_, oid_.c_str(), kSnapshotLock, cookie_.c_str());
}

Result<SnapshotLock> SnapshotLock::take(rados_ioctx_t io, const std::string &image_id, Kind kind)
{
    SnapshotLock l;
    l.oid_ = snapshot_lock_object(image_id);
    l.cookie_ = random_hex16();
    timeval duration{kLockSeconds, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kLockSeconds);
    for (;;) {
        int r = kind == Kind::Clone
                    ? rados_lock_shared(io, l.oid_.c_str(), kSnapshotLock, l.cookie_.c_str(), kSnapshotLockCloneTag,
                                        "rbdclone clone from a snapshot", &duration, 0)
                    : rados_lock_exclusive(io, l.oid_.c_str(), kSnapshotLock, l.cookie_.c_str(),
                                           "rbdclone removal of an unused snapshot", &duration, 0);
        if (r == 0) {
            l.io_ = io;
            return l;
        }
        if (r != -EBUSY && r != -EEXIST)
            return ceph_error(r, "failed to lock the snapshots of image id " + image_id);
        if (kind == Kind::Remove)
            return l; // a clone is under way: not held
        if (std::chrono::steady_clock::now() > deadline)
            return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                               cat("waited ", kLockSeconds, " s for a removal of a snapshot of image id ", image_id));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

SnapshotLock lock_before_open(rados_ioctx_t io, const std::string &name, std::string &id)
{
    id.clear();
    if (image_id_of(io, name, id) != 0) {
        id.clear();
        return {};
    }
    auto lock = SnapshotLock::take(io, id, SnapshotLock::Kind::Clone);
    return lock ? std::move(*lock) : SnapshotLock();
}

} // namespace rbdclone
