// Runs last: its file is linked last.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "lab_client.hpp"

using namespace lab;

// The daemon survived everything above and
// our module wrote nothing to its stderr.
TEST(ZDaemonHealth, LibvirtdIsAliveAndItsStderrHoldsNothingOfOurs)
{
    pid_t pid = std::stoi(env("LIBVIRTD_PID"));
    EXPECT_EQ(kill(pid, 0), 0) << "libvirtd (pid " << pid << ") is gone";
    EXPECT_EQ(virConnectIsAlive(storage()), 1);
    if (!testing_stock()) {
        // librados prints its own errors (e.g. a refused key while hunting
        // for a monitor) to the process's stderr whatever its settings say;
        // anything else there would be ours.
        FILE *f = fopen((env("LIBVIRTD_LAB_DIR") + "/libvirtd.stderr").c_str(), "r");
        ASSERT_NE(f, nullptr);
        char line[2048];
        std::string stray;
        while (fgets(line, sizeof(line), f)) {
            std::string l = line;
            if (l == "\n")
                continue; // Ceph's log lines end with an empty line
            bool ceph_log = l.size() > 30 && l[4] == '-' && l[10] == 'T' && l.find(" -1 ") != std::string::npos;
            bool msgr_banner = l.find("is using msgr V1 protocol") != std::string::npos;
            if (!ceph_log || msgr_banner)
                stray += l;
        }
        fclose(f);
        EXPECT_EQ(stray, "");
    }
}
