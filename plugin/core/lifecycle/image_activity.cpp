#include "lifecycle/image_activity.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include "base/log.hpp"

namespace rbdclone {

namespace {

struct Registry {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::pair<std::string, Activity>, int> running;
};

// Never destroyed: detached workers may still finish while the process exits.
Registry &registry()
{
    static Registry *r = new Registry;
    return *r;
}

std::string key_of(const Pool &pool, const std::string &image)
{
    return pool.cluster().fsid() + "/" + pool.id().ceph_pool + "/" + image;
}

// Imports: (pool uuid, volume name) -> partial image.
struct Imports {
    std::mutex mu;
    std::map<std::pair<std::string, std::string>, std::string> running;
};

Imports &imports()
{
    static Imports *i = new Imports;
    return *i;
}

const char *name_of(Activity a) { return a == Activity::Upload ? "an upload into" : "a flatten of"; }

} // namespace

ActivityMark::ActivityMark(const Pool &pool, const std::string &image, Activity what)
    : key_(key_of(pool, image)), what_(what)
{
    auto &r = registry();
    std::lock_guard lk(r.mu);
    r.running[{key_, what_}]++;
}

std::unique_ptr<ActivityMark> ActivityMark::try_begin(const Pool &pool, const std::string &image, Activity what)
{
    auto &r = registry();
    std::string key = key_of(pool, image);
    std::lock_guard lk(r.mu);
    int &n = r.running[{key, what}];
    if (n > 0)
        return nullptr;
    n++;
    return std::unique_ptr<ActivityMark>(new ActivityMark(std::move(key), what));
}

ActivityMark::~ActivityMark()
{
    auto &r = registry();
    {
        std::lock_guard lk(r.mu);
        auto it = r.running.find({key_, what_});
        if (it != r.running.end() && --it->second == 0)
            r.running.erase(it);
    }
    r.cv.notify_all();
}

bool wait_for_activity(const Pool &pool, const std::string &image, Activity what, int seconds)
{
    auto &r = registry();
    const auto key = std::make_pair(key_of(pool, image), what);
    std::unique_lock lk(r.mu);
    if (r.cv.wait_for(lk, std::chrono::seconds(seconds), [&] { return r.running.count(key) == 0; }))
        return true;
    log_warn(name_of(what), " ", pool.image_label(image), " is still running after ", seconds, " s");
    return false;
}

ImportMark::ImportMark(const Pool &pool, const std::string &name, const std::string &partial)
    : key_(pool.id().uuid, name)
{
    auto &i = imports();
    std::lock_guard lk(i.mu);
    i.running[key_] = partial;
}

ImportMark::~ImportMark()
{
    auto &i = imports();
    std::lock_guard lk(i.mu);
    i.running.erase(key_);
}

std::optional<std::string> partial_of(const Pool &pool, const std::string &name)
{
    auto &i = imports();
    std::lock_guard lk(i.mu);
    auto it = i.running.find({pool.id().uuid, name});
    if (it == i.running.end())
        return std::nullopt;
    return it->second;
}

bool is_running_partial(const Pool &pool, const std::string &partial)
{
    auto &i = imports();
    std::lock_guard lk(i.mu);
    for (auto &[k, v] : i.running)
        if (k.first == pool.id().uuid && v == partial)
            return true;
    return false;
}

} // namespace rbdclone
