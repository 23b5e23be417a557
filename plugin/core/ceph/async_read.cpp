#include "ceph/async_read.hpp"

#include <cerrno>

namespace rbdclone {

AsyncRead::AsyncRead() : op_(rados_create_read_op()) {}

AsyncRead::~AsyncRead()
{
    if (sent_)
        (void)wait();
    if (completion_)
        rados_aio_release(completion_);
    rados_release_read_op(op_);
}

size_t AsyncRead::exec(const char *cls, const char *method, const std::string &arg)
{
    Reply &r = replies_.emplace_back();
    rados_read_op_exec(op_, cls, method, arg.data(), arg.size(), &r.out.p, &r.out.len, &r.rv);
    return replies_.size() - 1;
}

size_t AsyncRead::read(uint64_t off, size_t len)
{
    Reply &r = replies_.emplace_back();
    r.is_read = true;
    r.bytes.resize(len);
    rados_read_op_read(op_, off, len, r.bytes.data(), &r.len, &r.rv);
    return replies_.size() - 1;
}

bool AsyncRead::send(rados_ioctx_t io, const std::string &oid, bool failok)
{
    if (failok)
        rados_read_op_set_flags(op_, LIBRADOS_OP_FLAG_FAILOK);
    if (rados_aio_create_completion2(nullptr, nullptr, &completion_) < 0) {
        completion_ = nullptr;
        return false;
    }
    if (rados_aio_read_op_operate(op_, io, completion_, oid.c_str(), 0) < 0)
        return false;
    sent_ = true;
    return true;
}

int AsyncRead::wait()
{
    if (!sent_)
        return -EIO;
    if (!waited_) {
        rados_aio_wait_for_complete(completion_);
        rc_ = rados_aio_get_return_value(completion_);
        waited_ = true;
    }
    return rc_;
}

} // namespace rbdclone
