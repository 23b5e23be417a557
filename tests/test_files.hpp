// Small file helpers shared by the unit and integration test programs.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace testfiles {

// Every byte of a file ("" when it cannot be read).
inline std::string read_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

} // namespace testfiles
