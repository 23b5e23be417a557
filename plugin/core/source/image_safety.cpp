#include "source/image_safety.hpp"

#include <cstdint>

namespace rbdclone {

namespace {

uint64_t be(std::string_view d, size_t off, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | static_cast<unsigned char>(d[off + i]);
    return v;
}

uint64_t le(std::string_view d, size_t off, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | static_cast<unsigned char>(d[off + i]);
    return v;
}

// The name stored at [off, off+len) when it lies in the bytes we have.
std::string quoted_name(std::string_view head, uint64_t off, uint64_t len)
{
    if (len == 0 || off >= head.size() || len > 4096 || off + len > head.size())
        return "";
    std::string name;
    for (char c : head.substr(off, len))
        name += (c >= 0x20 && c < 0x7f) ? c : '?';
    return " '" + name + "'";
}

std::string qcow_references(std::string_view h)
{
    if (h.size() < 20)
        return "its qcow header is truncated";
    const uint64_t version = be(h, 4, 4);
    const uint64_t backing_off = be(h, 8, 8);
    const uint64_t backing_len = be(h, 16, 4);
    if (backing_off != 0 || backing_len != 0)
        return "it names a backing file" + quoted_name(h, backing_off, backing_len) +
               ", which is never followed";
    if (version >= 3) {
        if (h.size() < 80)
            return "its qcow2 header is truncated";
        constexpr uint64_t kExternalDataFile = 1u << 2;
        if (be(h, 72, 8) & kExternalDataFile)
            return "it keeps its data in an external data file, which is never followed";
    }
    return "";
}

std::string qed_references(std::string_view h)
{
    if (h.size() < 64)
        return "its QED header is truncated";
    constexpr uint64_t kBackingFile = 1;
    const uint64_t features = le(h, 16, 8);
    const uint64_t backing_off = le(h, 56, 4);
    const uint64_t backing_len = le(h, 60, 4);
    if ((features & kBackingFile) || backing_len != 0)
        return "it names a backing file" + quoted_name(h, backing_off, backing_len) +
               ", which is never followed";
    return "";
}

std::string vmdk_references(std::string_view h)
{
    if (h.substr(0, 4) != "KDMV")
        // Text descriptors and ESX "COWD" images list other files as
        // extents or parents.
        return "it is a VMDK descriptor or ESX sparse image that names other files";
    // The embedded descriptor of a sparse VMDK: a delta disk names its parent.
    if (h.size() < 44)
        return "its VMDK header is truncated";
    const uint64_t desc_off = le(h, 28, 8) * 512;
    const uint64_t desc_len = le(h, 36, 8) * 512;
    if (desc_off && desc_off < h.size()) {
        std::string_view desc = h.substr(desc_off, std::min<uint64_t>(desc_len, h.size() - desc_off));
        if (desc.find("parentFileNameHint") != std::string_view::npos)
            return "it is a VMDK delta disk that names a parent file, which is never followed";
    }
    return "";
}

} // namespace

bool is_convertible(const std::string &f)
{
    return f == "qcow2" || f == "qcow" || f == "qed" || f == "vmdk" || f == "vdi" || f == "vhdx" ||
           f == "vpc" || f == "parallels" || f == "bochs" || f == "cloop" || f == "dmg";
}

std::string external_reference(const std::string &format, std::string_view head)
{
    if (format == "qcow2" || format == "qcow")
        return qcow_references(head);
    if (format == "qed")
        return qed_references(head);
    if (format == "vmdk")
        return vmdk_references(head);
    return "";
}

} // namespace rbdclone
