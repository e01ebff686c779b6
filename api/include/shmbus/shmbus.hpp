// shmbus.hpp: the C++17 face of shmbus, header-only, over the C API (shmbus.h) (docs/cpp.md).
//
//   shmbus::Domain d("robot");                      // opens (joins) the domain
//   shmbus::Publisher pub = d.publisher("imu");
//   shmbus::Loan loan = pub.loan(sizeof(Imu));      // a writable block of shared memory
//   loan.as<Imu>() = read_imu();                    // write in place
//   loan.publish();                                 // consumes the loan
//
//   shmbus::Subscriber sub = d.subscriber("imu");
//   if (auto msg = sub.recv(std::chrono::milliseconds(100)))
//       use(msg->as<Imu>());                        // read in place; released with msg
//
// Ownership: every object owns one C handle and releases it in its destructor; none of them
// throws from a destructor (a close that fails there is ignored). Message and Loan are
// move-only; Message::clone() makes a second handle on the same block. Objects keep what
// they were made from alive: a Message keeps its Subscriber's handle, a Publisher or
// Subscriber keeps its Domain's, so destroying them in any order is fine; the domain is left
// when the last of them goes.
//
// Errors: every failed call throws shmbus::Error (a std::system_error) with the SHMBUS_E*
// code (status()) and shmbus_last_error()'s detail in what(). "Nothing yet" is not an error:
// Subscriber::recv(timeout) returns an empty optional.
//
// Threads: as the C calls they wrap (shmbus.h). One object used from several threads needs
// the same care as the C handle: Message and Loan are not shared between threads; clone().
#ifndef SHMBUS_HPP
#define SHMBUS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "shmbus.h"
#include "shmbus_frame.h"

namespace shmbus {

// ---- errors -------------------------------------------------------------------------------

// std::error_category of the SHMBUS_E* codes: value() is the (negative) status.
class ErrorCategory final : public std::error_category {
  public:
    const char *name() const noexcept override { return "shmbus"; }
    std::string message(int status) const override { return shmbus_strerror(status); }
};

inline const std::error_category &category() noexcept
{
    static const ErrorCategory c;
    return c;
}

// A failed shmbus call: code() is {status, shmbus::category()}; what() is
// "<what>: <strerror>: <shmbus_last_error() at the throw>".
class Error : public std::system_error {
  public:
    Error(int status, const std::string &what, const std::string &detail)
        : std::system_error(status, category(), detail.empty() ? what : what + ": " + detail),
          detail_(detail)
    {
    }
    // Takes shmbus_last_error() of this thread as the detail.
    Error(int status, const std::string &what) : Error(status, what, shmbus_last_error()) {}
    int status() const noexcept { return code().value(); }
    const char *name() const noexcept { return shmbus_errname(status()); }
    const std::string &detail() const noexcept { return detail_; }

  private:
    std::string detail_;
};

namespace detail {
inline void check(int rc, const char *what)
{
    if (rc < 0)
        throw Error(rc, what);
}
inline const char *c_str_or_null(const std::string &s) { return s.empty() ? nullptr : s.c_str(); }
// The result of a shmbus_*_wait_* call: false on timeout, else throws on error.
inline bool waited(int rc, const char *what)
{
    if (rc == SHMBUS_ETIMEDOUT)
        return false;
    check(rc, what);
    return true;
}
// A count, or throws on error.
inline int counted(int n, const char *what)
{
    check(n, what);
    return n;
}
// The C handle of a wrapper, or SHMBUS_EINVAL for an empty (default or moved-from) one.
template <class H> H *handle(const std::shared_ptr<H> &p, const char *what)
{
    if (!p)
        throw Error(SHMBUS_EINVAL, what, "empty (default-constructed or moved-from) object");
    return p.get();
}
inline int to_ms(std::chrono::milliseconds t)
{
    auto n = t.count();
    return n < 0 ? -1 : n > 0x7fffffff ? 0x7fffffff : static_cast<int>(n);
}
} // namespace detail

// ---- frames (shmbus_frame.h) ----------------------------------------------------------------

// The geometry of a frame (shmbus_frame_init_stride): fill the rest, then Publisher::loan_frame.
inline shmbus_frame_hdr frame_geometry(shmbus_pixfmt fmt, uint32_t width, uint32_t height,
                                       uint32_t stride = 0)
{
    shmbus_frame_hdr g;
    int rc = shmbus_frame_init_stride(&g, fmt, width, height, stride);
    if (rc < 0)
        throw Error(rc, "frame geometry", "invalid format or size");
    return g;
}

// A read-only view of a validated frame inside a message; valid while the message is held.
class Frame {
  public:
    explicit Frame(const shmbus_frame_hdr *h) noexcept : h_(h) {}
    const shmbus_frame_hdr &header() const noexcept { return *h_; }
    shmbus_pixfmt format() const noexcept { return static_cast<shmbus_pixfmt>(h_->format); }
    const char *format_name() const noexcept { return shmbus_pixfmt_name(int(h_->format)); }
    uint32_t width() const noexcept { return h_->width; }
    uint32_t height() const noexcept { return h_->height; }
    unsigned planes() const noexcept { return h_->nplanes; }
    const uint8_t *plane(unsigned p) const noexcept { return shmbus_frame_plane(h_, p); }
    uint32_t stride(unsigned p) const noexcept { return h_->stride[p]; }
    uint32_t rows(unsigned p) const noexcept { return shmbus_frame_rows(h_, p); }
    uint32_t row_bytes(unsigned p) const noexcept { return shmbus_frame_row_bytes(h_, p); }
    uint64_t number() const noexcept { return h_->frame_number; }
    uint64_t capture_ns() const noexcept { return h_->capture_ns; }
    bool has_checksum() const noexcept { return shmbus_frame_has_checksum(h_); }
    // Reads every pixel; true when the frame carries no checksum.
    bool checksum_ok() const noexcept { return shmbus_frame_checksum_ok(h_); }

  private:
    const shmbus_frame_hdr *h_;
};

// ---- messages -------------------------------------------------------------------------------

// One handle on a received message (read-only payload). Move-only; the destructor releases.
class Message {
  public:
    Message() noexcept = default;
    // Adopts the handle m; owner is kept alive while the message is (its subscriber, pool).
    Message(shmbus_msg *m, std::shared_ptr<void> owner) noexcept : m_(m), owner_(std::move(owner))
    {
    }
    Message(Message &&o) noexcept : m_(std::exchange(o.m_, nullptr)), owner_(std::move(o.owner_))
    {
    }
    Message &operator=(Message &&o) noexcept
    {
        if (this != &o) {
            reset();
            m_ = std::exchange(o.m_, nullptr);
            owner_ = std::move(o.owner_);
        }
        return *this;
    }
    Message(const Message &) = delete;
    Message &operator=(const Message &) = delete;
    ~Message() { reset(); }

    // A second handle on the same block (lock-free). Throws on an empty message.
    Message clone() const
    {
        if (!m_)
            throw Error(SHMBUS_EINVAL, "clone", "empty message");
        return Message(shmbus_msg_clone(m_), owner_);
    }
    // Release now (the last handle in any process frees the block).
    void reset() noexcept
    {
        if (m_)
            shmbus_msg_release(m_);
        m_ = nullptr;
        owner_.reset();
    }
    explicit operator bool() const noexcept { return m_ != nullptr; }

    const std::byte *data() const noexcept
    {
        return m_ ? static_cast<const std::byte *>(shmbus_msg_data(m_)) : nullptr;
    }
    // The published length (bytes of data()).
    std::size_t size() const noexcept { return m_ ? std::size_t(shmbus_msg_length(m_)) : 0; }
    std::size_t capacity() const noexcept { return m_ ? std::size_t(shmbus_msg_capacity(m_)) : 0; }
    const std::byte *begin() const noexcept { return data(); }
    const std::byte *end() const noexcept { return data() + size(); }
    uint64_t seq() const noexcept { return m_ ? shmbus_msg_seq(m_) : 0; }
    uint64_t timestamp_ns() const noexcept { return m_ ? shmbus_msg_timestamp_ns(m_) : 0; }
    uint64_t publisher() const noexcept { return m_ ? shmbus_msg_publisher(m_) : 0; }

    // The payload as a T. Throws SHMBUS_EINVAL if it is shorter than T or misaligned for it.
    template <class T> const T &as() const
    {
        static_assert(std::is_trivially_copyable_v<T>, "only trivially copyable types travel");
        if (!m_ || size() < sizeof(T))
            throw Error(SHMBUS_EINVAL, "as<T>",
                        "message of " + std::to_string(size()) + " bytes, type needs " +
                            std::to_string(sizeof(T)));
        if (reinterpret_cast<std::uintptr_t>(data()) % alignof(T))
            throw Error(SHMBUS_EINVAL, "as<T>", "payload misaligned for the type");
        return *reinterpret_cast<const T *>(data());
    }

    // The camera frame in it, validated (shmbus_frame_get). Throws SHMBUS_EINVAL with the
    // reason if it is not a valid frame.
    Frame frame() const
    {
        const shmbus_frame_hdr *h = nullptr;
        detail::check(m_ ? shmbus_frame_get(m_, &h) : SHMBUS_EINVAL, "frame");
        return Frame(h);
    }

    shmbus_msg *get() const noexcept { return m_; }
    // Give up ownership of the C handle (the caller releases it).
    shmbus_msg *release() noexcept
    {
        owner_.reset();
        return std::exchange(m_, nullptr);
    }

  private:
    shmbus_msg *m_ = nullptr;
    std::shared_ptr<void> owner_;
};

// A writable message loaned from a publisher. Write in place, then publish() (consumes it);
// a loan destroyed unpublished goes back to the pool. Move-only.
class Loan {
  public:
    Loan() noexcept = default;
    Loan(shmbus_msg *m, std::shared_ptr<shmbus_pub> pub, std::size_t size,
         shmbus_frame_hdr *frame = nullptr) noexcept
        : m_(m), pub_(std::move(pub)), size_(size), frame_(frame)
    {
    }
    Loan(Loan &&o) noexcept { *this = std::move(o); }
    Loan &operator=(Loan &&o) noexcept
    {
        if (this != &o) {
            reset();
            m_ = std::exchange(o.m_, nullptr);
            pub_ = std::move(o.pub_);
            size_ = std::exchange(o.size_, 0);
            frame_ = std::exchange(o.frame_, nullptr);
        }
        return *this;
    }
    Loan(const Loan &) = delete;
    Loan &operator=(const Loan &) = delete;
    ~Loan() { reset(); }

    // Give the block back unpublished.
    void reset() noexcept
    {
        if (m_)
            shmbus_msg_release(m_);
        m_ = nullptr;
        frame_ = nullptr;
        pub_.reset();
    }
    explicit operator bool() const noexcept { return m_ != nullptr; }
    std::byte *data() const noexcept
    {
        return m_ ? static_cast<std::byte *>(shmbus_msg_data(m_)) : nullptr;
    }
    std::size_t size() const noexcept { return m_ ? size_ : 0; } // as asked for at the loan
    std::size_t capacity() const noexcept { return m_ ? std::size_t(shmbus_msg_capacity(m_)) : 0; }
    std::byte *begin() const noexcept { return data(); }
    std::byte *end() const noexcept { return data() + size(); }

    template <class T> T &as() const
    {
        static_assert(std::is_trivially_copyable_v<T>, "only trivially copyable types travel");
        if (!m_ || size_ < sizeof(T))
            throw Error(SHMBUS_EINVAL, "as<T>",
                        "loan of " + std::to_string(size()) + " bytes, type needs " +
                            std::to_string(sizeof(T)));
        return *reinterpret_cast<T *>(data());
    }

    // The frame header of a loan from Publisher::loan_frame (writable; the pixels follow).
    shmbus_frame_hdr &frame() const
    {
        if (!m_ || !frame_)
            throw Error(SHMBUS_EINVAL, "frame", "not a frame loan");
        return *frame_;
    }

    // Publish the first `length` bytes (default: the size loaned, or the whole frame).
    // Consumes the loan on success and on SHMBUS_ETRANSPORT (as shmbus_pub_publish); on other
    // errors the loan stays held and is released with this object.
    void publish() { publish(frame_ ? shmbus_frame_message_size(frame_) : size_); }
    void publish(std::size_t length) { finish(shmbus_pub_publish(pub(), m_, length)); }
    // A frame loan: with checksum, hash the pixels first (shmbus_frame_publish).
    void publish_frame(bool checksum)
    {
        frame();
        finish(shmbus_frame_publish(pub(), m_, checksum));
    }

    shmbus_msg *get() const noexcept { return m_; }

  private:
    shmbus_pub *pub() const
    {
        if (!m_)
            throw Error(SHMBUS_EINVAL, "publish", "empty loan (already published?)");
        return pub_.get();
    }
    void finish(int rc)
    {
        if (rc == 0 || rc == SHMBUS_ETRANSPORT) {
            m_ = nullptr; // consumed
            reset();
        }
        detail::check(rc, "publish");
    }

    shmbus_msg *m_ = nullptr;
    std::shared_ptr<shmbus_pub> pub_;
    std::size_t size_ = 0;
    shmbus_frame_hdr *frame_ = nullptr;
};

// ---- publishers and subscribers ---------------------------------------------------------------

class Publisher {
  public:
    Publisher() noexcept = default;
    explicit Publisher(std::shared_ptr<shmbus_pub> p) noexcept : p_(std::move(p)) {}

    Loan loan(std::size_t size)
    {
        shmbus_msg *m = nullptr;
        detail::check(shmbus_pub_loan(get(), size, &m), "loan");
        return Loan(m, p_, size);
    }
    // A loan holding a frame of geometry g (frame_geometry()), header copied in.
    Loan loan_frame(const shmbus_frame_hdr &g)
    {
        shmbus_msg *m = nullptr;
        shmbus_frame_hdr *h = nullptr;
        detail::check(shmbus_frame_loan(get(), &g, &m, &h), "loan frame");
        return Loan(m, p_, std::size_t(shmbus_frame_message_size(h)), h);
    }
    // Copy n bytes into a loan and publish it.
    void publish(const void *bytes, std::size_t n)
    {
        Loan l = loan(n);
        if (n)
            std::memcpy(l.data(), bytes, n);
        l.publish();
    }
    int subscribers() const
    {
        return detail::counted(shmbus_pub_subscribers(get()), "subscribers");
    }
    // Wait until at least n subscribers are connected; false on timeout.
    bool wait_subscribers(int n, std::chrono::milliseconds timeout)
    {
        return detail::waited(shmbus_pub_wait_subscribers(get(), n, detail::to_ms(timeout)),
                              "wait for subscribers");
    }
    shmbus_pub *get() const { return detail::handle(p_, "publisher"); }

  private:
    std::shared_ptr<shmbus_pub> p_;
};

class Subscriber {
  public:
    Subscriber() noexcept = default;
    explicit Subscriber(std::shared_ptr<shmbus_sub> s) noexcept : s_(std::move(s)) {}

    // The next message within timeout (negative: wait forever); empty if none came in time
    // or a signal interrupted the wait. Other failures throw.
    std::optional<Message> recv(std::chrono::milliseconds timeout)
    {
        shmbus_msg *m = nullptr;
        int rc = shmbus_sub_recv(get(), detail::to_ms(timeout), &m);
        if (rc == SHMBUS_ETIMEDOUT || rc == SHMBUS_EAGAIN || rc == SHMBUS_EINTR)
            return std::nullopt;
        detail::check(rc, "receive");
        return Message(m, s_);
    }
    // Blocks until a message comes (a signal throws SHMBUS_EINTR).
    Message recv()
    {
        shmbus_msg *m = nullptr;
        detail::check(shmbus_sub_recv(get(), -1, &m), "receive");
        return Message(m, s_);
    }
    // Polls readable when a message waits; then recv(0ms) until empty (shmbus_sub_fd).
    int fd() const
    {
        int fd = -1;
        detail::check(shmbus_sub_fd(get(), &fd), "fd");
        return fd;
    }
    shmbus_sub_counters stats() const
    {
        shmbus_sub_counters c;
        detail::check(shmbus_sub_stats(get(), &c), "stats");
        return c;
    }
    int publishers() const { return detail::counted(shmbus_sub_publishers(get()), "publishers"); }
    bool wait_publishers(int n, std::chrono::milliseconds timeout)
    {
        return detail::waited(shmbus_sub_wait_publishers(get(), n, detail::to_ms(timeout)),
                              "wait for publishers");
    }
    shmbus_sub *get() const { return detail::handle(s_, "subscriber"); }

  private:
    std::shared_ptr<shmbus_sub> s_;
};

// A pool of the domain (below topics): its counters, and named nodes (shmbus/nodes.hpp).
class Pool {
  public:
    Pool() noexcept = default;
    explicit Pool(std::shared_ptr<shmbus_pool> p) noexcept : p_(std::move(p)) {}
    std::vector<shmbus_class_stats> stats() const
    {
        std::vector<shmbus_class_stats> v(SHMBUS_MAX_CLASSES);
        v.resize(std::size_t(detail::counted(
            shmbus_pool_stats(get(), v.data(), unsigned(v.size())), "pool stats")));
        return v;
    }
    // Blocks in use now, over every class.
    uint64_t used() const
    {
        uint64_t n = 0;
        for (const auto &c : stats())
            n += c.used;
        return n;
    }
    shmbus_pool *get() const { return detail::handle(p_, "pool"); }
    // What keeps the pool (and its domain) alive, for messages taken from it.
    const std::shared_ptr<shmbus_pool> &handle() const noexcept { return p_; }

  private:
    std::shared_ptr<shmbus_pool> p_;
};

// ---- domain -----------------------------------------------------------------------------------

struct DomainOptions {
    std::string config_path;  // "" : the embedded default
    std::string runtime_dir;  // "" : the config's, $SHMBUS_RUNTIME_DIR, /tmp
    std::string shm_dir;      // "" : $SHMBUS_SHM_DIR, /dev/shm
    std::string participant;  // "" : the process name
    unsigned sweep_interval_ms = 0;
    bool observe = false;
};

// A joined domain. Move-only; the domain is left when this object and everything made from
// it (publishers, subscribers, pools, messages) are gone.
class Domain {
  public:
    // name "" : the config's "domain", else "default".
    explicit Domain(const std::string &name = {}, const DomainOptions &o = {})
    {
        shmbus_domain_opts co;
        shmbus_domain_opts_init(&co);
        co.config_path = detail::c_str_or_null(o.config_path);
        co.runtime_dir = detail::c_str_or_null(o.runtime_dir);
        co.shm_dir = detail::c_str_or_null(o.shm_dir);
        co.name = detail::c_str_or_null(o.participant);
        co.sweep_interval_ms = o.sweep_interval_ms;
        co.observe = o.observe;
        shmbus_domain *d = nullptr;
        detail::check(shmbus_domain_open(detail::c_str_or_null(name), &co, &d), "open domain");
        d_.reset(d, [](shmbus_domain *p) { shmbus_domain_close(p); });
    }
    Domain(Domain &&) noexcept = default;
    Domain &operator=(Domain &&) noexcept = default;
    Domain(const Domain &) = delete;
    Domain &operator=(const Domain &) = delete;

    Publisher publisher(const std::string &topic)
    {
        shmbus_pub *p = nullptr;
        detail::check(shmbus_pub_open(get(), topic.c_str(), &p), "open publisher");
        auto dom = d_; // the publisher keeps the domain joined
        return Publisher(
            std::shared_ptr<shmbus_pub>(p, [dom](shmbus_pub *x) { shmbus_pub_close(x); }));
    }
    Subscriber subscriber(const std::string &topic, bool history = false)
    {
        shmbus_sub_opts so{history};
        shmbus_sub *s = nullptr;
        detail::check(shmbus_sub_open(get(), topic.c_str(), &so, &s), "open subscriber");
        auto dom = d_; // the subscriber keeps the domain joined
        return Subscriber(
            std::shared_ptr<shmbus_sub>(s, [dom](shmbus_sub *x) { shmbus_sub_close(x); }));
    }
    // Open (classes empty) or create the pool `name` (shmbus_pool_open).
    Pool pool(const std::string &name, const std::vector<shmbus_pool_class> &classes = {})
    {
        shmbus_pool *p = nullptr;
        detail::check(shmbus_pool_open(get(), name.c_str(), classes.data(),
                                       unsigned(classes.size()), &p),
                      "open pool");
        return Pool(std::shared_ptr<shmbus_pool>(d_, p)); // owned by the domain
    }
    std::string name() const { return shmbus_domain_name(get()); }
    shmbus_domain *get() const { return detail::handle(d_, "domain"); }

  private:
    std::shared_ptr<shmbus_domain> d_;
};

} // namespace shmbus

#endif
