// Splitting the short separated lists the module reads (mon_host, feature
// names, RBD locations).
#pragma once

#include <string>
#include <vector>

namespace rbdclone {

// Every part of `s` between any of the characters in `seps`, empty parts
// included ("a,,b" -> "a", "", "b"; "" -> "").
inline std::vector<std::string> split(const std::string &s, const char *seps)
{
    std::vector<std::string> out;
    size_t pos = 0;
    for (;;) {
        size_t end = s.find_first_of(seps, pos);
        out.push_back(s.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
        if (end == std::string::npos)
            return out;
        pos = end + 1;
    }
}

} // namespace rbdclone
