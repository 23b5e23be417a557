// Core logging: forwarded by the glue to libvirt's log (category
// "storage.storage_backend_rbd"), so `log_filters` selects it.
#pragma once

#include <sstream>
#include <string>

#include "rbdclone/core.h"

namespace rbdclone {

void log_message(rbdc_log_level level, const std::string &msg);
void set_log_sink(rbdc_log_fn fn);

template <typename... Args>
std::string cat(Args &&...args)
{
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}

template <typename... Args>
void log_debug(Args &&...args) { log_message(RBDC_LOG_DEBUG, cat(args...)); }
template <typename... Args>
void log_info(Args &&...args) { log_message(RBDC_LOG_INFO, cat(args...)); }
template <typename... Args>
void log_warn(Args &&...args) { log_message(RBDC_LOG_WARN, cat(args...)); }

// Runs the body of a thread of ours (a detached worker, a copy reader):
// an exception that left it would end libvirtd (std::terminate), so it is
// logged instead.  `what` names the thread's job.
template <typename F>
void thread_body(const char *what, F &&body) noexcept
{
    try {
        body();
        return;
    } catch (const std::exception &e) {
        try {
            log_message(RBDC_LOG_ERROR, std::string(what) + ": internal error: " + e.what());
        } catch (...) {
        }
    } catch (...) {
        try {
            log_message(RBDC_LOG_ERROR, std::string(what) + ": internal error");
        } catch (...) {
        }
    }
}

} // namespace rbdclone
