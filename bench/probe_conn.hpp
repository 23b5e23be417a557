// What the librbd probes of bench/ share: one cluster connection as
// client.admin with $CEPH_CONF (the lab's ceph.conf) and $CEPH_ARGS, and the
// pool's I/O context.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace probe {

constexpr uint64_t MiB = 1024 * 1024;

[[noreturn]] inline void die(const std::string &what, int r)
{
    throw std::runtime_error(what + ": " + strerror(-r));
}

// One cluster connection and the pool's I/O context.
struct Conn {
    rados_t cluster = nullptr;
    rados_ioctx_t io = nullptr;

    Conn(const std::string &pool, bool zero_copy)
    {
        const char *conf = getenv("CEPH_CONF");
        int r;
        if ((r = rados_create2(&cluster, "ceph", "client.admin", 0)) < 0)
            die("rados_create2", r);
        if ((r = rados_conf_read_file(cluster, conf && *conf ? conf : nullptr)) < 0)
            die("reading ceph.conf", r);
        if ((r = rados_conf_parse_env(cluster, nullptr)) < 0) // CEPH_ARGS, as Ceph's tools
            die("parsing CEPH_ARGS", r);
        if ((r = rados_conf_set(cluster, "rbd_disable_zero_copy_writes", zero_copy ? "false" : "true")) < 0)
            die("setting rbd_disable_zero_copy_writes", r);
        if ((r = rados_connect(cluster)) < 0)
            die("rados_connect", r);
        if ((r = rados_ioctx_create(cluster, pool.c_str(), &io)) < 0)
            die("opening pool " + pool, r);
    }
    ~Conn()
    {
        if (io)
            rados_ioctx_destroy(io);
        if (cluster)
            rados_shutdown(cluster);
    }
    Conn(const Conn &) = delete;
    Conn &operator=(const Conn &) = delete;
};

} // namespace probe
