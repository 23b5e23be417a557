#include "base/log.hpp"

#include <atomic>

namespace rbdclone {

static std::atomic<rbdc_log_fn> g_sink{nullptr};

void set_log_sink(rbdc_log_fn fn) { g_sink.store(fn); }

void log_message(rbdc_log_level level, const std::string &msg)
{
    if (auto fn = g_sink.load())
        fn(level, msg.c_str());
}

} // namespace rbdclone
