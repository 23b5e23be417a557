#include "names.hpp"

namespace rbdclone {

std::string image_name_problem(const std::string &name)
{
    if (name.empty())
        return "an RBD image name must not be empty";
    if (name.size() > kMaxImageNameBytes)
        return "it is " + std::to_string(name.size()) + " bytes long, more than the " +
               std::to_string(kMaxImageNameBytes) + " RBD accepts";
    if (name.find('/') != std::string::npos)
        return "'/' separates the pool from the image in RBD paths";
    if (auto at = name.find('@'); at != std::string::npos)
        return "qemu reads '@' as a snapshot separator: it would open snapshot '" + name.substr(at + 1) +
               "' of image '" + name.substr(0, at) + "'";
    if (name.find(':') != std::string::npos)
        return "qemu's rbd: filename syntax reads ':' as an option separator";
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f)
            return "it contains a control character";
    if (name == "." || name == "..")
        return "'.' and '..' are not image names";
    return "";
}

} // namespace rbdclone
