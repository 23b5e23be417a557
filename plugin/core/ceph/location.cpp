#include "ceph/location.hpp"

#include "base/text.hpp"

namespace rbdclone {

namespace {

Error bad(const std::string &text, const std::string &why)
{
    return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                       "invalid RBD location '" + text + "': " + why +
                           " (expected 'pool/image', 'pool/image@snap' or 'rbd://FSID/POOL/IMAGE/SNAP')");
}

} // namespace

std::string RbdLocation::label() const
{
    return "RBD image '" + pool + "/" + (ns.empty() ? "" : ns + "/") + image + "'";
}

std::string RbdLocation::label_at() const { return label() + (snap.empty() ? "" : " at snapshot '" + snap + "'"); }

Result<RbdLocation> parse_rbd_location(const std::string &text)
{
    RbdLocation loc;
    if (text.rfind("rbd://", 0) == 0) {
        auto parts = split(text.substr(6), "/");
        if (parts.size() != 4)
            return bad(text, "an rbd:// location has four parts");
        for (const auto &p : parts)
            if (p.empty())
                return bad(text, "empty part");
        loc.fsid = parts[0];
        loc.pool = parts[1];
        loc.image = parts[2];
        loc.snap = parts[3];
        return loc;
    }
    std::string rest = text.rfind("rbd:", 0) == 0 ? text.substr(4) : text;
    if (rest.find(':') != std::string::npos)
        return bad(text, "options after ':' are not accepted");
    size_t at = rest.find('@');
    if (at != std::string::npos) {
        loc.snap = rest.substr(at + 1);
        rest = rest.substr(0, at);
        if (loc.snap.empty() || loc.snap.find('@') != std::string::npos)
            return bad(text, "bad snapshot name");
    }
    auto parts = split(rest, "/");
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty())
        return bad(text, "expected exactly one '/' between pool and image");
    loc.pool = parts[0];
    loc.image = parts[1];
    return loc;
}

} // namespace rbdclone
