// The module's opens against a real librbd (plugin/core/ceph/image_open.hpp):
// opens of missing images and missing snapshots among many concurrent
// successful opens on one client, under CPU load, must neither crash nor
// hang the process.  With plain rbd_open_read_only calls this program
// aborted (std::system_error from a librados thread, or a futex error) or
// hung within a minute on librbd 16.2.15: the bug behind libvirtd's crashes
// under concurrent image-cache requests.  Our module only (the stock module
// has no part in it; the test is skipped in the stock run).
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include "ceph/image_open.hpp"
#include "lab_client.hpp"

using namespace lab;

TEST(ImageOpen, MissingImagesAndSnapshotsAmongConcurrentOpensNeitherCrashNorHang)
{
    BEYOND_STOCK();
    const char *secs_env = getenv("RBDCLONE_OPEN_STRESS_SECONDS");
    const int secs = secs_env && *secs_env ? atoi(secs_env) : 30;
    const std::string img = unique("open-stress");
    ceph().create("rbd2", img, 8 * MiB);
    ceph().snapshot("rbd2", img, "snap", true);
    rados_ioctx_t io = ceph().io("rbd2");

    std::atomic<long> opens{0}, wrong{0};
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(secs);
    auto worker = [&] {
        while (std::chrono::steady_clock::now() < end) {
            rbdclone::ImageHandle h;
            if (rbdclone::open_image_by_name(io, img + "-missing", nullptr, true, h) != -ENOENT)
                wrong++;
            if (rbdclone::open_image_by_name(io, img, "no-such-snapshot", true, h) != -ENOENT)
                wrong++;
            if (rbdclone::open_image_by_name(io, img, "snap", true, h) != 0)
                wrong++;
            uint64_t size = 0;
            if (!h || rbd_get_size(h.get(), &size) != 0 || size != 8 * MiB)
                wrong++;
            opens += 3;
        }
    };
    CpuHogs hogs(4);
    std::vector<std::future<void>> workers;
    for (int i = 0; i < 16; i++)
        workers.push_back(std::async(std::launch::async, worker));
    for (auto &w : workers)
        if (w.wait_until(end + std::chrono::seconds(60)) != std::future_status::ready) {
            ADD_FAILURE() << "an open hung for more than 60 s";
            fflush(nullptr);
            _exit(1); // the hung thread cannot be joined
        }
    std::cout << "[ opens    ] " << opens.load() << " opens in " << secs << " s" << std::endl;
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_GT(opens.load(), 0);
    ceph().remove("rbd2", img);
}
