#include "create/source_copy.hpp"

#include <future>

#include "base/log.hpp"
#include "io/copy_engine.hpp"

namespace rbdclone {

namespace {

// qemu-img converts straight into the hidden image (qemu's rbd driver); with checksum, the
// source file's own checksum is read alongside.
Result<CopyStats> convert_with_qemu_img(Source &src, Pool &dst, const std::string &image, uint64_t capacity,
                                        bool checksum, const ImageSealer &seal)
{
    auto img = src.container();
    if (!img)
        return img.error();
    auto size = (*img)->virtual_size();
    if (!size)
        return size.error();
    // The checksum of the source's own bytes, read alongside the conversion.
    std::future<Result<uint64_t>> sum;
    if (checksum)
        sum = std::async(std::launch::async, [path = src.path()]() -> Result<uint64_t> {
            auto f = open_file_source(path);
            if (!f)
                return f.error();
            return source_checksum(**f);
        });
    auto r = import_with(
        dst, image, capacity, *size, src.label(),
        [&](const std::string &partial) -> Result<CopyStats> {
            if (auto st = (*img)->convert_into(dst.params(), dst.id().ceph_pool, partial); !st)
                return st.error();
            CopyStats s;
            s.bytes_read = *size;
            if (checksum) {
                auto c = sum.get();
                if (!c)
                    return c.error();
                s.checksum = *c;
                s.checksum_of_stored = true;
            }
            return s;
        },
        seal);
    if (sum.valid())
        sum.wait();
    return r;
}

} // namespace

Result<CopyStats> copy_source(Source &src, const std::string &format, Pool &dst, const std::string &image,
                              uint64_t capacity, bool checksum, const ImageSealer &seal, const VolumeKey *dst_key)
{
    CopyOptions opts;
    opts.checksum = checksum;
    if (format == "raw") {
        auto raw = src.bytes();
        if (!raw)
            return raw.error();
        return import_image(dst, image, capacity, **raw, opts, seal, dst_key);
    }
    if (src.encrypted()) // qemu would read its stored bytes, not the guest's
        return plain_error(RBDC_ERR_UNSUPPORTED, -ENOTSUP,
                           cat("cannot convert ", src.label(), ": its guest sees a ", format,
                               " container inside librbd's encryption, which qemu cannot open through libvirt's "
                               "storage API"));
    // qemu-img writes the image itself (qemu's rbd driver): one process, no
    // socket hop, measured faster than reading through qemu-nbd.  The
    // checksum of an RBD container's guest-visible bytes needs the reader.
    if (qemu_img_writes_rbd() && (!checksum || !src.is_rbd()) && !dst_key)
        return convert_with_qemu_img(src, dst, image, capacity, checksum, seal);
    auto img = src.container();
    if (!img)
        return img.error();
    auto reader = QemuImage::reader(std::move(*img));
    if (!reader)
        return reader.error();
    return import_image(dst, image, capacity, **reader, opts, seal, dst_key);
}

} // namespace rbdclone
