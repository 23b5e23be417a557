// Cluster connections: one per cluster + identity, shared by every pool that
// uses the same monitors, user, key and options, opened once and reused.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/status.hpp"
#include "ceph/handles.hpp"

namespace rbdclone {

struct ClusterParams {
    std::string mon_host;                 // librados mon_host syntax
    std::string user;                     // cephx id, empty = auth off
    std::string key;                      // base64 cephx key
    std::vector<std::pair<std::string, std::string>> options; // config_opts

    // Identity of a connection: two pools share one iff their keys match.
    std::string cache_key() const;
    // Human description for messages, without the secret.
    std::string describe() const;
};

// The settings applied to every connection, in order: ours first (the
// stock backend's timeouts and defaults), then the pool's config_opts, so
// a pool can override any of them.
std::vector<std::pair<std::string, std::string>>
connection_settings(const ClusterParams &p);

class Cluster {
  public:
    Cluster(RadosHandle h, std::string fsid) : rados_(std::move(h)), fsid_(std::move(fsid)) {}
    rados_t get() const { return rados_.get(); }
    const std::string &fsid() const { return fsid_; }

    // Runs a monitor command (JSON) and returns its output buffer.
    Result<std::string> mon_command(const std::string &json) const;

    // A small per-connection memo for facts that change rarely (e.g. the
    // cluster's require_min_compat_client): value and when it was read.
    bool memo_get(const std::string &key, std::string &value, int max_age_ms);
    void memo_put(const std::string &key, std::string value);

  private:
    std::mutex memo_mu_;
    std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> memo_;
    RadosHandle rados_;
    std::string fsid_;
};

using Connector = std::function<Result<std::shared_ptr<Cluster>>(const ClusterParams &)>;

// Opens a real librados connection.
Result<std::shared_ptr<Cluster>> connect_cluster(const ClusterParams &p);

// Weak cache: a connection lives while some pool holds it.
class ConnectionCache {
  public:
    explicit ConnectionCache(Connector c) : connect_(std::move(c)) {}
    Result<std::shared_ptr<Cluster>> get(const ClusterParams &p);
    size_t live_connections();

  private:
    Connector connect_;
    std::mutex mu_;
    std::map<std::string, std::weak_ptr<Cluster>> entries_;
};

} // namespace rbdclone
