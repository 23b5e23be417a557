#include "requests.hpp"

#include "base/log.hpp"
#include "ceph/location.hpp"
#include "lifecycle/flatten.hpp"
#include "lifecycle/image_activity.hpp"
#include "stream/transfer.hpp"

namespace rbdclone {

namespace {

// A flatten in the background holds an image for as long as copying its
// parent's data takes; a request on the image waits that long at most.
constexpr int kFlattenWaitSeconds = 600;

// Until dismissed, remembers (when it goes, also by an exception) that the
// create of `name` failed.
class FailedCreateGuard {
  public:
    FailedCreateGuard(const Pool &pool, const std::string &name) : pool_(pool), name_(name) {}
    ~FailedCreateGuard()
    {
        if (!done_)
            remember_failed_create(pool_, name_);
    }
    void dismiss() { done_ = true; }

  private:
    const Pool &pool_;
    const std::string &name_;
    bool done_ = false;
};

Result<SourceSpec> source_spec(const SourceRequest &src)
{
    SourceSpec spec;
    spec.is_rbd = src.is_rbd;
    spec.declared_format = src.declared_format;
    if (!src.is_rbd) {
        spec.kind = src.kind;
        spec.path = src.path;
    } else if (src.pool) {
        spec.pool = src.pool;
        spec.image = src.image;
    } else {
        auto loc = parse_rbd_location(src.location);
        if (!loc)
            return loc.error();
        spec.fsid = loc->fsid;
        spec.ceph_pool = loc->pool;
        spec.image = loc->image;
        spec.snap = loc->snap;
    }
    return spec;
}

} // namespace

Status create_from_request(const std::shared_ptr<Pool> &dst, const std::string &name, uint64_t capacity,
                           const SourceRequest &src, bool reflink)
{
    FailedCreateGuard failed(*dst, name);
    auto spec = source_spec(src);
    if (!spec)
        return spec.error();
    if (spec->pool) // a volume still being uploaded is read once complete
        wait_for_uploads(*spec->pool, spec->image);
    auto r = create_volume_from(*dst, name, capacity, *spec, reflink);
    if (!r)
        return r.error();
    failed.dismiss();
    if (r->decision.method == Method::Clone)
        apply_flatten_policy(dst, name);
    return {};
}

Result<bool> delete_request(Pool &pool, const std::string &name, bool delete_snapshots)
{
    if (forget_failed_create(pool, name))
        return false; // libvirt undoing our failed create: nothing of ours is there
    wait_for_uploads(pool, name);
    wait_for_activity(pool, name, Activity::Flatten, kFlattenWaitSeconds);
    return delete_volume(pool, name, delete_snapshots);
}

Status resize_request(Pool &pool, const std::string &name, uint64_t capacity, bool allow_shrink)
{
    wait_for_uploads(pool, name);
    return resize_volume(pool, name, capacity, allow_shrink);
}

Status flatten_request(Pool &pool, const std::string &name)
{
    wait_for_uploads(pool, name);
    wait_for_activity(pool, name, Activity::Flatten, kFlattenWaitSeconds);
    auto s = flatten_volume(pool, name);
    if (!s)
        return s.error();
    if (!s.value())
        log_info(pool.image_label(name), " has no parent: nothing to flatten");
    return {};
}

Status wipe_request(Pool &pool, const std::string &name, WipeMode mode)
{
    wait_for_uploads(pool, name);
    return wipe_volume(pool, name, mode);
}

} // namespace rbdclone
