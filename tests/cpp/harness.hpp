// A tiny test harness for the C++ tests: TEST(name) registers a test, CHECK* fail it by
// throwing, main() runs them (all, or those named on the command line) and prints
// "N passed, N failed". Every test gets its own domain name and runtime directory (env()),
// and fails if a segment of its domain is left in the shm directory afterwards.
//
// Processes: spawn() starts this same program again (posix_spawn, so a fresh process: no nng
// state is inherited) with "--child ROLE ARGS..."; the child's stdin and stdout are pipes to
// the parent (say() / expect_line()). A child reports failure by its exit status.
#ifndef SHMBUS_TEST_HARNESS_HPP
#define SHMBUS_TEST_HARNESS_HPP

#include <chrono>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>

namespace harness {

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const char *file, int line, const std::string &what);

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c))                                                                          \
            harness::fail(__FILE__, __LINE__, "CHECK(" #c ")");                            \
    } while (0)
#define CHECK_EQ(a, b)                                                                     \
    do {                                                                                   \
        auto va_ = (a);                                                                    \
        auto vb_ = (b);                                                                    \
        if (!(va_ == vb_)) {                                                               \
            std::ostringstream os_;                                                        \
            os_ << #a " == " #b ": " << va_ << " != " << vb_;                              \
            harness::fail(__FILE__, __LINE__, os_.str());                                  \
        }                                                                                  \
    } while (0)
// expr must throw shmbus::Error with status `code`.
#define CHECK_THROWS(expr, code)                                                           \
    do {                                                                                   \
        int got_ = 1;                                                                      \
        try {                                                                              \
            (void)(expr);                                                                  \
        } catch (const shmbus::Error &e_) {                                                \
            got_ = e_.status();                                                            \
        }                                                                                  \
        if (got_ != (code))                                                                \
            harness::fail(__FILE__, __LINE__,                                              \
                          #expr " threw status " + std::to_string(got_) + ", expected " #code); \
    } while (0)

struct Env {
    std::string dom;     // this test's domain
    std::string rundir;  // its runtime directory (a fresh mkdtemp directory)
};
// The running test's environment (also exported as SHMBUS_RUNTIME_DIR, SHMBUS_NODE_DOMAIN).
const Env &env();

using TestFn = void (*)();
struct Reg {
    Reg(const char *name, TestFn fn);
};
#define TEST(name)                                                                         \
    static void name();                                                                    \
    static harness::Reg reg_##name(#name, name);                                           \
    static void name()

// Child roles: CHILD(role) { ... return exit status; }, args are what spawn() passed.
using ChildFn = int (*)(const std::vector<std::string> &args);
struct ChildReg {
    ChildReg(const char *role, ChildFn fn);
};
#define CHILD(role)                                                                        \
    static int child_##role(const std::vector<std::string> &args);                         \
    static harness::ChildReg creg_##role(#role, child_##role);                             \
    static int child_##role([[maybe_unused]] const std::vector<std::string> &args)

struct Child {
    pid_t pid = -1;
    int in = -1;  // write end of its stdin
    int out = -1; // read end of its stdout
};
// Start "<this program> --child ROLE args..." (the test's env is inherited).
Child spawn(const std::string &role, const std::vector<std::string> &args = {});
// Start another program with the same pipes.
Child spawn_program(const std::string &path, const std::vector<std::string> &argv);
// One line to the child's stdin.
void say(const Child &c, const std::string &line);
// The child's next stdout line; fails the test if none within timeout.
std::string expect_line(const Child &c, std::chrono::milliseconds timeout);
// Exit status (128 + signal if killed); fails the test if it runs past timeout (then kills).
int wait_exit(Child &c, std::chrono::milliseconds timeout);
void kill9(Child &c);

// In a child: print a line to the parent (flushed); read one line from it ("" on EOF).
void tell_parent(const std::string &line);
std::string read_parent();

// Files "shmbus.<dom>.*" in the shm directory.
int segments(const std::string &dom);

int run(int argc, char **argv);

} // namespace harness

#endif
