// An image's metadata (rbd image-meta): the one reader every record of this module goes
// through (an encryption record, an image cache entry's identity and times).
#pragma once

#include <rbd/librbd.h>

#include <optional>
#include <string>

#include "base/status.hpp"

namespace rbdclone {

// The value of key; none when the image has no such key; an error (naming label) when it
// cannot be read.
Result<std::optional<std::string>> read_image_metadata(rbd_image_t img, const char *key, const std::string &label);

} // namespace rbdclone
