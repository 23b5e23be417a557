#include "create/source.hpp"

#include "base/log.hpp"
#include "ceph/header_view.hpp"
#include "ceph/image_open.hpp"
#include "source/format_sniff.hpp"
#include "source/image_safety.hpp"

namespace rbdclone {

Result<std::unique_ptr<Source>> Source::open_file(const std::string &path, const std::string &kind,
                                                  const std::string &declared_format)
{
    std::unique_ptr<Source> s(new Source);
    s->label_ = "'" + path + "'";
    s->kind_ = kind;
    s->path_ = path;
    s->declared_ = declared_format;
    auto file = open_file_source(path);
    if (!file)
        return file.error();
    s->size_ = (*file)->size();
    s->bytes_ = std::move(*file);
    if (auto st = s->sniff(); !st)
        return st.error();
    return s;
}

Result<std::unique_ptr<Source>> Source::open_rbd(const RbdPlace &place, const std::string &declared_format,
                                                 const VolumeKey *key)
{
    std::unique_ptr<Source> s(new Source);
    s->is_rbd_ = true;
    s->place_ = place;
    s->declared_ = declared_format;
    s->label_ = place.where.label_at();
    if (key)
        s->key_ = *key;
    s->clone_lock_ = lock_before_open(place.io, place.where.image, s->image_id_);
    // Read under the lock, so that the snapshot it finds stays for the clone.
    if (s->clone_lock_.held() && place.where.snap.empty() && !key)
        if (auto view = read_header_view(place.io, s->image_id_, kSniffHeadBytes, kSniffTailBytes)) {
            s->size_ = view->size;
            s->layering_ = view->features & RBD_FEATURE_LAYERING;
            s->known_ = KnownSnapshot{view->newest.name, view->newest_protected};
            s->sniff(std::move(view->head), view->tail);
            log_debug(s->label_, " read without opening it: its newest snapshot '", view->newest.name,
                      "' is ours and equal to its head");
            return s;
        }
    const std::string image_label = place.label();
    auto src = open_rbd_source(place.io, place.where.image, place.where.snap, image_label, s->image_id_, key);
    if (!src) {
        if (src.error().rc == -ENOENT && !place.where.snap.empty())
            return plain_error(RBDC_ERR_NO_VOLUME, -ENOENT,
                               "snapshot '" + place.where.pool + "/" + place.where.image + "@" + place.where.snap +
                                   "' does not exist");
        return src.error();
    }
    rbd_image_t img = (*src)->image();
    uint8_t old = 0;
    int r;
    if ((r = rbd_get_old_format(img, &old)) < 0)
        return ceph_error(r, "failed to get the format of " + image_label);
    uint64_t features = 0;
    if (!old && (r = rbd_get_features(img, &features)) < 0)
        return ceph_error(r, "failed to get the features of " + image_label);
    s->format_1_ = old != 0;
    s->layering_ = !old && (features & RBD_FEATURE_LAYERING);
    s->size_ = (*src)->size();
    s->bytes_ = std::move(*src);
    if (auto st = s->sniff(); !st)
        return st.error();
    return s;
}

Result<ByteSource *> Source::bytes()
{
    if (!bytes_) { // an RBD head read by its header view
        auto src = open_rbd_source(place_.io, place_.where.image, place_.where.snap, place_.label(), image_id_,
                                   key_ ? &*key_ : nullptr);
        if (!src)
            return src.error();
        bytes_ = std::move(*src);
    }
    return bytes_.get();
}

Status Source::sniff()
{
    std::string head, tail;
    if (auto st = read_head_tail(*bytes_, kSniffHeadBytes, kSniffTailBytes, head, tail); !st)
        return st;
    sniff(std::move(head), tail);
    return {};
}

void Source::sniff(std::string head, const std::string &tail)
{
    head_ = std::move(head);
    sniffed_ = sniff_format(head_, tail);
    copy_ = rbdclone::copy_format(declared_, sniffed_);
}

void Source::describe(CloneFacts &f) const
{
    f.source_label = label_;
    f.source_is_rbd = is_rbd_;
    f.source_kind = kind_;
    f.declared_format = declared_;
    f.sniffed_format = sniffed_;
    if (is_rbd_) {
        f.source_fsid = place_.where.fsid;
        f.image_format_1 = format_1_;
        f.has_layering = layering_;
        f.snapshot_given = !place_.where.snap.empty();
        f.source_encrypted = key_.has_value();
    }
}

std::string Source::header_problem() const
{
    if (copy_.format.empty() || copy_.format == "raw")
        return "";
    return external_reference(copy_.format, head_);
}

CacheIdentity Source::cache_identity() const
{
    if (is_rbd_)
        return rbd_cache_identity(image(), place_.where, copy_.format);
    return file_cache_identity(path_, copy_.format);
}

rbd_image_t Source::image() const
{
    return is_rbd_ && bytes_ ? static_cast<RbdSource &>(*bytes_).image() : nullptr;
}

Result<std::unique_ptr<QemuImage>> Source::container() const
{
    if (is_rbd_)
        return QemuImage::rbd(*place_.params, place_.where.pool, place_.where.image, place_.where.snap, copy_.format,
                              place_.label());
    return QemuImage::file(path_, copy_.format);
}

} // namespace rbdclone
