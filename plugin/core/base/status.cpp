#include "base/status.hpp"

#include <cerrno>
#include <cstring>

namespace rbdclone {

std::string describe_rc(int rc)
{
    switch (-rc) {
    case ENOENT:
        return "does not exist";
    case EEXIST:
        return "already exists";
    case ENOTEMPTY:
        return "image has snapshots";
    case EBUSY:
        return "in use (the image has watchers, e.g. a running guest, or clones)";
    case ETIMEDOUT:
        return "timed out waiting for the Ceph cluster";
    case EPERM:
    case EACCES:
        return "permission denied (check the Ceph user's caps)";
    case ESHUTDOWN:
        return "this client was blocklisted by the Ceph cluster";
    case ENOSPC:
        return "the Ceph cluster is full";
    case EDQUOT:
        return "the Ceph pool's quota is exceeded";
    case EROFS:
        return "the image is read-only";
    case ENOSYS:
    case EOPNOTSUPP:
        return "not supported by this image or cluster";
    case ENAMETOOLONG:
        return "name too long";
    case ECONNREFUSED:
        return "connection refused";
    default: {
        char buf[256];
        // GNU strerror_r returns the message (maybe not in buf).
        const char *s = strerror_r(-rc, buf, sizeof(buf));
        return std::string(s) + " (errno " + std::to_string(-rc) + ")";
    }
    }
}

static rbdc_error_kind kind_for(int rc)
{
    switch (-rc) {
    case ETIMEDOUT:
        return RBDC_ERR_TIMEOUT;
    case EPERM:
    case EACCES:
        return RBDC_ERR_AUTH;
    default:
        return RBDC_ERR_SYSTEM;
    }
}

Error ceph_error(int rc, const std::string &context)
{
    return ceph_error(rc, kind_for(rc), context);
}

Error ceph_error(int rc, rbdc_error_kind kind, const std::string &context)
{
    return Error{rc < 0 ? rc : -EIO, kind, context + ": " + describe_rc(rc < 0 ? rc : -EIO)};
}

Error plain_error(rbdc_error_kind kind, int rc, std::string message)
{
    return Error{rc, kind, std::move(message)};
}

} // namespace rbdclone
