// How big an image is and how much of it is stored: for one image through
// librbd, and for a whole pool straight from the images' RADOS objects (see
// rbd_wire.hpp), with a bounded number of requests in flight.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ceph/encryption.hpp"
#include "ceph/pool.hpp"

namespace rbdclone {

struct VolumeInfo {
    uint64_t capacity = 0;   // what the guest sees: an encrypted image's header excluded
    uint64_t allocation = 0;
    std::optional<EncryptionRecord> encryption; // from the image's record (no key needed)
};

// v of an image whose record is rec: encrypted, its capacity without the header.
void apply_record(VolumeInfo &v, const EncryptionRecord &rec);

// FromObjects: every object the image's size spans (rbd_stat's obj_size *
// num_objs, what libvirt's stock module reports by default); FastDiff: the
// objects that exist, from the object map when the image has a valid one.
enum class AllocMode { FromObjects, FastDiff };

// An image open in librbd (`name` only labels errors).
Result<VolumeInfo> info_of_open(Pool &pool, const std::string &name, rbd_image_t img, AllocMode mode);
// The same, opening the image read-only (-ENOENT: it does not exist).
Result<VolumeInfo> info_by_name(Pool &pool, const std::string &name, AllocMode mode);

struct ListedImage {
    std::string name;
    std::string id; // empty for an image format 1
};

// Every image of the pool (hidden ones included), as rbd_list2 lists them.
Result<std::vector<ListedImage>> image_refs(Pool &pool);

// Requests in flight while scanning a pool.
inline constexpr size_t kScanWidth = 32;

// The capacity and allocation of every image of `images`, equal to what
// info_of_open reports, passed to `each` in the order of `images` from the
// calling thread.  Up to kScanWidth images are read at once, one round trip
// each (two with a fast-diff object map); an image whose objects say
// something this module does not know (a format 1 image, fancy striping with
// fast-diff, an unknown encoding) is asked of librbd instead.  An image
// deleted meanwhile is passed as an error with rc -ENOENT.  Stops when `each`
// returns false.  Memory: bounded by kScanWidth, whatever the number of
// images.
void scan_images(Pool &pool, const std::vector<ListedImage> &images, AllocMode mode,
                 const std::function<bool(size_t index, const Result<VolumeInfo> &info)> &each);

} // namespace rbdclone
