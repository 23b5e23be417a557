#include "ceph/pool_policy.hpp"

#include <map>
#include <set>

#include "base/log.hpp"

namespace rbdclone {

namespace {

Error bad(const std::string &message) { return plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, message); }

std::string where(const PolicyAttribute &a)
{
    return "attribute '" + a.name + "' of <rbd:" + a.element + ">";
}

// The value among `choices` (returned as its index), or an error listing them.
Result<size_t> choice(const PolicyAttribute &a, const std::vector<std::string> &choices)
{
    for (size_t i = 0; i < choices.size(); i++)
        if (a.value == choices[i])
            return i;
    std::string list;
    for (size_t i = 0; i < choices.size(); i++)
        list += (i == 0 ? "'" : i + 1 == choices.size() ? " or '" : ", '") + choices[i] + "'";
    return bad("invalid value '" + a.value + "' of " + where(a) + ": expected " + list);
}

Result<unsigned> whole_number(const PolicyAttribute &a, unsigned max)
{
    unsigned long v = 0;
    bool ok = !a.value.empty() && a.value.size() <= 10;
    for (char c : a.value)
        ok = ok && c >= '0' && c <= '9';
    if (ok)
        v = std::stoul(a.value);
    if (!ok || v > max)
        return bad("invalid value '" + a.value + "' of " + where(a) + ": expected a whole number from 0 to " +
                   std::to_string(max));
    return static_cast<unsigned>(v);
}

Result<uint64_t> byte_size(const PolicyAttribute &a)
{
    const std::string &v = a.value;
    size_t i = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9')
        i++;
    std::string unit = v.substr(i);
    static const std::map<std::string, unsigned> shifts = {
        {"", 0}, {"B", 0}, {"K", 10}, {"KiB", 10}, {"M", 20}, {"MiB", 20},
        {"G", 30}, {"GiB", 30}, {"T", 40}, {"TiB", 40}, {"P", 50}, {"PiB", 50}};
    auto sh = shifts.find(unit);
    if (i == 0 || i > 15 || sh == shifts.end())
        return bad("invalid value '" + v + "' of " + where(a) +
                   ": expected a size in bytes, or with a unit K, M, G, T or P (powers of 1024)");
    uint64_t n = std::stoull(v.substr(0, i));
    if (sh->second && n > (UINT64_MAX >> sh->second))
        return bad("invalid value '" + v + "' of " + where(a) + ": too large");
    return n << sh->second;
}

} // namespace

// Sets the policy field the (known, first-seen) attribute names.
static Status apply_attribute(const PolicyAttribute &a, PoolPolicy &p)
{
    if (a.name == "format") {
        auto c = choice(a, {"auto", "1", "2"});
        if (!c)
            return c.error();
        p.clone_format = static_cast<CloneFormat>(*c);
    } else if (a.name == "flatten") {
        auto c = choice(a, {"never", "depth", "always"});
        if (!c)
            return c.error();
        p.flatten = static_cast<FlattenPolicy>(*c);
    } else if (a.name == "delete") {
        auto c = choice(a, {"refuse", "deferred"});
        if (!c)
            return c.error();
        p.on_delete = static_cast<DeletePolicy>(*c);
    } else if (a.name == "enabled") {
        auto c = choice(a, {"no", "yes"});
        if (!c)
            return c.error();
        p.cache_enabled = *c == 1;
    } else if (a.name == "max_size") {
        auto n = byte_size(a);
        if (!n)
            return n.error();
        p.cache_max_size = *n;
    } else if (a.name == "max_depth") {
        auto n = whole_number(a, kMaxMaxDepth);
        if (!n)
            return n.error();
        p.max_depth = *n;
    }
    return {};
}

Result<PoolPolicy> parse_pool_policy(const std::vector<PolicyAttribute> &attrs)
{
    static const std::map<std::string, std::set<std::string>> known = {
        {"clone", {"format", "max_depth", "flatten", "delete"}},
        {"image_cache", {"enabled", "max_size"}},
    };
    PoolPolicy p;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto &a : attrs) {
        auto el = known.find(a.element);
        if (el == known.end())
            return bad("unknown element <rbd:" + a.element + "> in the pool's rbd namespace (known: <rbd:clone>, "
                       "<rbd:image_cache>, <rbd:config_opts>)");
        if (!el->second.count(a.name)) {
            std::string list;
            for (const auto &n : el->second)
                list += (list.empty() ? "" : ", ") + n;
            return bad("unknown " + where(a) + " (known: " + list + ")");
        }
        if (!seen.emplace(a.element, a.name).second)
            return bad(where(a) + " is given twice");
        if (auto st = apply_attribute(a, p); !st)
            return st.error();
    }
    const bool has_depth = seen.count({"clone", "max_depth"}) != 0;
    const bool has_flatten = seen.count({"clone", "flatten"}) != 0;
    if (has_depth && !has_flatten)
        p.flatten = FlattenPolicy::Depth;
    if (has_depth && p.flatten != FlattenPolicy::Depth)
        return bad(cat("attribute 'max_depth' of <rbd:clone> needs flatten='depth' (it is ignored with flatten='",
                       p.flatten == FlattenPolicy::Never ? "never" : "always", "')"));
    return p;
}

} // namespace rbdclone
