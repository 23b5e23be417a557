// Move-only RAII owners of librados/librbd C handles.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstdint>
#include <utility>

namespace rbdclone {

// librbd calls the progress callback of rbd_resize2, rbd_flatten_with_progress & co.
// unconditionally: it must not be NULL. This one wants no progress.
inline int no_progress(uint64_t, uint64_t, void *) { return 0; }

template <typename H, void (*Close)(H)>
class Handle {
  public:
    Handle() = default;
    explicit Handle(H h) : h_(h) {}
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    Handle(Handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Handle &operator=(Handle &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    ~Handle() { reset(); }

    H get() const { return h_; }
    H *out() { reset(); return &h_; }   // for C calls that fill a handle
    explicit operator bool() const { return h_ != nullptr; }
    void reset()
    {
        if (h_)
            Close(std::exchange(h_, nullptr));
    }

  private:
    H h_ = nullptr;
};

namespace detail {
inline void close_rados(rados_t h) { rados_shutdown(h); }
inline void close_ioctx(rados_ioctx_t h) { rados_ioctx_destroy(h); }
inline void close_image(rbd_image_t h) { rbd_close(h); }
inline void close_completion(rbd_completion_t h) { rbd_aio_release(h); }
} // namespace detail

using RadosHandle = Handle<rados_t, detail::close_rados>;
using IoCtxHandle = Handle<rados_ioctx_t, detail::close_ioctx>;
using ImageHandle = Handle<rbd_image_t, detail::close_image>;
using CompletionHandle = Handle<rbd_completion_t, detail::close_completion>;

// rbd_image_options_t is created by rbd_image_options_create(&opts).
class ImageOptions {
  public:
    ImageOptions() { rbd_image_options_create(&opts_); }
    ImageOptions(const ImageOptions &) = delete;
    ImageOptions &operator=(const ImageOptions &) = delete;
    ~ImageOptions() { rbd_image_options_destroy(opts_); }
    rbd_image_options_t get() const { return opts_; }

  private:
    rbd_image_options_t opts_ = nullptr;
};

} // namespace rbdclone
