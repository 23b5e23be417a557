#include "ceph/image_open.hpp"
#include "ceph/names.hpp"

#include <cerrno>

namespace rbdclone {

namespace {

int object_exists(rados_ioctx_t io, const std::string &oid)
{
    uint64_t size = 0;
    time_t mtime = 0;
    int r = rados_stat(io, oid.c_str(), &size, &mtime);
    if (r == -ENOENT)
        return 0;
    return r < 0 ? r : 1;
}

// Opened head, then the snapshot selected on the handle.
int finish_open(int r, const char *snap, ImageHandle &out)
{
    if (r < 0)
        return r;
    if (snap && *snap && (r = rbd_snap_set(out.get(), snap)) < 0) {
        out.reset();
        return r;
    }
    return 0;
}

} // namespace

int image_exists(rados_ioctx_t io, const std::string &name)
{
    int r = object_exists(io, rbd_id_object(name));
    if (r != 0)
        return r;
    return object_exists(io, rbd_v1_header_object(name));
}

int open_image_by_name(rados_ioctx_t io, const std::string &name, const char *snap, bool read_only,
                       ImageHandle &out)
{
    out.reset();
    int r = image_exists(io, name);
    if (r <= 0)
        return r == 0 ? -ENOENT : r;
    r = read_only ? rbd_open_read_only(io, name.c_str(), out.out(), nullptr)
                  : rbd_open(io, name.c_str(), out.out(), nullptr);
    return finish_open(r, snap, out);
}

int open_image_by_id(rados_ioctx_t io, const std::string &id, const char *snap, bool read_only, ImageHandle &out)
{
    out.reset();
    int r = object_exists(io, rbd_header_object(id));
    if (r <= 0)
        return r == 0 ? -ENOENT : r;
    r = read_only ? rbd_open_by_id_read_only(io, id.c_str(), out.out(), nullptr)
                  : rbd_open_by_id(io, id.c_str(), out.out(), nullptr);
    return finish_open(r, snap, out);
}

} // namespace rbdclone
