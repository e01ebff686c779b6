// Named nodes in C++ (nodes.hpp, share_mem_mgr.hpp) across real processes: the origin
// program three at once, one writer and two readers, the last detach destroying the node,
// a process killed holding the node lock, shared_ptr copies in threads, the operators.
#include <shmbus/share_mem_mgr.hpp>

#include <array>
#include <future>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;

static_assert(std::is_nothrow_destructible_v<shmbus::Node<int>> &&
              std::is_nothrow_destructible_v<shmbus::NodeLock> &&
              std::is_nothrow_destructible_v<ShareMemElem<int>>);

namespace {

// The test's node manager (domain env().dom); destroyed however the test ends.
struct Manager {
    Manager()
    {
        shmbus::NodeOptions o;
        o.domain = harness::env().dom;
        shmbus::NodeManager::configure(o);
    }
    ~Manager() { shmbus::NodeManager::destroy(); }
    shmbus::NodeManager &operator*() const { return shmbus::NodeManager::instance(); }
    shmbus::NodeManager *operator->() const { return &shmbus::NodeManager::instance(); }
};

std::string describe(uint32_t v, bool created)
{
    return std::to_string(v) + (created ? " created" : " shared");
}

} // namespace

// ---- children ---------------------------------------------------------------------------------

// The origin names, as the origin program uses them: store 100 into "bbb", then hold it
// until the parent says go.
CHILD(origin_writer)
{
    ShareMemMgr *mgr = Singleton<ShareMemMgr>::GetInstance();
    {
        const SpShareMemElem<uint32_t> &b = mgr->AllocShareMemNode<uint32_t>("bbb");
        *b = 100;
        harness::tell_parent(describe(*b->GetShareMemAddr(), b->created()));
        harness::read_parent();
    }
    Singleton<ShareMemMgr>::DestroyInstance();
    return 0;
}

// Read "bbb" under its lock (the origin's UniqueLock over GetShareMemSema) while holding it.
CHILD(origin_reader)
{
    ShareMemMgr *mgr = Singleton<ShareMemMgr>::GetInstance();
    {
        const SpShareMemElem<uint32_t> &b = mgr->AllocShareMemNode<uint32_t>("bbb");
        uint32_t v;
        {
            UniqueLock<ShareSemaphore> l(*b->GetShareMemSema());
            v = *b->GetShareMemAddr();
        }
        harness::tell_parent(describe(v, b->created()));
        harness::read_parent();
    }
    Singleton<ShareMemMgr>::DestroyInstance();
    return 0;
}

// holder NAME [VALUE]: get the node, store VALUE if given, report, hold until told to go.
CHILD(holder)
{
    Manager m;
    auto n = m->node<uint32_t>(args.at(0));
    if (args.size() > 1)
        *n = uint32_t(std::stoul(args[1]));
    harness::tell_parent(describe(n->load(), n->created()));
    harness::read_parent();
    return 0;
}

// store NAME VALUE [hold]: take the node's lock and store VALUE; then unlock, say "stored" and
// leave, or with "hold" say "locked" and keep the lock until killed.
CHILD(store)
{
    Manager m;
    auto n = m->node<uint32_t>(args.at(0));
    const bool hold = args.size() > 2 && args[2] == "hold";
    {
        shmbus::NodeLock l(*n);
        *n->get() = uint32_t(std::stoul(args.at(1), nullptr, 0));
        if (hold) {
            harness::tell_parent("locked");
            harness::read_parent(); // killed here
        }
    }
    harness::tell_parent("stored");
    return 0;
}

// ---- tests ------------------------------------------------------------------------------------

TEST(test_origin_program_runs_in_three_processes_at_once)
{
    std::vector<harness::Child> c;
    for (int i = 0; i < 3; i++)
        c.push_back(harness::spawn_program(SHMBUS_ORIGIN_PROGRAM, {}));
    for (auto &p : c) {
        std::string line = harness::expect_line(p, 30s);
        // "<address of aaa> <its value>": nobody writes "aaa", so it reads 0.
        CHECK(line.rfind("0x", 0) == 0);
        CHECK(line.size() > 2 && line.substr(line.size() - 2) == " 0");
        CHECK_EQ(harness::wait_exit(p, 30s), 0);
    }
    CHECK_EQ(harness::segments(harness::env().dom), 0);
}

TEST(test_one_process_writes_100_and_two_others_read_it)
{
    harness::Child w = harness::spawn("origin_writer");
    CHECK_EQ(harness::expect_line(w, 30s), std::string("100 created"));
    harness::Child r1 = harness::spawn("origin_reader"), r2 = harness::spawn("origin_reader");
    CHECK_EQ(harness::expect_line(r1, 30s), std::string("100 shared"));
    CHECK_EQ(harness::expect_line(r2, 30s), std::string("100 shared"));
    for (auto *c : {&w, &r1, &r2}) {
        harness::say(*c, "go");
        CHECK_EQ(harness::wait_exit(*c, 30s), 0);
    }
    CHECK_EQ(harness::segments(harness::env().dom), 0);
}

TEST(test_last_detach_in_any_process_destroys_the_node)
{
    {
        Manager m;
        CHECK_EQ(m->pool().used(), 0u);
        harness::Child a = harness::spawn("holder", {"x", "7"});
        CHECK_EQ(harness::expect_line(a, 30s), std::string("7 created"));
        harness::Child b = harness::spawn("holder", {"x"});
        CHECK_EQ(harness::expect_line(b, 30s), std::string("7 shared"));
        CHECK_EQ(m->pool().used(), 1u); // one node, attached by two processes
        harness::say(a, "go");
        CHECK_EQ(harness::wait_exit(a, 30s), 0);
        CHECK_EQ(m->pool().used(), 1u); // b still holds it
        harness::Child c = harness::spawn("holder", {"x"});
        CHECK_EQ(harness::expect_line(c, 30s), std::string("7 shared"));
        harness::say(c, "go");
        CHECK_EQ(harness::wait_exit(c, 30s), 0);
        harness::say(b, "go");
        CHECK_EQ(harness::wait_exit(b, 30s), 0);
        CHECK_EQ(m->pool().used(), 0u); // the last detach freed its block
        auto x = m->node<uint32_t>("x");
        CHECK(x->created()); // a new node, zero-filled
        CHECK_EQ(x->load(), 0u);
    }
    CHECK_EQ(harness::segments(harness::env().dom), 0);
}

TEST(test_process_killed_holding_the_lock_blocks_nobody)
{
    Manager m;
    auto n = m->node<uint32_t>("L");
    harness::Child k = harness::spawn("store", {"L", "0xdead", "hold"});
    CHECK_EQ(harness::expect_line(k, 30s), std::string("locked"));
    harness::kill9(k);
    // Lock in a helper thread so a lock that never comes fails the test instead of hanging it.
    // It reads what the dead holder left, repairs it and unlocks.
    auto done = std::make_shared<std::promise<std::pair<bool, uint32_t>>>();
    auto f = done->get_future();
    std::thread([n, done]() mutable {
        bool died;
        uint32_t left;
        {
            shmbus::NodeLock l(*n);
            died = l.owner_died();
            left = *n->get();
            *n->get() = 1;
        }
        n.reset();
        done->set_value({died, left});
    }).detach();
    CHECK(f.wait_for(30s) == std::future_status::ready);
    auto [died, left] = f.get();
    CHECK(died);            // the lock says its holder died
    CHECK_EQ(left, 0xdeadu); // what the dead holder wrote is there to repair
    harness::Child s = harness::spawn("store", {"L", "5"});
    CHECK_EQ(harness::expect_line(s, 30s), std::string("stored"));
    CHECK_EQ(harness::wait_exit(s, 30s), 0);
    shmbus::NodeLock l(*n);
    CHECK(!l.owner_died());
    CHECK_EQ(*n->get(), 5u);
}

TEST(test_node_lock_is_released_when_an_exception_unwinds)
{
    struct Boom {};
    Manager m;
    auto n = m->node<uint32_t>("e");
    try {
        shmbus::NodeLock l(*n);
        *n->get() = 1;
        throw Boom{};
    } catch (const Boom &) {
    }
    // Another process can take the lock at once: the guard let go during the unwind.
    harness::Child s = harness::spawn("store", {"e", "2"});
    CHECK_EQ(harness::expect_line(s, 30s), std::string("stored"));
    CHECK_EQ(harness::wait_exit(s, 30s), 0);
    CHECK_EQ(n->load(), 2u);
}

TEST(test_one_lock_per_node_in_a_process_whatever_the_element_class)
{
    Manager m;
    auto a = m->node<uint32_t>("m");
    ShareMemMgr *mgr = Singleton<ShareMemMgr>::GetInstance();
    SpShareMemElem<uint32_t> b = mgr->AllocShareMemNode<uint32_t>("m"); // another object
    CHECK(static_cast<void *>(a.get()) != static_cast<void *>(b.get()));
    CHECK(&a->mutex() == b->GetShareMemSema());
    // Locking through one object and storing through the other must not deadlock; in a
    // helper thread, so a deadlock fails the test instead of hanging it.
    auto done = std::make_shared<std::promise<uint32_t>>();
    auto f = done->get_future();
    std::thread([a, b, done]() mutable {
        {
            shmbus::NodeLock l(*a);
            *b = 3;
        }
        uint32_t v = a->load();
        a.reset();
        b.reset();
        done->set_value(v);
    }).detach();
    CHECK(f.wait_for(30s) == std::future_status::ready);
    CHECK_EQ(f.get(), 3u);
    b.reset();
    Singleton<ShareMemMgr>::DestroyInstance();
    CHECK_EQ(m->pool().used(), 1u); // a still holds it
    a.reset();
    CHECK_EQ(m->pool().used(), 0u); // and the shared lock object held nothing more
}

TEST(test_shared_ptr_copies_in_threads_share_one_attach)
{
    Manager m;
    auto n = m->node<uint64_t>("c");
    CHECK(m->node<uint64_t>("c") == n); // same object while a copy lives
    std::vector<std::thread> t;
    for (int i = 0; i < 4; i++)
        t.emplace_back([copy = n] {
            for (int j = 0; j < 500; j++) {
                shmbus::NodeLock l(*copy); // recursive: the operators lock again inside
                *copy = *copy + 1;
            }
            for (int j = 0; j < 500; j++) {
                shmbus::NodeLock l(*copy);
                ++*copy->get();
            }
        });
    for (auto &th : t)
        th.join();
    CHECK_EQ(n.use_count(), 1);
    CHECK_EQ(n->load(), uint64_t(4 * 1000));
    CHECK_EQ(m->pool().used(), 1u);
    n.reset(); // the last copy in this process drops its attach: nobody else holds it
    CHECK_EQ(m->pool().used(), 0u);
}

TEST(test_operators_work_as_in_the_origin_design)
{
    Manager m;
    auto a = m->node<int32_t>("a");
    auto b = m->node<int32_t>("b");
    *b = 100;
    *a = *a + *b;
    CHECK_EQ(a->load(), 100);
    *a = *a * 3;
    CHECK_EQ(a->load(), 300);
    CHECK_EQ(*a + 5, 305);
    CHECK_EQ(*a * *b, 30000);
    *a = *b;
    CHECK_EQ(a->load(), 100);
}

TEST(test_a_node_too_small_for_the_type_is_refused)
{
    Manager m;
    auto s = m->node<uint32_t>("s"); // a 64-byte block
    CHECK_THROWS((m->node<std::array<char, 128>>("s")), SHMBUS_EINCOMPAT);
    CHECK_THROWS(m->node<uint32_t>(std::string(100, 'n')), SHMBUS_EINVAL);
}

TEST(test_a_node_holds_an_array_shared_with_other_processes)
{
    Manager m;
    auto arr = m->node<uint32_t>("arr", 16);
    CHECK_EQ(arr->count(), 16u);
    arr->store(5);     // element 0
    (*arr)[15] = 42;
    uint32_t sum = 0;
    for (uint32_t v : *arr)
        sum += v;
    CHECK_EQ(sum, 47u);
    CHECK(m->node<uint32_t>("arr", 4) == arr); // fewer elements: the same object
    CHECK_THROWS(m->node<uint32_t>("arr", 32), SHMBUS_EINCOMPAT);
    CHECK_THROWS(m->node<uint32_t>("zero", 0), SHMBUS_EINVAL);
    harness::Child c = harness::spawn("holder", {"arr"});
    CHECK_EQ(harness::expect_line(c, 30s), std::string("5 shared"));
    harness::say(c, "go");
    CHECK_EQ(harness::wait_exit(c, 30s), 0);
    ShareMemMgr *mgr = Singleton<ShareMemMgr>::GetInstance(); // the origin's type_cnt
    {
        const SpShareMemElem<uint16_t> &e = mgr->AllocShareMemNode<uint16_t>("origin-arr", 8);
        CHECK_EQ(e->count(), 8u);
        e->GetShareMemAddr()[7] = 9;
        CHECK_EQ((*e)[7], uint16_t(9));
    }
    Singleton<ShareMemMgr>::DestroyInstance();
}

TEST(test_nodes_outlive_the_manager)
{
    auto n = [] {
        Manager m;
        auto x = m->node<uint32_t>("k");
        *x = 3;
        return x;
    }(); // the manager is gone
    CHECK(!shmbus::NodeManager::exists());
    CHECK_EQ(n->load(), 3u);
    CHECK(harness::segments(harness::env().dom) > 0);
    n.reset(); // the last node: the domain is left
    CHECK_EQ(harness::segments(harness::env().dom), 0);
}
