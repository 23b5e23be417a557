#include "create/clone.hpp"

#include <chrono>
#include <cstring>
#include <map>

#include "base/json_doc.hpp"
#include "base/log.hpp"
#include "base/text.hpp"
#include "ceph/image_open.hpp"
#include "ceph/snapshot_lock.hpp"
#include "ceph/snapshots.hpp"
#include "ceph/image_ops.hpp"

namespace rbdclone {

Result<uint64_t> parse_rbd_features(const std::string &text)
{
    if (text.empty())
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, "empty rbd_default_features");
    if (text.find_first_not_of("0123456789") == std::string::npos)
        return static_cast<uint64_t>(std::stoull(text));
    static const std::map<std::string, uint64_t> names = {
        {"layering", RBD_FEATURE_LAYERING},
        {"striping", RBD_FEATURE_STRIPINGV2},
        {"exclusive-lock", RBD_FEATURE_EXCLUSIVE_LOCK},
        {"object-map", RBD_FEATURE_OBJECT_MAP},
        {"fast-diff", RBD_FEATURE_FAST_DIFF},
        {"deep-flatten", RBD_FEATURE_DEEP_FLATTEN},
        {"journaling", RBD_FEATURE_JOURNALING},
        {"data-pool", RBD_FEATURE_DATA_POOL},
    };
    uint64_t f = 0;
    for (const auto &word : split(text, ", ")) {
        if (word.empty())
            continue;
        auto it = names.find(word);
        if (it == names.end())
            return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                               "unknown RBD feature '" + word + "' in rbd_default_features");
        f |= it->second;
    }
    return f;
}

int clone_format_for_release(const std::string &release)
{
    static const char *const before_mimic[] = {"argonaut", "bobtail", "cuttlefish", "dumpling",
                                               "emperor", "firefly", "giant", "hammer",
                                               "infernalis", "jewel", "kraken", "luminous"};
    for (const char *r : before_mimic)
        if (release == r)
            return 1;
    return release.empty() ? 1 : 2;
}

std::string min_compat_client_from_osd_dump(const std::string &json)
{
    auto doc = JsonDoc::parse(json, "the monitors' osd dump");
    if (!doc)
        return "";
    auto release = doc->top_string_if_present("require_min_compat_client");
    return release && *release ? **release : "";
}

static std::string conf_get(rados_t c, const char *name)
{
    char buf[256] = {0};
    if (rados_conf_get(c, name, buf, sizeof(buf) - 1) < 0)
        return {};
    return buf;
}

static Result<std::string> min_compat_client(Pool &dst)
{
    // require_min_compat_client only ever rises, and rarely: ask the
    // monitors at most every 10 s per connection.
    std::string release;
    if (!dst.cluster().memo_get("require_min_compat_client", release, 10000)) {
        auto dump = dst.cluster().mon_command(R"({"prefix": "osd dump", "format": "json"})");
        if (!dump)
            return dump.error();
        release = min_compat_client_from_osd_dump(dump.value());
        dst.cluster().memo_put("require_min_compat_client", release);
    }
    return release;
}

// The pool's policy first, then rbd_default_clone_format, then what the
// cluster's clients can all read.
static Result<int> choose_clone_format(Pool &dst)
{
    if (dst.policy().clone_format == CloneFormat::V1)
        return 1;
    if (dst.policy().clone_format == CloneFormat::V2) {
        auto release = min_compat_client(dst);
        if (!release)
            return release.error();
        if (clone_format_for_release(*release) != 2)
            return plain_error(RBDC_ERR_UNSUPPORTED, -EOPNOTSUPP,
                               cat("storage pool '", dst.id().name, "' asks for clone format 2, but cluster ",
                                   dst.cluster().fsid(), " still admits clients older than mimic "
                                   "(require_min_compat_client is '", release->empty() ? "unset" : *release,
                                   "'); run 'ceph osd set-require-min-compat-client mimic' or use format='auto'"));
        return 2;
    }
    std::string configured = conf_get(dst.cluster().get(), "rbd_default_clone_format");
    if (configured == "1" || configured == "2")
        return configured == "1" ? 1 : 2;
    auto release = min_compat_client(dst);
    if (!release)
        return release.error();
    return clone_format_for_release(*release);
}

static Status ensure_protected(rbd_image_t img, const std::string &label, const std::string &snap)
{
    int prot = 0;
    int r = rbd_snap_is_protected(img, snap.c_str(), &prot);
    if (r < 0)
        return ceph_error(r, "failed to check whether snapshot " + label + "@" + snap + " is protected");
    if (prot)
        return {};
    r = rbd_snap_protect(img, snap.c_str());
    if (r == -EBUSY) // expected race: another request protected it first
        return {};
    if (r < 0)
        return ceph_error(r, "failed to protect snapshot " + label + "@" + snap);
    return {};
}

// A read-write handle on the source, opened on first use (creating or
// protecting a snapshot); reading needs none.
class WritableSource {
  public:
    explicit WritableSource(const RbdPlace &src) : src_(src) {}
    Result<rbd_image_t> get()
    {
        if (!img_) {
            int r = open_image_by_name(src_.io, src_.where.image, nullptr, false, img_);
            if (r < 0)
                return ceph_error(r, "failed to open " + src_.label() + " for writing");
        }
        return img_.get();
    }
    void reset() { img_.reset(); }

  private:
    const RbdPlace &src_;
    ImageHandle img_;
};

// Picks (or creates) the parent snapshot from the read-only view of the head.
static Result<SnapshotChoice> parent_snapshot(const RbdPlace &src, rbd_image_t img, WritableSource &rw,
                                              uint64_t size, bool &created)
{
    const std::string label = src.label();
    auto snaps = list_snapshots(img);
    if (!snaps)
        return ceph_error(snaps.error().rc, "failed to list the snapshots of " + label);
    bool unchanged = false;
    if (auto newest = newest_snapshot(snaps.value());
        newest && is_our_snapshot(newest->name) && newest->size == size) {
        auto u = head_unchanged_since(img, newest->name, size);
        if (!u)
            return plain_error(u.error().kind, u.error().rc, label + ": " + u.error().message);
        unchanged = u.value();
    }
    SnapshotChoice choice = choose_clone_snapshot(snaps.value(), size, unchanged);
    if (choice.reuse)
        return choice;
    auto w = rw.get();
    if (!w)
        return w.error();
    int r = rbd_snap_create(*w, choice.name.c_str());
    if (r == -EEXIST) {
        // Expected race: a concurrent request (maybe another libvirtd) made
        // the snapshot of this name first.  Share it only if the head still
        // equals it (the image may have been written since); a fresh
        // handle knows it (for checking and protecting it).
        rw.reset();
        auto fresh = rw.get();
        if (!fresh)
            return fresh.error();
        auto same = head_unchanged_since(*fresh, choice.name, size);
        if (!same)
            return plain_error(same.error().kind, same.error().rc, label + ": " + same.error().message);
        if (!same.value())
            return plain_error(RBDC_ERR_OPERATION_INVALID, -EAGAIN,
                               label + " was written while it was being cloned (snapshot '" + choice.name +
                                   "' no longer matches it); retry the request");
        log_debug("snapshot ", label, "@", choice.name, " was created concurrently; sharing it");
        return choice;
    }
    if (r < 0)
        return ceph_error(r, "failed to create snapshot " + label + "@" + choice.name);
    created = true;
    return choice;
}

namespace {

// From choosing the snapshot until the clone exists, no one removes it. The handle the caller
// opened may predate a removal that ended just before the lock was ours: the snapshots are
// read from a fresh one (src_img then points at it), which must hold the snapshot asked for.
Status lock_snapshots(const RbdPlace &src, rbd_image_t &src_img, SnapshotLock &in_use, ImageHandle &fresh)
{
    const std::string src_label = src.label();
    char id[64] = {0};
    if (rbd_get_id(src_img, id, sizeof(id)) != 0)
        return {};
    auto l = SnapshotLock::take(src.io, id, SnapshotLock::Kind::Clone);
    if (!l)
        return l.error();
    in_use = std::move(*l);
    int r = open_image_by_id(src.io, id, nullptr, true, fresh);
    if (r < 0)
        return ceph_error(r, "failed to open " + src_label);
    src_img = fresh.get();
    uint64_t snap_id = 0;
    if (!src.where.snap.empty() && (r = rbd_snap_get_id(src_img, src.where.snap.c_str(), &snap_id)) < 0)
        return r == -ENOENT ? plain_error(RBDC_ERR_NO_VOLUME, r,
                                          "snapshot '" + src.where.snap + "' of " + src_label + " does not exist")
                            : ceph_error(r, "failed to find snapshot '" + src.where.snap + "' of " + src_label);
    return {};
}

// The snapshot the clone is made from (the one known equal to the head, the one given, or
// one of ours chosen or made), protected when the clone format needs it. How it was come by
// ("reused", "created", "shared", "given") in HOW.
Status clone_snapshot(const RbdPlace &src, rbd_image_t src_img, uint64_t size, const KnownSnapshot *known,
                      CloneOutcome &out, std::string &how)
{
    WritableSource rw(src);
    if (known) {
        out.snapshot = known->name;
        how = "reused";
    } else if (src.where.snap.empty()) {
        auto choice = parent_snapshot(src, src_img, rw, size, out.snapshot_created);
        if (!choice)
            return choice.error();
        out.snapshot = choice->name;
        how = choice->reuse ? "reused" : out.snapshot_created ? "created" : "shared";
    } else {
        out.snapshot = src.where.snap;
        how = "given";
    }
    int prot = 0;
    const bool is_protected = known ? known->is_protected
                                    : rbd_snap_is_protected(src_img, out.snapshot.c_str(), &prot) == 0 && prot;
    if (out.clone_format == 1 && !is_protected) {
        auto w = rw.get();
        if (!w)
            return w.error();
        if (auto st = ensure_protected(*w, src.label(), out.snapshot); !st)
            return st.error();
    }
    return {};
}

// rbd_clone3 of src@snapshot into dst_pool/dst_name, with the cluster's default features and
// layering, in the clone format chosen.
Status create_clone(const RbdPlace &src, const CloneOutcome &out, Pool &dst_pool, const std::string &dst_name)
{
    const std::string dst_label = dst_pool.image_label(dst_name);
    auto features = parse_rbd_features(conf_get(dst_pool.cluster().get(), "rbd_default_features"));
    if (!features)
        return features.error();
    ImageOptions opts;
    rbd_image_options_set_uint64(opts.get(), RBD_IMAGE_OPTION_FEATURES, features.value() | RBD_FEATURE_LAYERING);
    rbd_image_options_set_uint64(opts.get(), RBD_IMAGE_OPTION_CLONE_FORMAT,
                                 static_cast<uint64_t>(out.clone_format));
    int r = rbd_clone3(src.io, src.where.image.c_str(), out.snapshot.c_str(), dst_pool.io(), dst_name.c_str(), opts.get());
    if (r == -EEXIST)
        return plain_error(RBDC_ERR_EXISTS, r, dst_label + " already exists");
    if (r < 0)
        return ceph_error(r, cat("failed to clone ", src.label(), "@", out.snapshot, " to ", dst_label));
    return {};
}

} // namespace

Result<CloneOutcome> clone_image(const RbdPlace &src, rbd_image_t src_img, uint64_t size, Pool &dst_pool,
                                 const std::string &dst_name, uint64_t capacity, bool under_lock,
                                 const KnownSnapshot *known)
{
    const auto t0 = std::chrono::steady_clock::now();
    const std::string dst_label = dst_pool.image_label(dst_name);
    if (capacity && capacity < size)
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           cat("cannot create ", dst_label, " of ", capacity, " bytes from ", src.label(),
                               " of ", size, " bytes: a clone cannot be smaller than its source"));
    CloneOutcome out;
    // Before any snapshot is made: a format the cluster refuses leaves nothing.
    auto fmt = choose_clone_format(dst_pool);
    if (!fmt)
        return fmt.error();
    out.clone_format = fmt.value();
    SnapshotLock in_use;
    ImageHandle fresh;
    if (!under_lock)
        if (auto st = lock_snapshots(src, src_img, in_use, fresh); !st)
            return st.error();
    std::string how;
    if (auto st = clone_snapshot(src, src_img, size, known, out, how); !st)
        return st.error();
    if (auto st = create_clone(src, out, dst_pool, dst_name); !st)
        return st.error();
    // GROW: a capacity above the source's; undo: the clone removed.
    if (capacity > size)
        if (auto st = resize_volume(dst_pool, dst_name, capacity, false); !st) {
            (void)rbd_remove(dst_pool.io(), dst_name.c_str());
            return st.error();
        }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0).count();
    log_info("cloned ", src.label(), "@", out.snapshot, " to ", dst_label, " (clone format ",
             out.clone_format, ", snapshot ", how, ", ", ms, " ms)");
    return out;
}

} // namespace rbdclone
