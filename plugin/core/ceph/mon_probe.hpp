// Telling "no monitor answers" from "the monitors refuse our key": librados
// reports both as a timeout after client_mount_timeout, so after a timeout
// we check whether any monitor accepts a TCP connection.
#pragma once

#include <string>
#include <vector>

namespace rbdclone {

struct MonEndpoint {
    std::string host;
    int port = 0;
    bool operator==(const MonEndpoint &o) const { return host == o.host && port == o.port; }
};

// Parses librados' mon_host as libvirt writes it: "h", "h:p", "[v6]:p",
// comma separated.  A host without a port stands for both 3300 and 6789.
std::vector<MonEndpoint> parse_mon_host(const std::string &mon_host);

// mon_host with the well-known ports made explicit: "h:6789" becomes
// "v1:h:6789" and "h:3300" "v2:h:3300", so librados does not first try the
// other protocol (which logs an error line to the process's stderr).
std::string normalize_mon_host(const std::string &mon_host);

// True when some endpoint accepts a TCP connection within timeout_ms each.
bool any_monitor_reachable(const std::vector<MonEndpoint> &eps, int timeout_ms);

} // namespace rbdclone
