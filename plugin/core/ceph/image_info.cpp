#include "ceph/image_info.hpp"

#include <algorithm>
#include <deque>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "base/log.hpp"
#include "ceph/async_read.hpp"
#include "ceph/image_open.hpp"
#include "ceph/names.hpp"
#include "ceph/rbd_wire.hpp"

namespace rbdclone {

static int count_allocated(uint64_t, size_t len, int exists, void *arg)
{
    if (exists)
        *static_cast<uint64_t *>(arg) += len;
    return 0;
}

void apply_record(VolumeInfo &v, const EncryptionRecord &rec)
{
    v.capacity = v.capacity > rec.header_bytes ? v.capacity - rec.header_bytes : 0;
    v.encryption = rec;
}

Result<VolumeInfo> info_of_open(Pool &pool, const std::string &name, rbd_image_t img, AllocMode mode)
{
    rbd_image_info_t info;
    int r = rbd_stat(img, &info, sizeof(info));
    if (r < 0)
        return ceph_error(r, "failed to stat " + pool.image_label(name));
    VolumeInfo v;
    v.capacity = info.size;
    v.allocation = info.obj_size * info.num_objs;
    if (mode == AllocMode::FastDiff) {
        uint64_t features = 0, flags = 0;
        if ((r = rbd_get_features(img, &features)) < 0)
            return ceph_error(r, "failed to get the features of " + pool.image_label(name));
        if ((r = rbd_get_flags(img, &flags)) < 0)
            return ceph_error(r, "failed to get the flags of " + pool.image_label(name));
        if ((features & RBD_FEATURE_FAST_DIFF) && !(flags & RBD_FLAG_FAST_DIFF_INVALID)) {
            uint64_t used = 0;
            r = rbd_diff_iterate2(img, nullptr, 0, info.size, 0, 1, count_allocated, &used);
            if (r < 0)
                return ceph_error(r, "failed to compute the allocation of " + pool.image_label(name));
            v.allocation = used;
        }
    }
    auto rec = read_record(img, pool.image_label(name));
    if (!rec)
        return rec.error();
    if (*rec)
        apply_record(v, **rec);
    return v;
}

Result<std::vector<ListedImage>> image_refs(Pool &pool)
{
    std::vector<rbd_image_spec_t> specs(64);
    size_t n = specs.size();
    int r;
    while ((r = rbd_list2(pool.io(), specs.data(), &n)) == -ERANGE)
        specs.resize(n);
    if (r < 0)
        return ceph_error(r, cat("failed to list the images of Ceph pool '", pool.id().ceph_pool, "'"));
    // librbd 16.2 lists an image being created twice (same name, same id):
    // libvirt refuses a second volume of a name, which fails the refresh and
    // stops the pool.  Each name once.
    std::vector<ListedImage> out;
    out.reserve(n);
    std::unordered_set<std::string_view> seen;
    seen.reserve(n);
    for (size_t i = 0; i < n; i++)
        if (seen.insert(specs[i].name).second)
            out.push_back({specs[i].name, specs[i].id ? specs[i].id : ""});
    seen.clear();
    rbd_image_spec_list_cleanup(specs.data(), n);
    return out;
}

namespace {

// The object map is read in pieces of this many bytes (1 Mi objects each):
// a scan holds at most kScanWidth of them.
constexpr size_t kMapChunk = 256 << 10;

// One image being read: its header, then (fast-diff) its object map, piece
// by piece.  At most one request of it is in flight; destroying it waits for
// that request, which writes into it.
class ImageRead {
  public:
    enum class Phase { Header, Map, Done, AskLibrbd };

    ImageRead(const ListedImage &ref, AllocMode mode) : ref_(ref), mode_(mode) {}
    ImageRead(const ImageRead &) = delete;
    ImageRead &operator=(const ImageRead &) = delete;
    ~ImageRead()
    {
        finish_request();
        drop_record_reply();
    }

    void start(rados_ioctx_t io)
    {
        if (ref_.id.empty()) { // format 1: another header layout
            phase_ = Phase::AskLibrbd;
            return;
        }
        io_ = io;
        static const std::string head = wire::snap_arg(wire::kHeadSnapId);
        begin_request();
        rados_read_op_exec(op_, "rbd", "get_size", head.data(), head.size(), &size_.p, &size_.len, &size_.rv);
        rados_read_op_exec(op_, "rbd", "get_features", head.data(), head.size(), &features_.p, &features_.len,
                           &features_.rv);
        rados_read_op_exec(op_, "rbd", "get_flags", head.data(), head.size(), &flags_.p, &flags_.len, &flags_.rv);
        // Fails (ENOEXEC) without the striping feature: allowed to (the flag is the last op's).
        rados_read_op_exec(op_, "rbd", "get_stripe_unit_count", nullptr, 0, &stripe_.p, &stripe_.len, &stripe_.rv);
        rados_read_op_set_flags(op_, LIBRADOS_OP_FLAG_FAILOK);
        // The encryption record (image metadata live in the header's omap).
        static const std::string record_key = std::string("metadata_") + kEncryptionMetadataKey;
        const char *keys[] = {record_key.c_str()};
        rados_read_op_omap_get_vals_by_keys(op_, keys, 1, &record_iter_, &record_rv_);
        rados_read_op_set_flags(op_, LIBRADOS_OP_FLAG_FAILOK);
        submit(rbd_header_object(ref_.id));
    }

    bool in_flight() const { return completion_ != nullptr; }
    bool ready() const { return completion_ && rados_aio_is_complete(completion_); }
    Phase phase() const { return phase_; }
    int error() const { return error_; } // negative errno of the read, or 0
    const VolumeInfo &result() const { return result_; }
    const ListedImage &ref() const { return ref_; }

    // The request has completed: take its answer, maybe send the next one.
    void advance()
    {
        int rc = finish_request();
        if (phase_ == Phase::Header)
            on_header(rc);
        else if (phase_ == Phase::Map)
            on_map_piece(rc);
    }

  private:
    void begin_request()
    {
        op_ = rados_create_read_op();
        rados_aio_create_completion2(nullptr, nullptr, &completion_);
    }

    void submit(const std::string &oid)
    {
        int r = rados_aio_read_op_operate(op_, io_, completion_, oid.c_str(), 0);
        if (r < 0) { // not sent: nothing will write into us
            rados_aio_release(completion_);
            completion_ = nullptr;
            rados_release_read_op(op_);
            op_ = nullptr;
            fail(r);
        }
    }

    int finish_request()
    {
        if (!completion_)
            return 0;
        rados_aio_wait_for_complete(completion_);
        int rc = rados_aio_get_return_value(completion_);
        rados_aio_release(completion_);
        completion_ = nullptr;
        rados_release_read_op(op_);
        op_ = nullptr;
        return rc;
    }

    // The record the header read brought (none: a plain image), its reply freed.
    std::optional<EncryptionRecord> take_record()
    {
        std::optional<EncryptionRecord> rec;
        if (record_iter_ && record_rv_ >= 0) {
            char *key = nullptr, *val = nullptr;
            size_t len = 0;
            while (rados_omap_get_next(record_iter_, &key, &val, &len) == 0 && key)
                if (val)
                    rec = decode_record(std::string(val, len));
        }
        drop_record_reply();
        return rec;
    }

    void drop_record_reply()
    {
        if (record_iter_)
            rados_omap_get_end(record_iter_);
        record_iter_ = nullptr;
    }

    void fail(int rc)
    {
        error_ = rc;
        phase_ = Phase::Done;
    }

    void on_header(int rc)
    {
        // Decoded, then the replies freed, whatever comes next.
        auto size = wire::decode_size(size_.p, size_.len);
        auto features = wire::decode_u64(features_.p, features_.len);
        auto flags = wire::decode_u64(flags_.p, flags_.len);
        auto stripe = wire::decode_stripe(stripe_.p, stripe_.len);
        const bool answered = size_.rv >= 0 && features_.rv >= 0 && flags_.rv >= 0;
        const bool striped = stripe_.rv >= 0 && stripe;
        size_.reset(), features_.reset(), flags_.reset(), stripe_.reset();
        const auto record = take_record();
        if (rc < 0)
            return fail(rc);
        if (!size || !features || !flags || !answered) {
            phase_ = Phase::AskLibrbd;
            return;
        }
        size_bytes_ = size->size;
        object_size_ = uint64_t{1} << size->order;
        uint64_t unit = object_size_, count = 1;
        if (*features & RBD_FEATURE_STRIPINGV2) {
            if (!striped) {
                phase_ = Phase::AskLibrbd;
                return;
            }
            unit = stripe->unit;
            count = stripe->count;
        }
        objects_ = wire::object_count(size_bytes_, object_size_, unit, count);
        result_ = VolumeInfo{size_bytes_, object_size_ * objects_, std::nullopt};
        if (record)
            apply_record(result_, *record);
        const bool fast_diff = (*features & RBD_FEATURE_FAST_DIFF) && !(*flags & RBD_FLAG_FAST_DIFF_INVALID);
        if (mode_ != AllocMode::FastDiff || !fast_diff || objects_ == 0) {
            phase_ = Phase::Done;
            return;
        }
        if (unit != object_size_ || count != 1) { // objects do not map to ranges of the image
            phase_ = Phase::AskLibrbd;
            return;
        }
        phase_ = Phase::Map;
        map_bytes_ = (objects_ + 3) / 4;
        request_map_piece();
    }

    void request_map_piece()
    {
        const size_t header = map_done_ == 0 ? wire::kObjectMapHeader : 0;
        const size_t want = header + std::min<uint64_t>(kMapChunk, map_bytes_ - map_done_);
        piece_.resize(want);
        piece_len_ = 0;
        piece_rv_ = 0;
        begin_request();
        rados_read_op_read(op_, map_done_ == 0 ? 0 : wire::kObjectMapHeader + map_done_, want, piece_.data(),
                           &piece_len_, &piece_rv_);
        submit(rbd_object_map_object(ref_.id));
    }

    void on_map_piece(int rc)
    {
        if (rc < 0 || piece_rv_ < 0) {
            phase_ = Phase::AskLibrbd; // gone, or unreadable: librbd knows what to say
            return;
        }
        const char *data = piece_.data();
        size_t len = std::min(piece_len_, piece_.size());
        if (map_done_ == 0) {
            auto entries = wire::object_map_entries(data, len);
            if (!entries) {
                phase_ = Phase::AskLibrbd;
                return;
            }
            entries_ = *entries;
            data += wire::kObjectMapHeader;
            len -= wire::kObjectMapHeader;
        }
        if (len == 0) { // the map is shorter than the image: librbd's answer, whatever it is
            phase_ = Phase::AskLibrbd;
            return;
        }
        used_ += wire::allocated_bytes(reinterpret_cast<const unsigned char *>(data), len, map_done_ * 4,
                                       std::min(entries_, objects_), size_bytes_, object_size_);
        map_done_ += len;
        if (map_done_ < map_bytes_ && map_done_ * 4 < entries_)
            return request_map_piece();
        piece_.clear();
        piece_.shrink_to_fit();
        result_.allocation = used_;
        phase_ = Phase::Done;
    }

    ListedImage ref_;
    AllocMode mode_;
    Phase phase_ = Phase::Header;
    VolumeInfo result_;
    int error_ = 0;
    rados_ioctx_t io_ = nullptr;
    rados_read_op_t op_ = nullptr;
    rados_completion_t completion_ = nullptr;
    RadosBuf size_, features_, flags_, stripe_;
    rados_omap_iter_t record_iter_ = nullptr;
    int record_rv_ = 0;
    uint64_t size_bytes_ = 0, object_size_ = 0, objects_ = 0;
    uint64_t entries_ = 0, map_bytes_ = 0, map_done_ = 0, used_ = 0;
    std::vector<char> piece_;
    size_t piece_len_ = 0;
    int piece_rv_ = 0;
};

} // namespace

namespace {

// librbd's answer: the image opened read-only (-ENOENT: it does not exist).
Result<VolumeInfo> info_by_open(Pool &pool, const std::string &name, AllocMode mode)
{
    ImageHandle img;
    int r = open_image_by_name(pool.io(), name, nullptr, true, img);
    if (r == -ENOENT)
        return plain_error(RBDC_ERR_NO_VOLUME, r, pool.image_label(name) + " does not exist");
    if (r < 0)
        return ceph_error(r, "failed to open " + pool.image_label(name));
    return info_of_open(pool, name, img.get(), mode);
}

} // namespace

Result<VolumeInfo> info_by_name(Pool &pool, const std::string &name, AllocMode mode)
{
    // As a refresh reads it (two round trips, nothing opened: opening a
    // clone would open its parent too), else as librbd reports it.
    std::string id;
    if (image_id_of(pool.io(), name, id) == 0) {
        ImageRead read(ListedImage{name, id}, mode);
        read.start(pool.io());
        while (read.in_flight())
            read.advance();
        if (read.phase() == ImageRead::Phase::Done) {
            if (read.error() == 0)
                return read.result();
            if (read.error() != -ENOENT) // gone meanwhile: librbd says so below
                return ceph_error(read.error(), "failed to read the header of " + pool.image_label(name));
        }
    }
    return info_by_open(pool, name, mode);
}

void scan_images(Pool &pool, const std::vector<ListedImage> &images, AllocMode mode,
                 const std::function<bool(size_t, const Result<VolumeInfo> &)> &each)
{
    std::deque<std::unique_ptr<ImageRead>> window; // images[next - window.size()] first
    size_t next = 0;
    while (next < images.size() || !window.empty()) {
        while (next < images.size() && window.size() < kScanWidth) {
            window.push_back(std::make_unique<ImageRead>(images[next++], mode));
            window.back()->start(pool.io());
        }
        // Every answer already in sends its image's next request, so that
        // object maps are read while the first image waits.
        for (auto &r : window)
            while (r->ready())
                r->advance();
        ImageRead &first = *window.front();
        if (first.in_flight()) {
            first.advance(); // waits
            continue;
        }
        const size_t index = next - window.size();
        Result<VolumeInfo> info = first.result();
        if (first.phase() == ImageRead::Phase::AskLibrbd)
            info = info_by_open(pool, first.ref().name, mode);
        else if (first.error() < 0)
            info = ceph_error(first.error(), "failed to read the header of " + pool.image_label(first.ref().name));
        window.pop_front();
        if (!each(index, info))
            return;
    }
}

} // namespace rbdclone
