// A libvirt RBD pool as the core sees it: a shared cluster connection plus
// an I/O context on the Ceph pool, registered under the libvirt pool UUID.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "ceph/cluster.hpp"
#include "ceph/handles.hpp"
#include "ceph/location.hpp"
#include "ceph/pool_policy.hpp"

namespace rbdclone {

struct PoolIdentity {
    std::string uuid;
    std::string name;      // libvirt pool name
    std::string ceph_pool; // Ceph pool name
};

class Pool {
  public:
    Pool(PoolIdentity id, ClusterParams params, std::shared_ptr<Cluster> c, IoCtxHandle io,
         PoolPolicy policy = {})
        : id_(std::move(id)), params_(std::move(params)), cluster_(std::move(c)), io_(std::move(io)),
          policy_(policy) {}

    const PoolIdentity &id() const { return id_; }
    const ClusterParams &params() const { return params_; }
    Cluster &cluster() const { return *cluster_; }
    const std::shared_ptr<Cluster> &cluster_ptr() const { return cluster_; }
    rados_ioctx_t io() const { return io_.get(); }
    const PoolPolicy &policy() const { return policy_; }

    // "RBD image 'cephpool/name'" for messages.
    std::string image_label(const std::string &image) const
    {
        return RbdLocation{"", id_.ceph_pool, "", image, ""}.label();
    }

  private:
    PoolIdentity id_;
    ClusterParams params_;
    std::shared_ptr<Cluster> cluster_;
    IoCtxHandle io_;
    PoolPolicy policy_;
};

// Opens the Ceph pool through a (cached) connection.
Result<std::shared_ptr<Pool>> open_pool(ConnectionCache &cache, const PoolIdentity &id,
                                        const ClusterParams &params, const PoolPolicy &policy = {});

class PoolRegistry {
  public:
    void put(std::shared_ptr<Pool> p);
    std::shared_ptr<Pool> find(const std::string &uuid);
    void forget(const std::string &uuid);
    // UUIDs of the registered pools on Ceph pool `ceph_pool` ("" = all).
    std::vector<std::string> uuids(const std::string &ceph_pool);
    // Some registered pool of the cluster with this fsid (its connection
    // reaches the cluster), or null.
    std::shared_ptr<Pool> find_by_fsid(const std::string &fsid);

  private:
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<Pool>> pools_;
};

// Process-wide state of the module.
ConnectionCache &connection_cache();
PoolRegistry &pool_registry();

} // namespace rbdclone
