#include "source/format_sniff.hpp"

namespace rbdclone {

namespace {

bool at(std::string_view data, size_t off, std::string_view magic)
{
    return data.size() >= off + magic.size() && data.substr(off, magic.size()) == magic;
}

struct Magic {
    const char *format;
    size_t offset;
    std::string_view bytes;
};

using namespace std::string_view_literals;

// Container headers at fixed offsets from the start (as qemu probes them).
constexpr Magic kHeadMagics[] = {
    {"qcow2", 0, "QFI\xfb"sv},                  // qcow and qcow2 (version follows)
    {"qed", 0, "QED\0"sv},
    {"vmdk", 0, "KDMV"sv},                      // sparse extent
    {"vmdk", 0, "COWD"sv},                      // ESX sparse
    {"vmdk", 0, "# Disk DescriptorFile"sv},     // descriptor (names extent files)
    {"vdi", 0x40, "\x7f\x10\xda\xbe"sv},        // little-endian 0xbeda107f
    {"vhdx", 0, "vhdxfile"sv},
    {"vpc", 0, "conectix"sv},                   // dynamic VHD: footer copy at 0
    {"luks", 0, "LUKS\xba\xbe"sv},
    {"parallels", 0, "WithoutFreeSpace"sv},
    {"parallels", 0, "WithouFreSpacExt"sv},
    {"bochs", 0, "Bochs Virtual HD Image"sv},
    {"cloop", 0, "#!/bin/sh\n#V2.0 Format\n"sv},
};

} // namespace

std::string sniff_format(std::string_view head, std::string_view tail)
{
    if (at(head, 0, "QFI\xfb"sv)) {
        // Version 1 is "qcow", 2 and 3 are "qcow2".
        if (head.size() >= 8 && head[7] == 1)
            return "qcow";
        return "qcow2";
    }
    for (const auto &m : kHeadMagics)
        if (at(head, m.offset, m.bytes))
            return m.format;
    // Footers: a fixed VHD is raw data followed by a 512-byte footer, which
    // a guest would see as its last sector; DMG ends with a "koly" trailer.
    if (at(tail, 0, "conectix"sv))
        return "vpc";
    if (at(tail, 0, "koly"sv))
        return "dmg";
    if (at(head, 0x8001, "CD001"sv))
        return "iso";
    return "raw";
}

bool is_raw_compatible(const std::string &format)
{
    return format == "raw" || format == "iso";
}

} // namespace rbdclone
