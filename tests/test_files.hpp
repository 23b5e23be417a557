// Small helpers shared by the unit and integration test programs.
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

// The lines of `text` that contain `needle`, for a failure's message.
inline std::string lines_with(const std::string &text, const std::string &needle)
{
    std::istringstream in(text);
    std::string line, out;
    while (std::getline(in, line))
        if (line.find(needle) != std::string::npos)
            out += line + "\n";
    return out;
}

// A GoogleTest parameter name from a row's description: anything but
// letters and digits becomes '_'.
inline std::string param_name(std::string name)
{
    for (auto &c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
    return name;
}

} // namespace testfiles
