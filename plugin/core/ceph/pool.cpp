#include "ceph/pool.hpp"

#include "base/log.hpp"

namespace rbdclone {

Result<std::shared_ptr<Pool>> open_pool(ConnectionCache &cache, const PoolIdentity &id,
                                        const ClusterParams &params, const PoolPolicy &policy)
{
    auto cluster = cache.get(params);
    if (!cluster) {
        Error e = cluster.error();
        e.message = cat("storage pool '", id.name, "': ", e.message);
        return e;
    }
    IoCtxHandle io;
    int r = rados_ioctx_create(cluster.value()->get(), id.ceph_pool.c_str(), io.out());
    if (r < 0) {
        if (r == -ENOENT)
            return plain_error(RBDC_ERR_NO_POOL, r,
                               cat("storage pool '", id.name, "': Ceph pool '", id.ceph_pool,
                                   "' does not exist in cluster ", cluster.value()->fsid()));
        return ceph_error(r, cat("storage pool '", id.name, "': failed to open Ceph pool '",
                                 id.ceph_pool, "'"));
    }
    return std::make_shared<Pool>(id, params, std::move(cluster.value()), std::move(io), policy);
}

void PoolRegistry::put(std::shared_ptr<Pool> p)
{
    std::lock_guard lk(mu_);
    pools_[p->id().uuid] = std::move(p);
}

std::shared_ptr<Pool> PoolRegistry::find(const std::string &uuid)
{
    std::lock_guard lk(mu_);
    auto it = pools_.find(uuid);
    return it == pools_.end() ? nullptr : it->second;
}

void PoolRegistry::forget(const std::string &uuid)
{
    std::shared_ptr<Pool> dropped; // destroyed outside the lock
    std::lock_guard lk(mu_);
    auto it = pools_.find(uuid);
    if (it != pools_.end()) {
        dropped = std::move(it->second);
        pools_.erase(it);
    }
}

std::vector<std::string> PoolRegistry::uuids(const std::string &ceph_pool)
{
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (const auto &[uuid, p] : pools_)
        if (ceph_pool.empty() || p->id().ceph_pool == ceph_pool)
            out.push_back(uuid);
    return out;
}

std::shared_ptr<Pool> PoolRegistry::find_by_fsid(const std::string &fsid)
{
    std::lock_guard lk(mu_);
    for (const auto &[uuid, p] : pools_)
        if (p->cluster().fsid() == fsid)
            return p;
    return nullptr;
}

ConnectionCache &connection_cache()
{
    // Leaked on purpose: libvirtd may exit with connections open, and
    // shutting librados down from a static destructor can block the exit.
    static auto *cache = new ConnectionCache(connect_cluster);
    return *cache;
}

PoolRegistry &pool_registry()
{
    static auto *reg = new PoolRegistry;
    return *reg;
}

} // namespace rbdclone
