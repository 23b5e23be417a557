#include "ceph/cluster.hpp"

#include <cstdlib>
#include <cstring>

#include "base/log.hpp"
#include "ceph/mon_probe.hpp"

namespace rbdclone {

std::string ClusterParams::cache_key() const
{
    // '\x1f' cannot appear in any of these fields as libvirt parses them.
    std::string k = mon_host + '\x1f' + user + '\x1f' + key;
    for (const auto &[n, v] : options)
        k += '\x1f' + n + '=' + v;
    return k;
}

std::string ClusterParams::describe() const
{
    return cat("mon_host=", mon_host, " id=", user.empty() ? "(no auth)" : user);
}

std::vector<std::pair<std::string, std::string>>
connection_settings(const ClusterParams &p)
{
    std::vector<std::pair<std::string, std::string>> s;
    if (p.user.empty()) {
        s.emplace_back("auth_supported", "none");
    } else {
        s.emplace_back("key", p.key);
        s.emplace_back("auth_supported", "cephx");
    }
    s.emplace_back("mon_host", normalize_mon_host(p.mon_host));
    // Inside libvirtd nothing may go to stdout/stderr: Ceph's own log lines
    // would land in the daemon's stderr.
    s.emplace_back("log_to_stderr", "false");
    s.emplace_back("err_to_stderr", "false");
    // Same bounds as the stock backend: a dead cluster must not block forever.
    s.emplace_back("client_mount_timeout", "30");
    s.emplace_back("rados_mon_op_timeout", "30");
    s.emplace_back("rados_osd_op_timeout", "30");
    s.emplace_back("rbd_default_format", "2");
    // libvirtd does no guest I/O: its copies and uploads go straight to the
    // OSDs (a write completes when it is stored, and nothing is cached).
    s.emplace_back("rbd_cache", "false");
    // The copy engine keeps each buffer until its write completes: librbd
    // need not copy it (it does by default).
    s.emplace_back("rbd_disable_zero_copy_writes", "false");
    for (const auto &o : p.options)
        s.push_back(o);
    return s;
}

Result<std::string> Cluster::mon_command(const std::string &json) const
{
    const char *cmd[] = {json.c_str()};
    char *outbuf = nullptr, *outs = nullptr;
    size_t outbuf_len = 0, outs_len = 0;
    int r = rados_mon_command(rados_.get(), cmd, 1, "", 0, &outbuf, &outbuf_len,
                              &outs, &outs_len);
    std::string out(outbuf ? outbuf : "", outbuf ? outbuf_len : 0);
    std::string status(outs ? outs : "", outs ? outs_len : 0);
    if (outbuf)
        rados_buffer_free(outbuf);
    if (outs)
        rados_buffer_free(outs);
    if (r < 0)
        return ceph_error(r, cat("monitor command ", json, " failed", status.empty() ? "" : " (" + status + ")"));
    return out;
}

bool Cluster::memo_get(const std::string &key, std::string &value, int max_age_ms)
{
    std::lock_guard lk(memo_mu_);
    auto it = memo_.find(key);
    if (it == memo_.end() ||
        std::chrono::steady_clock::now() - it->second.second > std::chrono::milliseconds(max_age_ms))
        return false;
    value = it->second.first;
    return true;
}

void Cluster::memo_put(const std::string &key, std::string value)
{
    std::lock_guard lk(memo_mu_);
    memo_[key] = {std::move(value), std::chrono::steady_clock::now()};
}

Result<std::shared_ptr<Cluster>> connect_cluster(const ClusterParams &p)
{
    RadosHandle h;
    int r = rados_create(h.out(), p.user.empty() ? nullptr : p.user.c_str());
    if (r < 0)
        return ceph_error(r, "failed to initialize the RADOS client");

    for (const auto &[name, value] : connection_settings(p)) {
        if (name != "key")
            log_debug("setting RADOS option '", name, "' to '", value, "'");
        r = rados_conf_set(h.get(), name.c_str(), value.c_str());
        if (r < 0)
            return plain_error(RBDC_ERR_INVALID_ARG, r,
                               cat("failed to set RADOS option '", name, "'",
                                   name == "key" ? "" : " to '" + value + "'", ": ",
                                   r == -ENOENT ? "no such option" : describe_rc(r)));
    }

    r = rados_connect(h.get());
    if (r < 0) {
        std::string ctx = cat("failed to connect to the Ceph monitors at ", p.mon_host,
                              p.user.empty() ? "" : " as client." + p.user);
        if (r == -EACCES || r == -EPERM || r == -EINVAL)
            return plain_error(RBDC_ERR_AUTH, r, ctx + ": authentication failed (wrong key or user?)");
        if (r == -ETIMEDOUT) {
            // librados times out both when no monitor answers and when the
            // monitors keep refusing our key: tell the two apart.
            if (!p.user.empty() && any_monitor_reachable(parse_mon_host(p.mon_host), 1000))
                return plain_error(RBDC_ERR_AUTH, r,
                                   ctx + ": the monitors are reachable but refused authentication "
                                         "(wrong key for client." + p.user + ", or no such user)");
            return plain_error(RBDC_ERR_TIMEOUT, r,
                               ctx + ": no monitor answered within client_mount_timeout");
        }
        return ceph_error(r, ctx);
    }

    char fsid[64] = {0};
    r = rados_cluster_fsid(h.get(), fsid, sizeof(fsid) - 1);
    if (r < 0)
        return ceph_error(r, "failed to read the Ceph cluster's fsid");

    log_debug("connected to Ceph cluster ", fsid, " (", p.describe(), ")");
    return std::make_shared<Cluster>(std::move(h), fsid);
}

Result<std::shared_ptr<Cluster>> ConnectionCache::get(const ClusterParams &p)
{
    const std::string key = p.cache_key();
    {
        std::lock_guard lk(mu_);
        auto it = entries_.find(key);
        if (it != entries_.end()) {
            if (auto c = it->second.lock())
                return c;
            entries_.erase(it);
        }
    }
    // Connect without the lock: a hung cluster must not block other pools.
    auto res = connect_(p);
    if (!res)
        return res;
    std::lock_guard lk(mu_);
    auto &slot = entries_[key];
    if (auto existing = slot.lock())
        return existing; // another thread connected first; ours is dropped
    slot = res.value();
    return res;
}

size_t ConnectionCache::live_connections()
{
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (const auto &[k, w] : entries_)
        n += !w.expired();
    return n;
}

} // namespace rbdclone
