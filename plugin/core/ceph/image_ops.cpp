#include "ceph/image_ops.hpp"

#include <algorithm>
#include <cstring>

#include "base/log.hpp"
#include "ceph/image_metadata.hpp"
#include "ceph/image_open.hpp"
#include "ceph/names.hpp"

namespace rbdclone {

Result<PoolUsage> pool_usage(Pool &pool)
{
    rados_cluster_stat_t cs;
    int r = rados_cluster_stat(pool.cluster().get(), &cs);
    if (r < 0)
        return ceph_error(r, "failed to stat the Ceph cluster");
    rados_pool_stat_t ps;
    r = rados_ioctx_pool_stat(pool.io(), &ps);
    if (r < 0)
        return ceph_error(r, cat("failed to stat the Ceph pool '", pool.id().ceph_pool, "'"));
    return PoolUsage{cs.kb * 1024, cs.kb_avail * 1024, ps.num_bytes};
}

Result<ImageHandle> open_image(Pool &pool, const std::string &name, bool read_only, const VolumeKey *key)
{
    ImageHandle img;
    int r = open_image_by_name(pool.io(), name, nullptr, read_only, img);
    if (r < 0) {
        if (r == -ENOENT)
            return plain_error(RBDC_ERR_NO_VOLUME, r, pool.image_label(name) + " does not exist");
        return ceph_error(r, "failed to open " + pool.image_label(name));
    }
    if (key)
        if (auto st = load_key(img.get(), *key, pool.image_label(name)); !st)
            return st.error();
    return img;
}

Status create_volume(Pool &pool, const std::string &name, uint64_t capacity)
{
    int order = 0; // librbd's default object size; features from rbd_default_features
    int r = rbd_create(pool.io(), name.c_str(), capacity, &order);
    if (r < 0) {
        if (r == -EEXIST)
            return plain_error(RBDC_ERR_EXISTS, r, pool.image_label(name) + " already exists");
        if (r == -EINVAL && capacity >= (1ull << 40))
            return plain_error(RBDC_ERR_INVALID_ARG, r,
                               cat("cannot create ", pool.image_label(name), " of ", capacity,
                                   " bytes: larger than RBD accepts (with the object-map feature an image holds "
                                   "at most 256000000 objects, about 976 TiB with 4 MiB objects)"));
        return ceph_error(r, "failed to create " + pool.image_label(name));
    }
    log_info("created ", pool.image_label(name), " of ", capacity, " bytes");
    return {};
}

std::string image_metadata(rbd_image_t img, const char *key)
{
    auto value = read_image_metadata(img, key, "an image");
    return value && *value ? **value : std::string();
}

Status resize_volume(Pool &pool, const std::string &name, uint64_t capacity, bool allow_shrink)
{
    auto img = open_image(pool, name, false);
    if (!img)
        return img.error();
    auto rec = read_record(img->get(), pool.image_label(name));
    if (!rec)
        return rec.error();
    const uint64_t header = *rec ? (*rec)->header_bytes : 0;
    int r = rbd_resize2(img->get(), capacity + header, allow_shrink, no_progress, nullptr);
    if (r == -EINVAL && !allow_shrink)
        return plain_error(RBDC_ERR_INVALID_ARG, r,
                           cat("cannot shrink ", pool.image_label(name), " to ", capacity,
                               " bytes without the shrink flag"));
    if (r < 0)
        return ceph_error(r, cat("failed to resize ", pool.image_label(name), " to ", capacity, " bytes"));
    log_info("resized ", pool.image_label(name), " to ", capacity, " bytes");
    return {};
}

} // namespace rbdclone
