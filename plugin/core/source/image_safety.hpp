// What a disk image container may make qemu open besides the image itself.
// A qcow2 naming /etc/shadow as its backing file or external data file would
// make a conversion copy that file into the new volume, so such images are
// refused from their header bytes before qemu is started on them.
#pragma once

#include <string>
#include <string_view>

namespace rbdclone {

// Why `format` (a qemu format name) stored with these first bytes must not
// be converted, or "" when nothing in the header names another file.
// `head` is the image's first bytes (kSniffHeadBytes suffice).
std::string external_reference(const std::string &format, std::string_view head);

// Formats the copy path converts with qemu (explicit driver, no probing).
bool is_convertible(const std::string &format);

} // namespace rbdclone
