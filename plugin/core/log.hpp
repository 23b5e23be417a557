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

} // namespace rbdclone
