#include "ceph/image_metadata.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/log.hpp"

namespace rbdclone {

Result<std::optional<std::string>> read_image_metadata(rbd_image_t img, const char *key, const std::string &label)
{
    std::vector<char> buf(256);
    for (int tries = 0; tries < 3; tries++) {
        size_t len = buf.size();
        int r = rbd_metadata_get(img, key, buf.data(), &len);
        if (r == -ERANGE && len > buf.size()) { // librbd says how much it needs
            buf.resize(len);
            continue;
        }
        if (r == -ENOENT)
            return std::optional<std::string>();
        if (r < 0)
            return ceph_error(r, cat("failed to read the metadata '", key, "' of ", label));
        return std::optional<std::string>(std::string(buf.data(), strnlen(buf.data(), std::min(len, buf.size()))));
    }
    return ceph_error(-ERANGE, cat("failed to read the metadata '", key, "' of ", label, ": it keeps growing"));
}

} // namespace rbdclone
