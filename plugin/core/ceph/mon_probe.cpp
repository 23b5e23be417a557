#include "ceph/mon_probe.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/text.hpp"

namespace rbdclone {

std::vector<MonEndpoint> parse_mon_host(const std::string &mon_host)
{
    std::vector<MonEndpoint> out;
    for (std::string item : split(mon_host, ", ")) {
        if (item.empty())
            continue;
        if (item.rfind("v1:", 0) == 0 || item.rfind("v2:", 0) == 0)
            item = item.substr(3);
        std::string host = item, port;
        if (item[0] == '[') {
            size_t close = item.find(']');
            if (close == std::string::npos)
                continue;
            host = item.substr(1, close - 1);
            if (close + 1 < item.size() && item[close + 1] == ':')
                port = item.substr(close + 2);
        } else if (size_t colon = item.rfind(':'); colon != std::string::npos &&
                                                   item.find(':') == colon) {
            host = item.substr(0, colon);
            port = item.substr(colon + 1);
        }
        if (!port.empty() && port.find_first_not_of("0123456789") == std::string::npos) {
            out.push_back({host, std::stoi(port)});
        } else {
            out.push_back({host, 3300});
            out.push_back({host, 6789});
        }
    }
    return out;
}

std::string normalize_mon_host(const std::string &mon_host)
{
    std::string out;
    for (std::string item : split(mon_host, ",")) {
        if (item.empty())
            continue;
        auto ends_with = [&](const char *suffix) {
            std::string s(suffix);
            return item.size() > s.size() && item.compare(item.size() - s.size(), s.size(), s) == 0;
        };
        if (item.find("v1:") != 0 && item.find("v2:") != 0) {
            if (ends_with(":6789"))
                item = "v1:" + item;
            else if (ends_with(":3300"))
                item = "v2:" + item;
        }
        out += (out.empty() ? "" : ",") + item;
    }
    return out;
}

static bool tcp_accepts(const MonEndpoint &ep, int timeout_ms)
{
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *res = nullptr;
    if (getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &res) != 0)
        return false;
    bool ok = false;
    for (addrinfo *ai = res; ai && !ok; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r == 0) {
            ok = true;
        } else if (errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            if (poll(&p, 1, timeout_ms) == 1) {
                int err = 0;
                socklen_t len = sizeof(err);
                ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
            }
        }
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

bool any_monitor_reachable(const std::vector<MonEndpoint> &eps, int timeout_ms)
{
    for (const auto &ep : eps)
        if (tcp_accepts(ep, timeout_ms))
            return true;
    return false;
}

} // namespace rbdclone
