#include "io/byte_source.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/log.hpp"
#include "ceph/image_open.hpp"

namespace rbdclone {

Status ByteSource::for_each_data_extent(const std::function<Status(const Extent &)> &cb)
{
    if (size() == 0)
        return {};
    return cb(Extent{0, size()});
}

Status read_head_tail(ByteSource &src, size_t head, size_t tail, std::string &head_out,
                      std::string &tail_out)
{
    const uint64_t size = src.size();
    head_out.assign(static_cast<size_t>(std::min<uint64_t>(size, head)), '\0');
    if (!head_out.empty())
        if (auto st = src.read_exact(0, head_out.data(), head_out.size()); !st)
            return st;
    tail_out.clear();
    if (size >= head + tail && tail > 0) {
        tail_out.assign(tail, '\0');
        if (auto st = src.read_exact(size - tail, tail_out.data(), tail); !st)
            return st;
    }
    return {};
}

namespace {

class FileSource final : public ByteSource {
  public:
    FileSource(int fd, std::string label, uint64_t size, bool seekable_holes)
        : fd_(fd), label_(std::move(label)), size_(size), holes_(seekable_holes) {}
    ~FileSource() override { ::close(fd_); }

    const std::string &label() const override { return label_; }
    uint64_t size() const override { return size_; }

    Status for_each_data_extent(const std::function<Status(const Extent &)> &cb) override
    {
        if (!holes_)
            return ByteSource::for_each_data_extent(cb);
        uint64_t pos = 0;
        while (pos < size_) {
            off_t data = lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
            if (data < 0) {
                if (errno == ENXIO) // only a hole up to the end
                    return {};
                if (errno == EINVAL) // no hole support after all: all data
                    return cb(Extent{pos, size_ - pos});
                return plain_error(RBDC_ERR_SYSTEM, -errno,
                                   "failed to find the data of " + label_ + ": " + strerror(errno));
            }
            if (static_cast<uint64_t>(data) >= size_)
                return {};
            off_t hole = lseek(fd_, data, SEEK_HOLE);
            if (hole < 0)
                return plain_error(RBDC_ERR_SYSTEM, -errno,
                                   "failed to find the holes of " + label_ + ": " + strerror(errno));
            uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size_);
            if (auto st = cb(Extent{static_cast<uint64_t>(data), end - data}); !st)
                return st;
            pos = end;
        }
        return {};
    }

    Status read_exact(uint64_t off, char *buf, size_t len) override
    {
        while (len > 0) {
            ssize_t r = pread(fd_, buf, len, static_cast<off_t>(off));
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return plain_error(RBDC_ERR_SYSTEM, -errno,
                                   cat("failed to read ", label_, " at offset ", off, ": ", strerror(errno)));
            }
            if (r == 0)
                return plain_error(RBDC_ERR_SYSTEM, -EIO,
                                   cat(label_, " ended at offset ", off, " while reading it (", size_,
                                       " bytes expected): it was truncated while being copied"));
            buf += r;
            off += static_cast<uint64_t>(r);
            len -= static_cast<size_t>(r);
        }
        return {};
    }

  private:
    int fd_;
    std::string label_;
    uint64_t size_;
    bool holes_;
};

} // namespace

Result<std::unique_ptr<ByteSource>> open_file_source(const std::string &path)
{
    const std::string label = "'" + path + "'";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return plain_error(e == ENOENT ? RBDC_ERR_NO_VOLUME : RBDC_ERR_SYSTEM, -e,
                           "cannot open " + label + " for reading: " + strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        ::close(fd);
        return plain_error(RBDC_ERR_SYSTEM, -e, "cannot stat " + label + ": " + strerror(e));
    }
    uint64_t size = 0;
    bool holes = false;
    if (S_ISREG(sb.st_mode)) {
        size = static_cast<uint64_t>(sb.st_size);
        holes = true;
    } else if (S_ISBLK(sb.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
            int e = errno;
            ::close(fd);
            return plain_error(RBDC_ERR_SYSTEM, -e, "cannot get the size of block device " + label + ": " +
                                                        strerror(e));
        }
    } else {
        ::close(fd);
        return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                           label + " is neither a regular file nor a block device");
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<ByteSource>(new FileSource(fd, label, size, holes));
}

namespace {
int collect_extent(uint64_t off, size_t len, int exists, void *arg)
{
    if (!exists)
        return 0;
    auto &v = *static_cast<std::vector<Extent> *>(arg);
    if (!v.empty() && v.back().offset + v.back().length == off)
        v.back().length += len;
    else
        v.push_back(Extent{off, len});
    return 0;
}
} // namespace

Status RbdSource::for_each_data_extent(const std::function<Status(const Extent &)> &cb)
{
    if (encrypted_)
        return ByteSource::for_each_data_extent(cb);
    // Collected first: the callback does I/O, which must not run inside
    // librbd's diff walk.
    std::vector<Extent> extents;
    int r = rbd_diff_iterate2(img_.get(), nullptr, 0, size_, /*include_parent=*/1, /*whole_object=*/1,
                              collect_extent, &extents);
    if (r < 0)
        return ceph_error(r, "failed to find the allocated ranges of " + label_);
    for (const Extent &e : extents)
        if (auto st = cb(e); !st)
            return st;
    return {};
}

Status RbdSource::read_exact(uint64_t off, char *buf, size_t len)
{
    ssize_t r = rbd_read2(img_.get(), off, len, buf,
                          LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL | LIBRADOS_OP_FLAG_FADVISE_NOCACHE);
    if (r < 0)
        return ceph_error(static_cast<int>(r), cat("failed to read ", label_, " at offset ", off));
    if (static_cast<size_t>(r) != len)
        return plain_error(RBDC_ERR_SYSTEM, -EIO,
                           cat("short read of ", label_, " at offset ", off, ": ", r, " of ", len, " bytes"));
    return {};
}

Result<std::unique_ptr<RbdSource>> open_rbd_source(rados_ioctx_t io, const std::string &image,
                                                   const std::string &snap, const std::string &label,
                                                   const std::string &id, const VolumeKey *key)
{
    ImageHandle img;
    int r = id.empty() ? open_image_by_name(io, image, snap.c_str(), true, img)
                       : open_image_by_id(io, id, snap.c_str(), true, img);
    if (r == -ENOENT)
        return plain_error(RBDC_ERR_NO_VOLUME, r,
                           snap.empty() ? label + " does not exist"
                                        : "snapshot '" + snap + "' of " + label + " does not exist");
    if (r < 0)
        return ceph_error(r, "failed to open " + label);
    if (key)
        if (auto st = load_key(img.get(), *key, label); !st)
            return st.error();
    uint64_t size = 0;
    if ((r = rbd_get_size(img.get(), &size)) < 0)
        return ceph_error(r, "failed to get the size of " + label);
    return std::make_unique<RbdSource>(std::move(img), label, size, key != nullptr);
}

} // namespace rbdclone
