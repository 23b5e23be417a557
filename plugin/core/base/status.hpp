// Errors as values: every fallible core call returns Result<T>, carrying
// librados/librbd's negative errno, a class for the glue, and a message that
// names the object and the reason.  Only the glue turns it into a libvirt error.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "rbdclone/core.h"

namespace rbdclone {

struct Error {
    int rc = -EIO;                     // negative errno
    rbdc_error_kind kind = RBDC_ERR_INTERNAL;
    std::string message;
};

// The words users should see for the codes they really hit (librbd's -rc).
std::string describe_rc(int rc);

// "<context>: <words for rc>", classed by rc (timeouts, permissions, ...).
Error ceph_error(int rc, const std::string &context);
// Same, with an explicit class.
Error ceph_error(int rc, rbdc_error_kind kind, const std::string &context);
// An error that did not come from Ceph.
Error plain_error(rbdc_error_kind kind, int rc, std::string message);

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error err) : v_(std::move(err)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T &value() & { return std::get<0>(v_); }
    const T &value() const & { return std::get<0>(v_); }
    T &&value() && { return std::get<0>(std::move(v_)); }
    T &operator*() & { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    const Error &error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

// Result<void>
template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error err) : err_(std::move(err)), ok_(false) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error &error() const { return err_; }

  private:
    Error err_;
    bool ok_ = true;
};

using Status = Result<void>;

} // namespace rbdclone
