// Recognises disk image containers from their bytes, so that an image that
// is declared raw but holds a qcow2 (or other) container is never handed to
// a guest as a raw disk.  Only magic numbers are read; nothing is parsed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rbdclone {

// "raw" when no known container header is found, "iso" for an ISO 9660
// image (raw-compatible), else the container's qemu format name.
// `head` is the first bytes of the image (64 KiB suffice), `tail` its last
// 512 bytes (VHD fixed disks and DMG keep their footer there; may be empty).
std::string sniff_format(std::string_view head, std::string_view tail);

// How many bytes sniff_format wants from the start of the image.
inline constexpr size_t kSniffHeadBytes = 64 * 1024;
inline constexpr size_t kSniffTailBytes = 512;

// Formats a guest may see as raw: the image bytes are the disk.
bool is_raw_compatible(const std::string &format);

} // namespace rbdclone
