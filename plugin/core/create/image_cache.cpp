#include "create/image_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/log.hpp"
#include "base/parallel.hpp"
#include "base/text.hpp"
#include "ceph/image_children.hpp"
#include "ceph/image_open.hpp"
#include "ceph/snapshot_lock.hpp"
#include "ceph/snapshots.hpp"
#include "create/clone.hpp"
#include "lifecycle/image_cache_admin.hpp"
#include "ceph/image_ops.hpp"

namespace rbdclone {

namespace {

// A fill's lock lasts this long and is renewed every third of it while the
// fill runs, so a daemon that dies holding it lets go within that time;
// others wait for the entry at most kFillWaitSeconds.
constexpr int kFillLockSeconds = 60;
constexpr int kFillWaitSeconds = 1800;

uint64_t fnv1a(const std::string &s, uint64_t basis)
{
    uint64_t h = basis;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

// The RADOS object whose lock serialises the fill of an entry, and whose
// xattr records its last use (cheaper than opening the image).
std::string lock_object(const std::string &entry) { return cache_lock_object(entry); }

void touch(rados_ioctx_t io, const std::string &entry)
{
    const std::string now = std::to_string(static_cast<long long>(time(nullptr)));
    (void)rados_setxattr(io, lock_object(entry).c_str(), kCacheLastUsedXattr, now.data(), now.size());
}

// The lock on an entry's lock object that makes one fill across daemons.
// Held, it is renewed in the background until this object goes away (then
// released), so it outlives a long conversion but not a dead daemon.
class FillLock {
  public:
    FillLock(rados_ioctx_t io, std::string obj) : io_(io), obj_(std::move(obj)), cookie_(random_hex16()) {}
    FillLock(const FillLock &) = delete;
    FillLock &operator=(const FillLock &) = delete;
    ~FillLock() { release(); }

    // 0 (held, and renewed from now on), -EBUSY/-EEXIST (someone else's),
    // or another error.
    int try_lock()
    {
        int r = lock(0);
        if (r == 0) {
            try {
                renewer_ = std::thread([this] { renew_until_released(); });
            } catch (...) {
                (void)rados_unlock(io_, obj_.c_str(), kCacheFillLock, cookie_.c_str());
                throw;
            }
            held_ = true;
        }
        return r;
    }
    void release()
    {
        if (!held_)
            return;
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (renewer_.joinable())
            renewer_.join();
        (void)rados_unlock(io_, obj_.c_str(), kCacheFillLock, cookie_.c_str());
        held_ = false;
    }

  private:
    int lock(uint8_t flags)
    {
        timeval duration{kFillLockSeconds, 0};
        return rados_lock_exclusive(io_, obj_.c_str(), kCacheFillLock, cookie_.c_str(), "rbdclone image cache fill",
                                    &duration, flags);
    }
    void renew_until_released() noexcept
    {
        std::unique_lock lk(mu_);
        while (!cv_.wait_for(lk, std::chrono::seconds(kFillLockSeconds / 3), [this] { return stop_; })) {
            lk.unlock();
            int r = lock(LIBRADOS_LOCK_FLAG_RENEW);
            lk.lock();
            if (r < 0)
                log_warn("could not renew the image cache fill lock ", obj_, ": ", describe_rc(r));
        }
    }

    rados_ioctx_t io_;
    std::string obj_, cookie_;
    bool held_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread renewer_;
};

// An entry opened at its head, and the size of its snapshot.
struct OpenEntry {
    SnapshotLock clone_lock; // held when opened for a clone and it could be taken
    ImageHandle img;
    uint64_t size = 0;
};

// Ready: the entry exists, with its protected snapshot.  Both are made
// while the entry is still the hidden partial image, before a rename gives
// it its name, so one open sees either no entry or a sealed one.  (Opening
// at the snapshot first and then without it, as this once did, took an
// entry renamed between the two opens for one that lost its snapshot.)
// A name whose identity differs (a hash collision) is an error.
// open_entry opens it (nullopt: there is none yet) and checks that.  For a
// clone, its clone lock is taken before the open (lock_before_open), so
// that this one handle serves the clone: an entry's head equals its
// snapshot (sealed before it is visible).
Result<std::optional<OpenEntry>> open_entry(Pool &dst, const std::string &entry, const CacheIdentity &id,
                                            bool for_clone)
{
    OpenEntry e;
    std::string entry_id;
    if (for_clone)
        e.clone_lock = lock_before_open(dst.io(), entry, entry_id);
    int r = entry_id.empty() ? open_image_by_name(dst.io(), entry, nullptr, true, e.img)
                             : open_image_by_id(dst.io(), entry_id, nullptr, true, e.img);
    if (r == -ENOENT)
        return std::optional<OpenEntry>();
    if (r < 0)
        return ceph_error(r, "failed to open the image cache entry " + dst.image_label(entry));
    auto snaps = list_snapshots(e.img.get());
    if (!snaps)
        return ceph_error(snaps.error().rc,
                          "failed to list the snapshots of the image cache entry " + dst.image_label(entry));
    auto snap = std::find_if(snaps->begin(), snaps->end(), [](const auto &s) { return s.name == kCacheSnapshot; });
    if (snap == snaps->end())
        return plain_error(RBDC_ERR_OPERATION_INVALID, -EEXIST,
                           "image cache entry " + dst.image_label(entry) + " for " + id.description +
                               " has lost its snapshot '" + kCacheSnapshot +
                               "' (an interrupted eviction?); remove it with 'rbdclone-cache purge'");
    e.size = snap->size;
    if (image_metadata(e.img.get(), kCacheMetaIdentity) != id.key)
        return plain_error(RBDC_ERR_INTERNAL, -EEXIST,
                           "image cache entry " + dst.image_label(entry) + " holds another source than " +
                               id.description + " (hash collision)");
    return std::optional<OpenEntry>(std::move(e));
}

Result<bool> entry_ready(Pool &dst, const std::string &entry, const CacheIdentity &id)
{
    auto e = open_entry(dst, entry, id, false);
    if (!e)
        return e.error();
    return e->has_value();
}

} // namespace


CacheIdentity file_cache_identity(const std::string &path, const std::string &format)
{
    CacheIdentity id;
    struct stat st;
    if (stat(path.c_str(), &st) < 0) {
        id.why_not = "cannot stat '" + path + "'";
        return id;
    }
    if (!S_ISREG(st.st_mode)) {
        id.why_not = "'" + path + "' is not a regular file (a device's contents change without a trace)";
        return id;
    }
    id.key = cat("file dev=", st.st_dev, " ino=", st.st_ino, " size=", st.st_size, " mtime=", st.st_mtim.tv_sec, ".",
                 st.st_mtim.tv_nsec, " ctime=", st.st_ctim.tv_sec, ".", st.st_ctim.tv_nsec, " format=", format);
    id.description = cat("'", path, "' (", format, ", ", st.st_size, " bytes, modified ", st.st_mtim.tv_sec, ".",
                         st.st_mtim.tv_nsec, ")");
    return id;
}

CacheIdentity rbd_cache_identity(rbd_image_t src, const RbdLocation &where, const std::string &format)
{
    CacheIdentity id;
    if (where.snap.empty()) {
        id.why_not = "an RBD image's head can change under the same name: name a snapshot (as Glance locations "
                     "do) to cache it";
        return id;
    }
    char image_id[64] = {0};
    uint64_t snap_id = 0;
    if (rbd_get_id(src, image_id, sizeof(image_id)) < 0 || rbd_snap_get_id(src, where.snap.c_str(), &snap_id) < 0) {
        id.why_not = "cannot read the ids of the source image";
        return id;
    }
    // The key of entries made before namespaces were known stays what it was.
    id.key = cat("rbd fsid=", where.fsid, " pool=", where.pool, where.ns.empty() ? "" : " ns=" + where.ns,
                 " image_id=", image_id, " snap_id=", snap_id, " format=", format);
    id.description = cat(where.label_at(), " of cluster ", where.fsid, " (", format, ")");
    return id;
}

std::string cache_entry_name(const std::string &key)
{
    return kCachePrefix + hex16(fnv1a(key, 0xcbf29ce484222325ull)) + hex16(fnv1a(key, 0x84222325cbf29ce4ull));
}

namespace {

// Takes the fill lock of `entry`.  Waiting is retrying the lock: no image
// is opened while another request fills the entry.
Status lock_for_fill(FillLock &lock, const std::string &entry_label, const CacheIdentity &id)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kFillWaitSeconds);
    bool waited = false;
    for (;;) {
        int r = lock.try_lock();
        if (r == 0)
            return {};
        if (r != -EBUSY && r != -EEXIST)
            return ceph_error(r, "failed to lock the image cache entry " + entry_label);
        if (!waited)
            log_info("waiting for another request filling the image cache entry ", entry_label, " from ",
                     id.description);
        waited = true;
        if (std::chrono::steady_clock::now() > deadline)
            return plain_error(RBDC_ERR_TIMEOUT, -ETIMEDOUT,
                               cat("waited ", kFillWaitSeconds, " s for the image cache entry ", entry_label,
                                   " that another request fills from ", id.description));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

// Stamps the complete hidden entry with its identity and checksum and
// gives it its protected snapshot, before it is renamed into view: once
// visible, an entry's header never changes again.
Status seal_entry(Pool &dst, const std::string &partial, const CopyStats &stats, const CacheIdentity &id,
                  const std::string &entry_label)
{
    ImageHandle img;
    int r = open_image_by_name(dst.io(), partial, nullptr, false, img);
    if (r < 0)
        return ceph_error(r, "failed to open " + dst.image_label(partial));
    const std::string created = std::to_string(static_cast<long long>(time(nullptr)));
    const std::pair<const char *, std::string> meta[] = {
        {kCacheMetaIdentity, id.key},
        {kCacheMetaSource, id.description},
        {kCacheMetaChecksum, hex16(stats.checksum)},
        {kCacheMetaChecksumOf, stats.checksum_of_stored ? "the source's bytes as stored" : "the guest-visible bytes"},
        {kCacheMetaCreated, created}};
    for (const auto &[k, v] : meta)
        if ((r = rbd_metadata_set(img.get(), k, v.c_str())) < 0)
            return ceph_error(r, "failed to stamp the image cache entry " + entry_label);
    if ((r = rbd_snap_create(img.get(), kCacheSnapshot)) < 0)
        return ceph_error(r, "failed to snapshot the image cache entry " + entry_label);
    // Protected now (clone format 1 needs it, 2 does not mind).
    if ((r = rbd_snap_protect(img.get(), kCacheSnapshot)) < 0)
        return ceph_error(r, "failed to protect the snapshot of the image cache entry " + entry_label);
    return {};
}

// Under the fill lock: whoever holds it checks once whether the entry is
// there now (a hit), else fills it.
Status fill_or_find(Pool &dst, const CacheIdentity &id, const EntryFiller &fill, CacheOutcome &out)
{
    const std::string entry_label = dst.image_label(out.entry);
    FillLock lock(dst.io(), lock_object(out.entry));
    if (auto st = lock_for_fill(lock, entry_label, id); !st)
        return st;
    auto ready = entry_ready(dst, out.entry, id);
    if (!ready || *ready) {
        lock.release();
        if (!ready)
            return ready.error();
        out.hit = true;
        return {};
    }
    auto filled = fill(out.entry, [&](const std::string &partial, const CopyStats &stats) {
        return seal_entry(dst, partial, stats, id, entry_label);
    });
    lock.release();
    if (!filled)
        return filled.error();
    log_info("image cache: stored ", id.description, " as ", entry_label, " (checksum ", hex16(filled->checksum),
             ")");
    return {};
}

} // namespace

Result<CacheOutcome> clone_through_cache(const std::shared_ptr<Pool> &dst_pool, const std::string &dst_name,
                                         uint64_t capacity, const CacheIdentity &id, const EntryFiller &fill)
{
    Pool &dst = *dst_pool;
    CacheOutcome out;
    out.entry = cache_entry_name(id.key);
    const std::string entry_label = dst.image_label(out.entry);
    // A hit opens the entry once, under its clone lock, and clones from
    // that handle; a miss fills it first and then opens it so.
    auto entry = open_entry(dst, out.entry, id, true);
    if (!entry)
        return entry.error();
    out.hit = entry->has_value();
    if (!out.hit && !fill)
        return plain_error(RBDC_ERR_NO_VOLUME, -ENOENT, id.description + " is not in the image cache");
    if (!out.hit) {
        if (auto st = fill_or_find(dst, id, fill, out); !st)
            return st.error();
        entry = open_entry(dst, out.entry, id, true);
        if (!entry)
            return entry.error();
        if (!entry->has_value())
            return plain_error(RBDC_ERR_NO_VOLUME, -ENOENT,
                               "the image cache entry " + entry_label + " was removed before it could be cloned");
    }
    OpenEntry &e = **entry;
    out.size = e.size;
    auto c = clone_image(place_at_snapshot(dst_pool, out.entry, kCacheSnapshot), e.img.get(), e.size, dst, dst_name,
                         capacity, e.clone_lock.held());
    entry->reset(); // closed, and its lock released, before any eviction
    if (!c)
        return c.error();
    touch(dst.io(), out.entry);
    if (!out.hit)
        evict_cache(dst); // the new entry has a clone now: never evicted itself
    return out;
}

} // namespace rbdclone
