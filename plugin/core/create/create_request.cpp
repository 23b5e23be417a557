#include "create/create_request.hpp"

#include <chrono>
#include <map>
#include <mutex>

#include "base/log.hpp"
#include "ceph/image_ops.hpp"
#include "ceph/rbd_place.hpp"
#include "create/clone.hpp"
#include "create/image_cache.hpp"
#include "create/source_copy.hpp"
#include "lifecycle/flatten.hpp"
#include "stream/transfer.hpp"

namespace rbdclone {

namespace {

std::mutex g_failed_mu;
std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> g_failed;

// A failed create leaves nothing under its name (copies write to a hidden image, clones are
// created last), yet libvirt undoes a failed build by deleting that name. That delete must not
// touch an image someone else owns under the name, nor wait for a cluster that just timed
// out: the failure is remembered for a minute and the delete is answered from it.
void remember_failed_create(const Pool &dst, const std::string &dst_name)
{
    std::lock_guard lk(g_failed_mu);
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(g_failed, [&](const auto &kv) { return now - kv.second > std::chrono::minutes(1); });
    g_failed[{dst.id().uuid, dst_name}] = now;
}

// Until dismissed, remembers (when it goes, also by an exception) that the create failed.
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

bool snapshot_refused(const Error &e) { return e.rc == -EPERM || e.rc == -EACCES; }

} // namespace

bool forget_failed_create(const Pool &dst, const std::string &dst_name)
{
    std::lock_guard lk(g_failed_mu);
    auto it = g_failed.find({dst.id().uuid, dst_name});
    if (it == g_failed.end())
        return false;
    bool fresh = std::chrono::steady_clock::now() - it->second < std::chrono::minutes(1);
    g_failed.erase(it);
    return fresh;
}

CreateRequest::CreateRequest(std::shared_ptr<Pool> dst, std::string name, uint64_t capacity, SourceRequest src,
                             const VolumeKey *key, bool reflink)
    : dst_(std::move(dst)), name_(std::move(name)), capacity_(capacity), req_(std::move(src)), key_(key),
      reflink_(reflink)
{
    dst_label_ = dst_->image_label(name_);
}

Status CreateRequest::run()
{
    FailedCreateGuard failed(*dst_, name_);
    if (auto st = locate(); !st)
        return st;
    if (auto st = inspect(); !st)
        return st;
    for (;;) {
        const Plan p = plan();
        Status done;
        switch (p.step) {
        case Step::Refuse:
            log_decision(method_name(p.method), p.reason);
            return p.refusal;
        case Step::Copy:
            done = copy(p);
            break;
        case Step::ViaCache:
            done = via_cache(p);
            break;
        case Step::Clone:
            if (snapshot_denied_) // a clone from the named snapshot was refused: nothing else to try
                return *snapshot_denied_;
            done = clone(p);
            if (!done && snapshot_refused(done.error())) {
                // The Ceph user may not snapshot the source: a reason to copy, not a failure.
                snapshot_denied_ = done.error();
                continue;
            }
            break;
        }
        if (!done)
            return done;
        failed.dismiss();
        if (p.step != Step::Copy && !key_)
            policy();
        return {};
    }
}

// LOCATE: the source's place. A volume of a pool of this daemon is read through that pool (an
// upload still being written to it is waited for); an rbd:// location through the
// destination's connection or the pool of this daemon that reaches its cluster (rbd_place.hpp).
Status CreateRequest::locate()
{
    if (!req_.is_rbd)
        return {};
    if (req_.pool) {
        wait_for_uploads(*req_.pool, req_.image);
        place_ = place_in_pool(req_.pool, req_.image);
        return {};
    }
    auto loc = parse_rbd_location(req_.location);
    if (!loc)
        return loc.error();
    auto opened = open_place(std::move(*loc), dst_);
    if (!opened)
        return opened.error();
    place_ = std::move(*opened);
    return {};
}

// INSPECT: the source, opened once (not at all when no pool of this daemon reaches its
// cluster: PLAN refuses that).
Status CreateRequest::inspect()
{
    Result<std::unique_ptr<Source>> opened = std::unique_ptr<Source>();
    if (!req_.is_rbd)
        opened = Source::open_file(req_.path, req_.kind, req_.declared_format);
    else if (place_.reachable())
        opened = Source::open_rbd(place_, req_.declared_format, source_key());
    if (!opened)
        return opened.error();
    src_ = std::move(*opened);
    return {};
}

// PLAN: the source's facts, the destination's, the flags: what is done and why.
Plan CreateRequest::plan()
{
    RequestFacts &f = facts_;
    f.dst_label = dst_label_;
    f.reflink = reflink_;
    f.cache_enabled = dst_->policy().cache_enabled;
    f.clone = CloneFacts{};
    cache_id_ = CacheIdentity{};
    if (src_) {
        src_->describe(f.clone);
        f.copy = src_->copy_format();
        f.header_problem = src_->header_problem();
        if (f.cache_enabled && !f.copy.format.empty())
            cache_id_ = src_->cache_identity();
        f.cache = {!cache_id_.key.empty(), cache_id_.why_not};
    } else {
        f.clone.source_is_rbd = true;
        f.clone.source_fsid = place_.where.fsid;
        f.clone.declared_format = req_.declared_format;
        f.clone.snapshot_given = !place_.where.snap.empty();
        f.clone.source_label = place_.where.label_at();
        f.source_reachable = false;
    }
    f.clone.dest_fsid = dst_->cluster().fsid();
    f.clone.may_snapshot = !snapshot_denied_;
    f.clone.encrypt = key_ != nullptr;
    f.clone.layered_encryption = layered_encryption();
    return plan_request(f);
}

// CLONE (and GROW, inside clone_image): from the source's snapshot, or one of ours chosen or
// made; an encrypted volume's under a hidden name, then ENCRYPTED and renamed.
Status CreateRequest::clone(const Plan &plan)
{
    log_decision(method_name(plan.method), plan.reason);
    auto hidden = hide_if_encrypted();
    if (!hidden)
        return hidden.error();
    auto c = clone_into(*hidden ? (*hidden)->partial() : name_);
    if (!c)
        return c.error();
    return encrypt(std::move(*hidden), src_->size());
}

// Retry 2: the snapshot of ours chosen for reuse vanished meanwhile (the deletion of its last
// clone removed it): the source is opened again, once, and a snapshot chosen again.
Result<CloneOutcome> CreateRequest::clone_into(const std::string &target)
{
    auto c = clone_image(place_, src_->image(), src_->size(), *dst_, target, capacity_,
                         src_->opened_under_clone_lock(), src_->known_snapshot());
    if (c || c.error().rc != -ENOENT || !place_.where.snap.empty())
        return c;
    log_info("the snapshot chosen for ", dst_label_, " vanished meanwhile; choosing again");
    auto fresh = Source::open_rbd(place_, req_.declared_format, source_key());
    if (!fresh)
        return fresh.error();
    src_ = std::move(*fresh);
    return clone_image(place_, src_->image(), src_->size(), *dst_, target, capacity_, src_->opened_under_clone_lock(),
                       src_->known_snapshot());
}

// An encrypted volume is made under a hidden name: no one sees it before it has its key.
Result<std::unique_ptr<HiddenImage>> CreateRequest::hide_if_encrypted()
{
    if (!key_)
        return std::unique_ptr<HiddenImage>();
    return HiddenImage::reserve(*dst_, name_);
}

// ENCRYPTED: the hidden clone formatted with the volume's key, sized for its guest, renamed.
// Undo: the hidden clone removed (HiddenImage). Nothing to do for a plain clone.
Status CreateRequest::encrypt(std::unique_ptr<HiddenImage> hidden, uint64_t source_size)
{
    if (!hidden)
        return {};
    {
        auto img = open_image(*dst_, hidden->partial(), false);
        if (!img)
            return img.error();
        auto tail = read_parent_tail(img->get(), source_size, dst_label_); // before the header covers it
        if (!tail)
            return tail.error();
        auto header = format_image(img->get(), *key_, capacity_ ? capacity_ : source_size, dst_label_);
        if (!header)
            return header.error();
        if (auto st = restore_parent_tail(img->get(), *tail, *header, dst_label_); !st)
            return st;
    }
    return hidden->publish();
}

// COPY and SEAL (copy_source, through a hidden image renamed when complete).
Status CreateRequest::copy(const Plan &plan)
{
    src_->release_clone_lock(); // a copy needs no lock: removals of our snapshots go on
    log_decision(method_name(plan.method), plan.reason);
    auto stats = copy_source(*src_, plan.format, *dst_, name_, capacity_, false, nullptr, key_);
    return stats ? Status{} : Status{stats.error()};
}

// CACHE, FILL, CLONE: a hit clones the pool's image cache entry of the source; a miss fills
// it (the one copy, checksummed) and clones it.
Status CreateRequest::via_cache(const Plan &plan)
{
    src_->release_clone_lock();
    EntryFiller fill = nullptr;
    if (plan.fill_cache)
        fill = [&](const std::string &entry, const ImageSealer &seal) {
            log_decision(cat("cache-miss ", method_name(plan.method), "+clone"),
                         plan.reason + "; converted once into the pool's image cache");
            return copy_source(*src_, plan.format, *dst_, entry, 0, true, seal);
        };
    auto hidden = hide_if_encrypted();
    if (!hidden)
        return hidden.error();
    auto out = clone_through_cache(dst_, *hidden ? (*hidden)->partial() : name_, capacity_, cache_id_, fill);
    if (!out) {
        if (!plan.fill_cache && out.error().rc == -ENOENT)
            return reflink_refusal(dst_label_, plan.reason + "; not in the pool's image cache yet");
        return out.error();
    }
    if (out->hit)
        log_decision("cache-hit clone",
                     plan.reason + "; cloned from the pool's image cache entry " + dst_->image_label(out->entry));
    return encrypt(std::move(*hidden), out->size);
}

// POLICY: after a clone, the pool's flatten policy.
void CreateRequest::policy() { apply_flatten_policy(dst_, name_); }

// The one line every request leaves in the log: what is done and why.
void CreateRequest::log_decision(const std::string &what, const std::string &reason) const
{
    log_info("decision for ", dst_label_, " from ", facts_.clone.source_label, ": ", what, " (", reason, ")");
}

} // namespace rbdclone
