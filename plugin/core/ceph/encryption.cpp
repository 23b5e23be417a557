#include "ceph/encryption.hpp"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <vector>

#include "base/log.hpp"
#include "ceph/handles.hpp"
#include "ceph/image_metadata.hpp"

namespace rbdclone {

const char *luks_name(LuksFormat f) { return f == LuksFormat::Luks1 ? "luks" : "luks2"; }

Passphrase::Passphrase(const void *data, size_t size) : bytes_(new char[size ? size : 1]), size_(size)
{
    if (size)
        memcpy(bytes_.get(), data, size);
}

Passphrase::~Passphrase() { explicit_bzero(bytes_.get(), size_); }

std::string encode_record(const EncryptionRecord &r)
{
    return cat(luks_name(r.format), " ", r.secret_uuid.empty() ? "-" : r.secret_uuid, " ", r.header_bytes);
}

std::optional<EncryptionRecord> decode_record(const std::string &text)
{
    std::istringstream in(text);
    std::string format, uuid;
    uint64_t header = 0;
    if (!(in >> format >> uuid >> header))
        return std::nullopt;
    EncryptionRecord r;
    if (format == "luks")
        r.format = LuksFormat::Luks1;
    else if (format == "luks2")
        r.format = LuksFormat::Luks2;
    else
        return std::nullopt;
    r.secret_uuid = uuid == "-" ? "" : uuid;
    r.header_bytes = header;
    return r;
}

Result<std::optional<EncryptionRecord>> read_record(rbd_image_t img, const std::string &label)
{
    auto text = read_image_metadata(img, kEncryptionMetadataKey, label);
    if (!text)
        return text.error();
    if (!*text)
        return std::optional<EncryptionRecord>();
    auto rec = decode_record(**text);
    if (!rec)
        return plain_error(RBDC_ERR_INTERNAL, -EINVAL, label + " has an encryption record this module cannot read");
    return rec;
}

bool layered_encryption()
{
#ifdef LIBRBD_SUPPORTS_ENCRYPTION_LOAD2
    return true;
#else
    return false;
#endif
}

namespace {

// librbd's options for one format (LUKS1 and LUKS2 options have the same shape).
struct LuksOptions {
    rbd_encryption_format_t format;
    rbd_encryption_luks2_format_options_t opts;
};

LuksOptions options_of(const VolumeKey &key)
{
    LuksOptions o{};
    o.format = key.format == LuksFormat::Luks1 ? RBD_ENCRYPTION_FORMAT_LUKS1 : RBD_ENCRYPTION_FORMAT_LUKS2;
    o.opts.alg = RBD_ENCRYPTION_ALGORITHM_AES256;
    o.opts.passphrase = key.passphrase->data();
    o.opts.passphrase_size = key.passphrase->size();
    return o;
}

Result<uint64_t> size_of(rbd_image_t img, const std::string &label)
{
    uint64_t size = 0;
    int r = rbd_get_size(img, &size);
    if (r < 0)
        return ceph_error(r, "failed to get the size of " + label);
    return size;
}

// More than any LUKS header librbd writes (LUKS2: 16 MiB, LUKS1: one object; larger objects,
// an object): an image is more than its header plus its guest's bytes before it is formatted,
// else librbd refuses (ENOSPC).
uint64_t header_room(rbd_image_t img)
{
    rbd_image_info_t info{};
    (void)rbd_stat(img, &info, sizeof(info));
    return std::max<uint64_t>(32ull << 20, 2 * info.obj_size);
}

// With the key loaded, librbd may size the image as stored or as the guest sees it: either
// way, the guest ends up seeing `capacity` bytes, and no step cuts into the header.
Status size_for_guest(rbd_image_t img, uint64_t capacity, uint64_t header, const std::string &label)
{
    int r = rbd_resize2(img, capacity + header, true, no_progress, nullptr);
    if (r < 0)
        return ceph_error(r, cat("failed to size encrypted ", label, " to ", capacity, " bytes"));
    auto seen = size_of(img, label);
    if (!seen)
        return seen.error();
    if (*seen == capacity)
        return {};
    r = rbd_resize2(img, capacity, true, no_progress, nullptr);
    if (r < 0)
        return ceph_error(r, cat("failed to size encrypted ", label, " to ", capacity, " bytes"));
    seen = size_of(img, label);
    if (!seen)
        return seen.error();
    if (*seen != capacity)
        return plain_error(RBDC_ERR_INTERNAL, -EIO,
                           cat("encrypted ", label, " shows ", *seen, " bytes to its guest, not ", capacity));
    return {};
}

} // namespace

Result<ParentTail> read_parent_tail(rbd_image_t clone, uint64_t parent_size, const std::string &label)
{
    ParentTail tail;
    const uint64_t len = std::min(parent_size, header_room(clone));
    tail.offset = parent_size - len;
    tail.bytes.resize(len);
    ssize_t r = rbd_read2(clone, tail.offset, len, tail.bytes.data(), 0);
    if (r < 0)
        return ceph_error(static_cast<int>(r), cat("failed to read the last ", len, " bytes of ", label));
    if (static_cast<uint64_t>(r) != len)
        return plain_error(RBDC_ERR_SYSTEM, -EIO, cat("short read of the last ", len, " bytes of ", label));
    return tail;
}

Status restore_parent_tail(rbd_image_t clone, const ParentTail &tail, uint64_t header, const std::string &label)
{
    const uint64_t end = tail.offset + tail.bytes.size();
    const uint64_t from = std::max(tail.offset, end > header ? end - header : 0);
    const size_t len = static_cast<size_t>(end - from);
    if (len == 0)
        return {};
    ssize_t r = rbd_write2(clone, from, len, tail.bytes.data() + (from - tail.offset), 0);
    if (r < 0 || static_cast<size_t>(r) != len)
        return ceph_error(r < 0 ? static_cast<int>(r) : -EIO,
                          cat("failed to write the last ", len, " bytes of its parent into encrypted ", label));
    return {};
}

Status load_key(rbd_image_t img, const VolumeKey &key, const std::string &label)
{
    LuksOptions o = options_of(key);
    int r = rbd_encryption_load(img, o.format, &o.opts, sizeof(o.opts));
    if (r == -EPERM || r == -EACCES || r == -EKEYREJECTED)
        return plain_error(RBDC_ERR_AUTH, r,
                           cat("the passphrase of secret ", key.secret_uuid, " does not open ", label,
                               " (", luks_name(key.format), ")"));
    if (r == -EINVAL)
        return plain_error(RBDC_ERR_INVALID_ARG, r,
                           cat("cannot open ", label, " with secret ", key.secret_uuid, ": it is not a ",
                               luks_name(key.format), " image of librbd, or the passphrase does not open it"));
    if (r < 0)
        return ceph_error(r, cat("failed to load the encryption of ", label, " (secret ", key.secret_uuid, ")"));
    return {};
}

Result<uint64_t> format_image(rbd_image_t img, const VolumeKey &key, uint64_t capacity, const std::string &label)
{
    auto raw = size_of(img, label);
    if (!raw)
        return raw.error();
    int r;
    if (const uint64_t room = header_room(img); *raw < capacity + room) {
        if ((r = rbd_resize2(img, capacity + room, false, no_progress, nullptr)) < 0)
            return ceph_error(r, cat("failed to size ", label, " for its encryption header"));
        *raw = capacity + room;
    }
    LuksOptions o = options_of(key);
    r = rbd_encryption_format(img, o.format, &o.opts, sizeof(o.opts));
    if (r < 0)
        return ceph_error(r, cat("failed to format ", label, " with ", luks_name(key.format), " encryption"));
    auto guest = size_of(img, label);
    if (!guest)
        return guest.error();
    if (*guest == *raw) { // formatted, not loaded on this handle
        if (auto st = load_key(img, key, label); !st)
            return st.error();
        if (!(guest = size_of(img, label)))
            return guest.error();
    }
    const uint64_t header = *raw - *guest;
    if (auto st = size_for_guest(img, capacity, header, label); !st)
        return st.error();
    const std::string record = encode_record({key.format, key.secret_uuid, header});
    if ((r = rbd_metadata_set(img, kEncryptionMetadataKey, record.c_str())) < 0)
        return ceph_error(r, "failed to record the encryption of " + label);
    log_info("formatted ", label, " with ", luks_name(key.format), " encryption (secret ", key.secret_uuid,
             ", header ", header, " bytes, ", capacity, " bytes for the guest)");
    return header;
}

} // namespace rbdclone
