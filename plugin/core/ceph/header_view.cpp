#include "ceph/header_view.hpp"

#include <memory>
#include <vector>

#include "base/log.hpp"
#include "ceph/async_read.hpp"
#include "ceph/names.hpp"
#include "ceph/rbd_wire.hpp"

namespace rbdclone {

namespace {

// The head's map is read before its size is known, this much of it: images
// of more objects (256 Ki: 1 TiB of 4 MiB objects) are left to librbd.
constexpr size_t kMaxMapBytes = 64 << 10;

constexpr uint64_t kUnsupportedFeatures = RBD_FEATURE_STRIPINGV2 | RBD_FEATURE_DATA_POOL | RBD_FEATURE_JOURNALING;
constexpr uint64_t kNeededFeatures = RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF;
constexpr uint64_t kMapInvalid = RBD_FLAG_OBJECT_MAP_INVALID | RBD_FLAG_FAST_DIFF_INVALID;

// What round 1 tells.
struct Header {
    uint64_t size = 0, object_size = 0, objects = 0, features = 0;
    uint8_t order = 0;
    std::string prefix;
    uint64_t newest = 0;
};

// A byte range of the image, as pieces of its data objects (plain
// striping), each read on its own.
struct RangeRead {
    uint64_t off = 0;
    std::string *out = nullptr;
    std::vector<std::unique_ptr<AsyncRead>> pieces;
    std::vector<size_t> lens;
};

bool start_range(rados_ioctx_t io, const Header &h, uint64_t off, size_t len, std::string &out, RangeRead &r)
{
    out.assign(len, '\0');
    r.off = off;
    r.out = &out;
    while (len > 0) {
        const uint64_t obj = off / h.object_size, within = off % h.object_size;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(len, h.object_size - within));
        auto rd = std::make_unique<AsyncRead>();
        rd->read(within, n);
        if (!rd->send(io, rbd_data_object(h.prefix, obj), false))
            return false;
        r.pieces.push_back(std::move(rd));
        r.lens.push_back(n);
        off += n;
        len -= n;
    }
    return true;
}

// The bytes in place; a missing object or a short one reads as zeros.
bool finish_range(RangeRead &r)
{
    size_t at = 0;
    for (size_t i = 0; i < r.pieces.size(); i++) {
        int rc = r.pieces[i]->wait();
        const auto &rep = r.pieces[i]->reply(0);
        if (rc == -ENOENT) {
            at += r.lens[i];
            continue;
        }
        if (rc < 0 || rep.rv < 0 || rep.size() > r.lens[i])
            return false;
        std::copy(rep.data(), rep.data() + rep.size(), r.out->begin() + static_cast<std::ptrdiff_t>(at));
        at += r.lens[i];
    }
    return true;
}

std::optional<Header> decode_header(const AsyncRead &rd, size_t i_size, size_t i_prefix, size_t i_features,
                                    size_t i_flags, size_t i_snapc, size_t i_parent)
{
    auto reply = [&](size_t i) -> const AsyncRead::Reply & { return rd.reply(i); };
    for (size_t i : {i_size, i_prefix, i_features, i_flags, i_snapc, i_parent})
        if (reply(i).rv < 0)
            return std::nullopt;
    auto size = wire::decode_size(reply(i_size).data(), reply(i_size).size());
    auto prefix = wire::decode_string(reply(i_prefix).data(), reply(i_prefix).size());
    auto features = wire::decode_u64(reply(i_features).data(), reply(i_features).size());
    auto flags = wire::decode_u64(reply(i_flags).data(), reply(i_flags).size());
    auto snapc = wire::decode_snapcontext(reply(i_snapc).data(), reply(i_snapc).size());
    auto parent = wire::decode_parent_pool(reply(i_parent).data(), reply(i_parent).size());
    if (!size || !prefix || prefix->empty() || !features || !flags || !snapc || !parent)
        return std::nullopt;
    if (*parent != -1 || (*features & kUnsupportedFeatures) || (*features & kNeededFeatures) != kNeededFeatures ||
        (*flags & kMapInvalid) || snapc->snaps.empty())
        return std::nullopt;
    Header h;
    h.size = size->size;
    h.order = size->order;
    h.object_size = uint64_t{1} << size->order;
    h.objects = (h.size + h.object_size - 1) / h.object_size;
    h.features = *features;
    h.prefix = *prefix;
    h.newest = snapc->snaps.front();
    if ((h.objects + 3) / 4 > kMaxMapBytes)
        return std::nullopt;
    return h;
}

// A context of our own on the image's pool and namespace, reading at
// snapshot `snap` (the caller's context is shared).
IoCtxHandle snapshot_context(rados_ioctx_t io, uint64_t snap)
{
    IoCtxHandle own;
    if (rados_ioctx_create2(rados_ioctx_get_cluster(io), rados_ioctx_get_id(io), own.out()) < 0)
        return {};
    char ns[256];
    int n = rados_ioctx_get_namespace(io, ns, sizeof(ns));
    if (n < 0 || static_cast<size_t>(n) >= sizeof(ns))
        return {};
    rados_ioctx_set_namespace(own.get(), std::string(ns, static_cast<size_t>(n)).c_str());
    rados_ioctx_snap_set_read(own.get(), snap);
    return own;
}

} // namespace

std::optional<HeaderView> read_header_view(rados_ioctx_t io, const std::string &image_id, size_t head_bytes,
                                           size_t tail_bytes)
{
    const std::string header = rbd_header_object(image_id);
    static const std::string head = wire::snap_arg(wire::kHeadSnapId);

    // Round 1: the header, and the head's object map beside it.
    AsyncRead hdr;
    const size_t i_size = hdr.exec("rbd", "get_size", head), i_prefix = hdr.exec("rbd", "get_object_prefix", ""),
                 i_features = hdr.exec("rbd", "get_features", head), i_flags = hdr.exec("rbd", "get_flags", head),
                 i_snapc = hdr.exec("rbd", "get_snapcontext", ""), i_parent = hdr.exec("rbd", "parent_get", "");
    AsyncRead head_map;
    head_map.read(0, wire::kObjectMapHeader + kMaxMapBytes);
    if (!hdr.send(io, header, false) || !head_map.send(io, rbd_object_map_object(image_id), false))
        return std::nullopt;
    auto h = hdr.wait() < 0 ? std::nullopt : decode_header(hdr, i_size, i_prefix, i_features, i_flags, i_snapc, i_parent);
    if (!h)
        return std::nullopt;

    // Round 2: the newest snapshot, its object map, and its bytes.
    const std::string at = wire::snap_arg(h->newest);
    AsyncRead snap;
    const size_t i_name = snap.exec("rbd", "get_snapshot_name", at), i_ssize = snap.exec("rbd", "get_size", at),
                 i_prot = snap.exec("rbd", "get_protection_status", at), i_sflags = snap.exec("rbd", "get_flags", at);
    AsyncRead snap_map;
    snap_map.read(0, wire::kObjectMapHeader + static_cast<size_t>((h->objects + 3) / 4));
    if (!snap.send(io, header, false) || !snap_map.send(io, rbd_object_map_object(image_id, h->newest), false))
        return std::nullopt;
    IoCtxHandle at_snap = snapshot_context(io, h->newest);
    if (!at_snap)
        return std::nullopt;
    HeaderView v;
    RangeRead first, last;
    const size_t head_len = static_cast<size_t>(std::min<uint64_t>(h->size, head_bytes));
    const bool want_tail = h->size >= head_bytes + tail_bytes && tail_bytes > 0;
    if (!start_range(at_snap.get(), *h, 0, head_len, v.head, first) ||
        (want_tail && !start_range(at_snap.get(), *h, h->size - tail_bytes, tail_bytes, v.tail, last)))
        return std::nullopt;

    if (head_map.wait() < 0 || snap.wait() < 0 || snap_map.wait() < 0 || !finish_range(first) ||
        (want_tail && !finish_range(last)))
        return std::nullopt;
    auto name = wire::decode_string(snap.reply(i_name).data(), snap.reply(i_name).size());
    auto ssize = wire::decode_size(snap.reply(i_ssize).data(), snap.reply(i_ssize).size());
    auto prot = wire::decode_u8(snap.reply(i_prot).data(), snap.reply(i_prot).size());
    auto sflags = wire::decode_u64(snap.reply(i_sflags).data(), snap.reply(i_sflags).size());
    if (!name || !ssize || !prot || !sflags || !is_our_snapshot(*name) || ssize->size != h->size ||
        ssize->order != h->order || (*sflags & kMapInvalid))
        return std::nullopt;
    const auto &hm = head_map.reply(0), &sm = snap_map.reply(0);
    auto unchanged = wire::head_equals_newest_snapshot(hm.data(), hm.size(), sm.data(), sm.size(), h->objects);
    if (!unchanged || !*unchanged)
        return std::nullopt;
    v.size = h->size;
    v.features = h->features;
    v.newest = SnapshotInfo{h->newest, *name, ssize->size};
    v.newest_protected = *prot == 2; // RBD_PROTECTION_STATUS_PROTECTED
    return v;
}

} // namespace rbdclone
