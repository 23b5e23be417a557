// One compound read of one RADOS object, sent without waiting: class-method
// calls of the OSD's object classes and plain reads, whose replies live in
// it.  Several of them in flight at once make one round trip of several
// questions (ceph/header_view.cpp, ceph/image_info.cpp).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "ceph/handles.hpp"

namespace rbdclone {

// A buffer librados allocated for a class method's reply.
struct RadosBuf {
    char *p = nullptr;
    size_t len = 0;
    int rv = 0;
    RadosBuf() = default;
    RadosBuf(const RadosBuf &) = delete;
    RadosBuf &operator=(const RadosBuf &) = delete;
    ~RadosBuf() { reset(); }
    void reset()
    {
        if (p)
            rados_buffer_free(p);
        p = nullptr;
        len = 0;
        rv = 0;
    }
};

class AsyncRead {
  public:
    // One reply of the read: a class method's output (allocated by
    // librados) or a plain read's bytes, and its own status.
    struct Reply {
        bool is_read = false;
        RadosBuf out;            // a class method's
        std::vector<char> bytes; // a plain read's buffer, of which `len` were read
        size_t len = 0;
        int rv = 0;
        const char *data() const { return is_read ? bytes.data() : out.p; }
        size_t size() const { return is_read ? len : out.len; }
    };

    AsyncRead();
    AsyncRead(const AsyncRead &) = delete;
    AsyncRead &operator=(const AsyncRead &) = delete;
    // Waits for a request still in flight: its replies are written into us.
    ~AsyncRead();

    // Adds a call of cls.method(arg); returns the index of its reply.
    size_t exec(const char *cls, const char *method, const std::string &arg);
    // Adds a read of [off, off + len) of the object.
    size_t read(uint64_t off, size_t len);
    // Sends it (every call may fail on its own: `failok`).  False: not sent.
    bool send(rados_ioctx_t io, const std::string &oid, bool failok);
    // The whole read's return code (waits for it once).
    int wait();
    const Reply &reply(size_t i) const { return replies_[i]; }

  private:
    rados_read_op_t op_ = nullptr;
    rados_completion_t completion_ = nullptr;
    std::deque<Reply> replies_; // stable addresses: librados writes into them
    bool sent_ = false, waited_ = false;
    int rc_ = 0;
};

} // namespace rbdclone
