// The C++ API (shmbus.hpp) in one process: RAII release on every path including exceptions,
// move semantics, clone, typed and frame access, errors. Real domains, shared memory and nng.
#include <shmbus/shmbus.hpp>

#include <poll.h>

#include <array>
#include <cstring>

#include "harness.hpp"

using namespace std::chrono_literals;

// No exception escapes a destructor, and moves never throw.
static_assert(std::is_nothrow_destructible_v<shmbus::Domain> &&
              std::is_nothrow_destructible_v<shmbus::Publisher> &&
              std::is_nothrow_destructible_v<shmbus::Subscriber> &&
              std::is_nothrow_destructible_v<shmbus::Message> &&
              std::is_nothrow_destructible_v<shmbus::Loan>);
static_assert(std::is_nothrow_move_constructible_v<shmbus::Message> &&
              std::is_nothrow_move_assignable_v<shmbus::Message> &&
              std::is_nothrow_move_constructible_v<shmbus::Loan> &&
              std::is_nothrow_move_assignable_v<shmbus::Loan> &&
              std::is_nothrow_move_constructible_v<shmbus::Domain>);
static_assert(!std::is_copy_constructible_v<shmbus::Message> &&
              !std::is_copy_constructible_v<shmbus::Loan> &&
              !std::is_copy_constructible_v<shmbus::Domain>);

namespace {

shmbus::DomainOptions opts()
{
    shmbus::DomainOptions o;
    o.config_path = SHMBUS_CPP_TEST_CONFIG;
    return o;
}

// A domain with one publisher and one subscriber on topic "t", connected.
struct Bus {
    shmbus::Domain d{harness::env().dom, opts()};
    shmbus::Subscriber sub = d.subscriber("t");
    shmbus::Publisher pub = d.publisher("t");
    shmbus::Pool pool = d.pool("msgs");
    Bus() { CHECK(pub.wait_subscribers(1, 20s)); }
    void send(uint32_t v)
    {
        shmbus::Loan l = pub.loan(sizeof v);
        l.as<uint32_t>() = v;
        l.publish();
    }
    shmbus::Message get()
    {
        auto m = sub.recv(20s);
        CHECK(m.has_value());
        return std::move(*m);
    }
};

struct Boom {};

} // namespace

TEST(test_message_is_released_when_an_exception_unwinds)
{
    Bus b;
    b.send(1);
    try {
        shmbus::Message m = b.get();
        CHECK_EQ(b.sub.stats().held, 1u);
        throw Boom{};
    } catch (const Boom &) {
    }
    CHECK_EQ(b.sub.stats().held, 0u);
    // Only the publisher's history holds the block now; it goes when the publisher does.
    CHECK_EQ(b.pool.used(), 1u);
}

TEST(test_unpublished_loan_returns_to_the_pool_on_every_path)
{
    Bus b;
    {
        shmbus::Loan l = b.pub.loan(100);
        CHECK_EQ(b.pool.used(), 1u);
    }
    CHECK_EQ(b.pool.used(), 0u);
    try {
        shmbus::Loan l = b.pub.loan(100);
        throw Boom{};
    } catch (const Boom &) {
    }
    CHECK_EQ(b.pool.used(), 0u);
    shmbus::Loan l = b.pub.loan(100);
    l.reset();
    CHECK(!l);
    CHECK_EQ(b.pool.used(), 0u);
}

TEST(test_publish_consumes_the_loan)
{
    Bus b;
    shmbus::Loan l = b.pub.loan(8);
    std::memcpy(l.data(), "abcdefg", 8);
    l.publish();
    CHECK(!l);
    CHECK_THROWS(l.publish(), SHMBUS_EINVAL);
    shmbus::Message m = b.get();
    CHECK_EQ(m.size(), 8u);
    CHECK_EQ(std::string(reinterpret_cast<const char *>(m.data())), std::string("abcdefg"));
    b.pub.publish("xyz", 4);
    CHECK_EQ(std::string(reinterpret_cast<const char *>(b.get().data())), std::string("xyz"));
}

TEST(test_moved_message_is_released_exactly_once)
{
    Bus b;
    b.send(7);
    b.send(8);
    shmbus::Message m1 = b.get();
    shmbus::Message m2(std::move(m1));
    CHECK(!m1);
    CHECK(m1.data() == nullptr);
    CHECK_EQ(m2.as<uint32_t>(), 7u);
    CHECK_EQ(b.sub.stats().held, 1u);
    shmbus::Message m3 = b.get();
    CHECK_EQ(b.sub.stats().held, 2u);
    m3 = std::move(m2); // m3's message (8) is released, 7 moves in
    CHECK_EQ(b.sub.stats().held, 1u);
    CHECK_EQ(m3.as<uint32_t>(), 7u);
    shmbus::Message &alias = m3;
    m3 = std::move(alias); // self-move keeps it
    CHECK(m3);
    CHECK_EQ(b.sub.stats().held, 1u);
    m3.reset();
    CHECK_EQ(b.sub.stats().held, 0u);
}

TEST(test_moved_loan_is_released_exactly_once)
{
    Bus b;
    shmbus::Loan a = b.pub.loan(16);
    shmbus::Loan c = b.pub.loan(16);
    CHECK_EQ(b.pool.used(), 2u);
    c = std::move(a);
    CHECK(!a);
    CHECK_EQ(b.pool.used(), 1u);
    shmbus::Loan d(std::move(c));
    d.as<uint32_t>() = 5;
    d.publish();
    CHECK_EQ(b.get().as<uint32_t>(), 5u);
}

TEST(test_clone_keeps_the_block_after_the_original_is_released)
{
    Bus b;
    b.send(42);
    shmbus::Message m = b.get();
    shmbus::Message c = m.clone();
    CHECK_EQ(c.get(), c.get());
    m.reset();
    CHECK_EQ(c.as<uint32_t>(), 42u);
    CHECK_EQ(b.sub.stats().held, 1u);
    c.reset();
    CHECK_EQ(b.sub.stats().held, 0u);
    CHECK_THROWS(c.clone(), SHMBUS_EINVAL);
}

TEST(test_as_refuses_a_type_bigger_than_the_message)
{
    Bus b;
    b.send(3);
    shmbus::Message m = b.get();
    CHECK_EQ(m.as<uint32_t>(), 3u);
    CHECK_THROWS(m.as<uint64_t>(), SHMBUS_EINVAL);
    CHECK_THROWS((m.as<std::array<char, 64>>()), SHMBUS_EINVAL);
    shmbus::Loan l = b.pub.loan(2);
    CHECK_THROWS(l.as<uint32_t>(), SHMBUS_EINVAL);
}

TEST(test_errors_carry_the_code_and_the_detail)
{
    try {
        shmbus::Domain d("bad name!", opts());
        CHECK(!"opened a domain with a bad name");
    } catch (const shmbus::Error &e) {
        CHECK_EQ(e.status(), int(SHMBUS_EINVAL));
        CHECK(e.code() == std::error_code(SHMBUS_EINVAL, shmbus::category()));
        CHECK_EQ(std::string(e.code().category().name()), std::string("shmbus"));
        CHECK_EQ(std::string(e.name()), std::string("SHMBUS_EINVAL"));
        CHECK(!e.detail().empty());
        CHECK(std::string(e.what()).find(e.detail()) != std::string::npos);
    }
    shmbus::DomainOptions o;
    o.config_path = "/nonexistent/shmbus.json";
    CHECK_THROWS(shmbus::Domain(harness::env().dom, o), SHMBUS_ENOENT);
    shmbus::Domain d(harness::env().dom, opts());
    CHECK_THROWS(d.pool("no-such-pool"), SHMBUS_ENOENT);
    shmbus::Domain moved = std::move(d);
    CHECK_THROWS(d.name(), SHMBUS_EINVAL);
    CHECK_EQ(moved.name(), harness::env().dom);
}

TEST(test_recv_returns_empty_when_nothing_comes)
{
    Bus b;
    CHECK(!b.sub.recv(0ms).has_value());
    CHECK(!b.sub.recv(20ms).has_value());
    b.send(1);
    pollfd p{b.sub.fd(), POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 20000), 1);
    CHECK(b.sub.recv(0ms).has_value());
}

TEST(test_objects_outlive_the_domain_object_and_leave_nothing)
{
    shmbus::Subscriber sub;
    shmbus::Message m;
    {
        shmbus::Domain d(harness::env().dom, opts());
        sub = d.subscriber("t");
        shmbus::Publisher pub = d.publisher("t");
        CHECK(pub.wait_subscribers(1, 20s));
        pub.publish("hi", 3);
        auto got = sub.recv(20s);
        CHECK(got.has_value());
        m = std::move(*got);
    } // the Domain object and the publisher go first
    sub = shmbus::Subscriber(); // the message still keeps the subscriber and domain alive
    CHECK(harness::segments(harness::env().dom) > 0);
    CHECK_EQ(std::string(reinterpret_cast<const char *>(m.data())), std::string("hi"));
    m.reset(); // the last one: the domain is left, its segments go
    CHECK_EQ(harness::segments(harness::env().dom), 0);
}

TEST(test_frames_round_trip_with_checksum)
{
    Bus b;
    shmbus_frame_hdr g = shmbus::frame_geometry(SHMBUS_PIXFMT_GRAY8, 32, 24);
    shmbus::Loan l = b.pub.loan_frame(g);
    l.frame().frame_number = 9;
    uint8_t *px = shmbus_frame_plane_mut(&l.frame(), 0);
    for (int i = 0; i < 32 * 24; i++)
        px[i] = uint8_t(i);
    l.publish_frame(true);
    shmbus::Message m = b.get();
    shmbus::Frame f = m.frame();
    CHECK_EQ(f.width(), 32u);
    CHECK_EQ(f.height(), 24u);
    CHECK_EQ(f.number(), 9u);
    CHECK(f.has_checksum());
    CHECK(f.checksum_ok());
    CHECK_EQ(f.plane(0)[100], uint8_t(100));
    b.send(1); // not a frame
    CHECK_THROWS(b.get().frame(), SHMBUS_EINVAL);
    CHECK_THROWS(shmbus::frame_geometry(SHMBUS_PIXFMT_RGB24, 0, 10), SHMBUS_EINVAL);
    shmbus::Loan plain = b.pub.loan(4);
    CHECK_THROWS(plain.frame(), SHMBUS_EINVAL);
}

TEST(test_cpp_camera_subscriber_checks_frames_from_camera_pub)
{
    const std::string dom = harness::env().dom, cfg = SHMBUS_CPP_TEST_CONFIG;
    // Topic "cam" keeps 6 frames of history: all 5 stay held until camera-pub leaves.
    harness::Child sub = harness::spawn_program(
        SHMBUS_CAMERA_SUB_CPP, {"--domain", dom, "--config", cfg, "--topic", "cam", "--count", "5",
                                "--timeout-ms", "30000"});
    harness::Child pub = harness::spawn_program(
        SHMBUS_CAMERA_PUB, {"--domain", dom, "--config", cfg, "--topic", "cam", "--size", "64x48",
                            "--count", "5", "--wait-subs", "1", "--linger-ms", "3000", "-q"});
    for (uint64_t i = 0; i < 5; i++) {
        std::string line = harness::expect_line(sub, 60s);
        CHECK_EQ(line.rfind("frame " + std::to_string(i) + " 64x48 rgb24 seq ", 0), 0u);
        CHECK(line.find("checksum ok") != std::string::npos);
    }
    CHECK_EQ(harness::expect_line(sub, 60s), std::string("received 5 frames, 0 bad, lost 0"));
    CHECK_EQ(harness::wait_exit(sub, 30s), 0);
    CHECK_EQ(harness::wait_exit(pub, 60s), 0);
}
