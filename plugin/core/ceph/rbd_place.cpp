#include "ceph/rbd_place.hpp"

namespace rbdclone {

RbdPlace place_at_snapshot(const std::shared_ptr<Pool> &pool, const std::string &image, const std::string &snap)
{
    RbdPlace p;
    p.where = RbdLocation{pool->cluster().fsid(), pool->id().ceph_pool, "", image, snap};
    p.io = pool->io();
    p.params = &pool->params();
    p.reader = pool;
    return p;
}

RbdPlace place_in_pool(const std::shared_ptr<Pool> &pool, const std::string &image)
{
    return place_at_snapshot(pool, image, "");
}

Result<RbdPlace> open_place(RbdLocation where, const std::shared_ptr<Pool> &asking)
{
    RbdPlace p;
    p.where = std::move(where);
    if (p.where.fsid.empty())
        p.where.fsid = asking->cluster().fsid();
    p.reader = p.where.fsid == asking->cluster().fsid() ? asking : pool_registry().find_by_fsid(p.where.fsid);
    if (!p.reader)
        return p; // no pool of this daemon reaches its cluster
    p.params = &p.reader->params();
    auto io = std::make_shared<IoCtxHandle>();
    int r = rados_ioctx_create(p.reader->cluster().get(), p.where.pool.c_str(), io->out());
    if (r == -ENOENT)
        return plain_error(RBDC_ERR_NO_POOL, r,
                           "Ceph pool '" + p.where.pool + "' of " + p.where.label() + " does not exist in cluster " +
                               p.where.fsid);
    if (r < 0)
        return ceph_error(r, "failed to open Ceph pool '" + p.where.pool + "'");
    p.own_io = std::move(io);
    p.io = p.own_io->get();
    return p;
}

} // namespace rbdclone
