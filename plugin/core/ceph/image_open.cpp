#include "ceph/image_open.hpp"

#include <cerrno>
#include <optional>

#include "ceph/names.hpp"
#include "ceph/rbd_wire.hpp"

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

int image_id_of(rados_ioctx_t io, const std::string &name, std::string &id)
{
    rados_read_op_t op = rados_create_read_op();
    char *reply = nullptr;
    size_t len = 0;
    int rv = 0;
    rados_read_op_exec(op, "rbd", "get_id", nullptr, 0, &reply, &len, &rv);
    int r = rados_read_op_operate(op, io, rbd_id_object(name).c_str(), 0);
    rados_release_read_op(op);
    if (r >= 0 && rv < 0)
        r = rv;
    std::optional<std::string> decoded;
    if (r >= 0 && !(decoded = wire::decode_id(reply, len)))
        r = -EBADMSG;
    if (reply)
        rados_buffer_free(reply);
    if (r < 0)
        return r;
    id = std::move(*decoded);
    return 0;
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
