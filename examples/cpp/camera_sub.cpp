// camera-sub-cpp: a C++ camera subscriber (shmbus/shmbus.hpp). Receives frames from
// camera-pub, checks each one (layout and, if it carries one, its checksum) and prints a line
// per frame and a summary.
//
//   camera-sub-cpp [--domain NAME] [--config FILE] [--topic T] [--count N] [--timeout-ms MS]
//
// Exit status: 0 done, 1 shmbus error, 2 usage, 3 a frame was malformed or corrupt, 4 no
// frame within the timeout.
#include <shmbus/shmbus.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char **argv)
{
    std::string domain, topic = "camera/front";
    shmbus::DomainOptions opts;
    opts.participant = "camera-sub-cpp";
    long count = 10, timeout_ms = 5000;
    const char *usage = "usage: camera-sub-cpp [--domain NAME] [--config FILE] [--topic T] "
                        "[--count N] [--timeout-ms MS]\n";
    for (int i = 1; i < argc; i += 2) {
        std::string a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        }
        if (!v) {
            std::fputs(usage, stderr);
            return 2;
        }
        if (a == "--domain")
            domain = v;
        else if (a == "--config")
            opts.config_path = v;
        else if (a == "--topic")
            topic = v;
        else if (a == "--count")
            count = std::atol(v);
        else if (a == "--timeout-ms")
            timeout_ms = std::atol(v);
        else {
            std::fprintf(stderr, "camera-sub-cpp: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    try {
        shmbus::Domain d(domain, opts);
        shmbus::Subscriber sub = d.subscriber(topic);
        long got = 0, bad = 0;
        while (got < count) {
            auto msg = sub.recv(std::chrono::milliseconds(timeout_ms));
            if (!msg) {
                std::fprintf(stderr, "camera-sub-cpp: no frame within %ld ms\n", timeout_ms);
                return 4;
            }
            try {
                shmbus::Frame f = msg->frame();
                bool ok = f.checksum_ok();
                bad += !ok;
                std::printf("frame %llu %ux%u %s seq %llu checksum %s\n",
                            (unsigned long long)f.number(), f.width(), f.height(),
                            f.format_name(), (unsigned long long)msg->seq(),
                            !f.has_checksum() ? "none" : ok ? "ok" : "BAD");
            } catch (const shmbus::Error &e) { // not a frame: counted, the loop goes on
                std::printf("message seq %llu is not a frame: %s\n",
                            (unsigned long long)msg->seq(), e.detail().c_str());
                bad++;
            }
            got++;
        }
        shmbus_sub_counters c = sub.stats();
        std::printf("received %ld frames, %ld bad, lost %llu\n", got, bad,
                    (unsigned long long)(c.expired + c.dropped + c.overflow));
        return bad ? 3 : 0;
    } catch (const shmbus::Error &e) {
        std::fprintf(stderr, "camera-sub-cpp: %s (%s)\n", e.what(), e.name());
        return 1;
    }
}
