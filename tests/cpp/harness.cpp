// The C++ test harness (harness.hpp).
#include "harness.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace harness {

namespace {
struct Registry {
    std::vector<std::pair<std::string, TestFn>> tests;
    std::map<std::string, ChildFn> children;
    std::vector<Child> live; // children the running test started
    Env env;
    std::string self;
};
Registry &reg()
{
    static Registry r;
    return r;
}

std::string shm_dir()
{
    const char *d = std::getenv("SHMBUS_SHM_DIR");
    return d && *d ? d : "/dev/shm";
}

void remove_segments(const std::string &dom)
{
    std::string dir = shm_dir(), prefix = "shmbus." + dom + ".";
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d))
            if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0)
                unlink((dir + "/" + e->d_name).c_str());
        closedir(d);
    }
}

void remove_tree(const std::string &path)
{
    if (DIR *d = opendir(path.c_str())) {
        while (dirent *e = readdir(d)) {
            std::string n = e->d_name;
            if (n == "." || n == "..")
                continue;
            std::string p = path + "/" + n;
            if (e->d_type == DT_DIR)
                remove_tree(p);
            else
                unlink(p.c_str());
        }
        closedir(d);
    }
    rmdir(path.c_str());
}
} // namespace

void fail(const char *file, int line, const std::string &what)
{
    throw Failure(std::string(file) + ":" + std::to_string(line) + ": " + what);
}

const Env &env() { return reg().env; }

Reg::Reg(const char *name, TestFn fn) { reg().tests.emplace_back(name, fn); }
ChildReg::ChildReg(const char *role, ChildFn fn) { reg().children[role] = fn; }

Child spawn_program(const std::string &path, const std::vector<std::string> &argv)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        fail(__FILE__, __LINE__, "pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char *> av;
    av.push_back(const_cast<char *>(path.c_str()));
    for (const auto &a : argv)
        av.push_back(const_cast<char *>(a.c_str()));
    av.push_back(nullptr);
    Child c;
    int rc = posix_spawn(&c.pid, path.c_str(), &fa, nullptr, av.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0)
        fail(__FILE__, __LINE__, "posix_spawn " + path + ": " + std::strerror(rc));
    c.in = in[1];
    c.out = out[0];
    reg().live.push_back(c);
    return c;
}

Child spawn(const std::string &role, const std::vector<std::string> &args)
{
    std::vector<std::string> av{"--child", role};
    av.insert(av.end(), args.begin(), args.end());
    return spawn_program(reg().self, av);
}

void say(const Child &c, const std::string &line)
{
    std::string s = line + "\n";
    if (write(c.in, s.data(), s.size()) != ssize_t(s.size()))
        fail(__FILE__, __LINE__, "write to child failed");
}

std::string expect_line(const Child &c, std::chrono::milliseconds timeout)
{
    std::string line;
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        pollfd p{c.out, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, int(left.count())) <= 0)
            fail(__FILE__, __LINE__, "no line from child " + std::to_string(c.pid) +
                                         " in time (so far: \"" + line + "\")");
        char ch;
        ssize_t n = read(c.out, &ch, 1);
        if (n <= 0)
            fail(__FILE__, __LINE__, "child " + std::to_string(c.pid) +
                                         " closed its output (so far: \"" + line + "\")");
        if (ch == '\n')
            return line;
        line += ch;
    }
}

static void forget(const Child &c)
{
    auto &l = reg().live;
    for (auto it = l.begin(); it != l.end(); ++it)
        if (it->pid == c.pid) {
            close(it->in);
            close(it->out);
            l.erase(it);
            return;
        }
}

int wait_exit(Child &c, std::chrono::milliseconds timeout)
{
    auto end = std::chrono::steady_clock::now() + timeout;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(c.pid, &st, WNOHANG);
        if (r == c.pid)
            break;
        if (std::chrono::steady_clock::now() > end) {
            kill9(c);
            fail(__FILE__, __LINE__,
                 "child " + std::to_string(c.pid) + " still ran at the deadline");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    forget(c);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void kill9(Child &c)
{
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    forget(c);
}

void tell_parent(const std::string &line)
{
    std::cout << line << std::endl;
}

std::string read_parent()
{
    std::string line;
    std::getline(std::cin, line);
    return line;
}

int segments(const std::string &dom)
{
    int n = 0;
    std::string prefix = "shmbus." + dom + ".";
    if (DIR *d = opendir(shm_dir().c_str())) {
        while (dirent *e = readdir(d))
            n += std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0;
        closedir(d);
    }
    return n;
}

int run(int argc, char **argv)
{
    Registry &r = reg();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    r.self = n > 0 ? std::string(self, std::size_t(n)) : argv[0];
    if (argc >= 3 && std::string(argv[1]) == "--child") {
        prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test
        auto it = r.children.find(argv[2]);
        if (it == r.children.end())
            return 99;
        try {
            return it->second(std::vector<std::string>(argv + 3, argv + argc));
        } catch (const std::exception &e) {
            std::fprintf(stderr, "child %s: %s\n", argv[2], e.what());
            return 10;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int passed = 0, failed = 0, seq = 0;
    for (auto &[name, fn] : r.tests) {
        bool wanted = argc < 2;
        for (int i = 1; i < argc; i++)
            wanted |= name == argv[i];
        if (!wanted)
            continue;
        r.env.dom = "cpp" + std::to_string(getpid()) + "x" + std::to_string(seq++);
        char tmpl[] = "/tmp/shmbus-cpptest.XXXXXX";
        r.env.rundir = mkdtemp(tmpl) ? tmpl : "/tmp";
        setenv("SHMBUS_RUNTIME_DIR", r.env.rundir.c_str(), 1);
        setenv("SHMBUS_NODE_DOMAIN", r.env.dom.c_str(), 1);
        std::string err;
        try {
            fn();
        } catch (const std::exception &e) {
            err = e.what();
        }
        while (!r.live.empty())
            kill9(r.live.back());
        if (err.empty() && segments(r.env.dom) != 0)
            err = std::to_string(segments(r.env.dom)) + " segments of " + r.env.dom + " left";
        remove_segments(r.env.dom);
        remove_tree(r.env.rundir);
        if (err.empty()) {
            std::printf("[ PASSED ] %s\n", name.c_str());
            passed++;
        } else {
            std::printf("[ FAILED ] %s: %s\n", name.c_str(), err.c_str());
            failed++;
        }
        std::fflush(stdout);
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}

} // namespace harness

int main(int argc, char **argv) { return harness::run(argc, argv); }
