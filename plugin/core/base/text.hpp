// Splitting the short separated lists the module reads (mon_host, feature
// names, RBD locations), and the hexadecimal words of names and cookies.
#pragma once

#include <cstdint>
#include <cstdio>
#include <random>
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

// v as 16 lower-case hexadecimal digits, zero-padded: how RADOS object
// names carry snapshot and object numbers, and how the module writes
// checksums and cookies.
inline std::string hex16(uint64_t v)
{
    char b[17];
    snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
    return b;
}

// 16 random hexadecimal digits: lock cookies and temporary names that must
// not collide between daemons.
inline std::string random_hex16()
{
    thread_local std::mt19937_64 gen{std::random_device{}()};
    return hex16(gen());
}

} // namespace rbdclone
