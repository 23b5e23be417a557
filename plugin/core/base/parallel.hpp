// Work on many images with a bounded number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

#include "base/log.hpp"

namespace rbdclone {

// Calls fn(i) for every i in [0, n), on at most `width` threads (the
// calling one among them), and returns when every call has returned.  fn
// must not throw (an exception is logged and ends that thread's share).
template <typename F>
void for_each_bounded(size_t n, size_t width, const char *what, const F &fn)
{
    std::atomic<size_t> next{0};
    auto worker = [&] {
        thread_body(what, [&] {
            for (size_t i; (i = next.fetch_add(1)) < n;)
                fn(i);
        });
    };
    std::vector<std::thread> helpers;
    const size_t threads = std::min(width, n);
    for (size_t t = 1; t < threads; t++)
        helpers.emplace_back(worker);
    worker();
    for (auto &t : helpers)
        t.join();
}

} // namespace rbdclone
