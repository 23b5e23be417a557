#include "ceph/names.hpp"

#include "base/text.hpp"

namespace rbdclone {

bool is_partial_name(const std::string &image) { return image.find(kPartialMarker) != std::string::npos; }

bool is_cache_entry(const std::string &image) { return image.rfind(kCachePrefix, 0) == 0; }

bool is_our_snapshot(const std::string &name) { return name.rfind(kOurSnapshotPrefix, 0) == 0; }

std::string first_snapshot_name() { return std::string(kOurSnapshotPrefix) + "base"; }

std::string snapshot_after_name(uint64_t newest_snapshot_id)
{
    return std::string(kOurSnapshotPrefix) + "after-" + std::to_string(newest_snapshot_id);
}

std::string cache_lock_object(const std::string &entry)
{
    const std::string prefix = kCachePrefix;
    return "rbdclone_cache_lock." + (entry.rfind(prefix, 0) == 0 ? entry.substr(prefix.size()) : entry);
}

std::string snapshot_lock_object(const std::string &image_id) { return "rbdclone_snaps." + image_id; }

std::string rbd_id_object(const std::string &image) { return "rbd_id." + image; }
std::string rbd_v1_header_object(const std::string &image) { return image + ".rbd"; }
std::string rbd_header_object(const std::string &image_id) { return "rbd_header." + image_id; }
std::string rbd_object_map_object(const std::string &image_id) { return "rbd_object_map." + image_id; }

std::string rbd_object_map_object(const std::string &image_id, uint64_t snap_id)
{
    return rbd_object_map_object(image_id) + "." + hex16(snap_id);
}

std::string rbd_data_object(const std::string &prefix, uint64_t object_no) { return prefix + "." + hex16(object_no); }

std::string image_name_problem(const std::string &name)
{
    if (name.empty())
        return "an RBD image name must not be empty";
    if (name.size() > kMaxImageNameBytes)
        return "it is " + std::to_string(name.size()) + " bytes long, more than the " +
               std::to_string(kMaxImageNameBytes) + " RBD accepts";
    if (name.find('/') != std::string::npos)
        return "'/' separates the pool from the image in RBD paths";
    if (auto at = name.find('@'); at != std::string::npos)
        return "qemu reads '@' as a snapshot separator: it would open snapshot '" + name.substr(at + 1) +
               "' of image '" + name.substr(0, at) + "'";
    if (name.find(':') != std::string::npos)
        return "qemu's rbd: filename syntax reads ':' as an option separator";
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f)
            return "it contains a control character";
    if (name == "." || name == "..")
        return "'.' and '..' are not image names";
    return "";
}

} // namespace rbdclone
