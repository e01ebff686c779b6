// nodes.hpp: named shared-memory nodes in C++: a per-process NodeManager hands out the node
// named "aaa" as a std::shared_ptr<Node<T>> (docs/cpp.md). Header-only, over shmbus_node_*.
//
//   auto n = shmbus::NodeManager::instance().node<uint32_t>("aaa");
//   *n = 100;                       // store under the node's lock
//   uint32_t v = n->load();         // read under the lock
//   { shmbus::NodeLock l(*n); ++*n->get(); }   // several steps under one lock
//
// Semantics
//   - The same name in any process of the domain is the same node: node() gets it, or creates
//     it zero-filled if no process holds it (created() says which).
//   - In a process, node<T>(name) returns the same object while any copy of its shared_ptr
//     lives: the copies (in any thread) are the in-process use count. The last copy drops this
//     process's attach; the last attach in any process destroys the node (its block returns to
//     the pool). A process that dies loses its attach too (the domain reclaims it).
//   - Each node has a robust, process-shared lock (mutex(), NodeLock). A process killed while
//     holding it blocks nobody: the next locker gets it, and owner_died() tells it that the
//     value may be half-written. The lock is recursive within a thread, so the operators
//     (which lock) may be used inside a NodeLock.
//   - T must be trivially copyable (it lives in shared memory, read by other processes).
//
// The manager opens (joins) the domain on first use: NodeOptions::domain, else
// $SHMBUS_NODE_DOMAIN, else "nodes", with the embedded default configuration, and the pool
// "nodes" (64 B x 256, 4 KiB x 64, 64 KiB x 16, 1 MiB x 4: a node is at most 1 MiB; 64 nodes
// per domain). Every process using one domain must give the same pool classes.
#ifndef SHMBUS_NODES_HPP
#define SHMBUS_NODES_HPP

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <typeindex>

#include "shmbus.hpp"

namespace shmbus {

// The node's robust process-shared lock (shmbus_node_lock), usable with std::lock_guard.
// Recursive within a thread. lock() throws Error if the lock cannot be taken. A process has
// one NodeMutex per node (NodeManager shares it between the node's objects), so the
// recursion holds whichever object of the node a thread locks through.
class NodeMutex {
  public:
    // node: a handle of the mutex's own on the node's block, so it stays usable while it lives.
    explicit NodeMutex(Message node) noexcept : node_(std::move(node)) {}
    NodeMutex(const NodeMutex &) = delete;
    NodeMutex &operator=(const NodeMutex &) = delete;

    void lock()
    {
        if (owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
            depth_++;
            return;
        }
        int rc = shmbus_node_lock(node_.get());
        if (rc != 0 && rc != SHMBUS_EOWNERDEAD)
            throw Error(rc, "node lock");
        owner_died_ = rc == SHMBUS_EOWNERDEAD;
        owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        depth_ = 1;
    }
    void unlock() noexcept
    {
        if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id())
            return; // not ours: nothing to undo
        if (--depth_ > 0)
            return;
        owner_.store(std::thread::id(), std::memory_order_relaxed);
        shmbus_node_unlock(node_.get());
    }
    // True if the lock's previous holder died holding it (seen by the last lock()): the value
    // may be half-written. Read it while holding the lock.
    bool owner_died() const noexcept { return owner_died_; }

  private:
    Message node_;
    std::atomic<std::thread::id> owner_{};
    unsigned depth_ = 0;    // guarded by the lock itself
    bool owner_died_ = false; // guarded by the lock itself
};

// A scoped guard over a node's lock.
class NodeLock {
  public:
    explicit NodeLock(NodeMutex &m) : m_(m) { m_.lock(); }
    template <class N> explicit NodeLock(const N &node) : NodeLock(node.mutex()) {}
    ~NodeLock() { m_.unlock(); }
    NodeLock(const NodeLock &) = delete;
    NodeLock &operator=(const NodeLock &) = delete;
    bool owner_died() const noexcept { return m_.owner_died(); }

  private:
    NodeMutex &m_;
};

// A node holding a T (or count() of them, an array) in shared memory. Made by
// NodeManager::node(); held by shared_ptr. The operators work on the first element.
template <class T> class Node {
    static_assert(std::is_trivially_copyable_v<T>, "a node holds a trivially copyable type");

  public:
    Node(Message msg, std::shared_ptr<NodeMutex> mutex, bool created, std::string name,
         std::size_t count = 1)
        : msg_(std::move(msg)), mutex_(std::move(mutex)), created_(created),
          name_(std::move(name)), count_(count)
    {
    }
    Node(const Node &) = delete;
    virtual ~Node() = default;

    // The value in shared memory (this process's address of it). Writes need the lock.
    T *get() const noexcept { return static_cast<T *>(shmbus_msg_data(msg_.get())); }
    T load() const
    {
        NodeLock l(*mutex_);
        return *get();
    }
    void store(const T &v)
    {
        NodeLock l(*mutex_);
        *get() = v;
    }
    // The origin design's operators: = stores, + and * compute from the value (under the lock).
    Node &operator=(const T &v)
    {
        store(v);
        return *this;
    }
    Node &operator=(const Node &o)
    {
        if (this != &o)
            store(o.load());
        return *this;
    }
    T operator+(const T &v) const { return load() + v; }
    T operator+(const Node &o) const { return load() + o.load(); }
    T operator*(const T &v) const { return load() * v; }
    T operator*(const Node &o) const { return load() * o.load(); }

    // The elements (as many as this process asked for): unchecked, writes need the lock.
    std::size_t count() const noexcept { return count_; }
    T &operator[](std::size_t i) const noexcept { return get()[i]; }
    T *begin() const noexcept { return get(); }
    T *end() const noexcept { return get() + count_; }

    NodeMutex &mutex() const noexcept { return *mutex_; }
    // Whether this process created the node (nobody held it when it was got).
    bool created() const noexcept { return created_; }
    const std::string &name() const noexcept { return name_; }
    const Message &message() const noexcept { return msg_; }

  private:
    Message msg_; // this process's attach
    std::shared_ptr<NodeMutex> mutex_; // shared by every object of this node in the process
    bool created_;
    std::string name_;
    std::size_t count_;
};

struct NodeOptions {
    std::string domain;     // "" : $SHMBUS_NODE_DOMAIN, else "nodes"
    DomainOptions domain_options;
    std::string pool = "nodes";
    std::vector<shmbus_pool_class> classes = {
        {64, 256}, {4096, 64}, {65536, 16}, {1u << 20, 4}};
};

// The per-process node manager (a singleton).
class NodeManager {
  public:
    // The manager, created on first use (thread-safe). Throws Error if the domain or the pool
    // cannot be opened.
    static NodeManager &instance()
    {
        std::lock_guard<std::mutex> g(global_mutex());
        auto &inst = instance_ptr();
        if (!inst)
            inst.reset(new NodeManager(options()));
        return *inst;
    }
    // Options for the manager; only before it exists (else SHMBUS_EBUSY).
    static void configure(NodeOptions o)
    {
        std::lock_guard<std::mutex> g(global_mutex());
        if (instance_ptr())
            throw Error(SHMBUS_EBUSY, "NodeManager::configure", "the manager exists already");
        options() = std::move(o);
    }
    // Drop the manager. Nodes still held elsewhere stay valid and keep the domain joined until
    // the last goes; a later instance() makes a new manager. No reference from instance() may
    // be used afterwards.
    static void destroy() noexcept
    {
        std::unique_ptr<NodeManager> old;
        {
            std::lock_guard<std::mutex> g(global_mutex());
            old = std::move(instance_ptr());
        }
    }
    static bool exists() noexcept
    {
        std::lock_guard<std::mutex> g(global_mutex());
        return instance_ptr() != nullptr;
    }

    // The node `name` holding count T's (E: the element class, Node<T> or one derived from
    // it). Throws Error: SHMBUS_EINCOMPAT if the node exists with less room than that (or
    // this process holds it with fewer elements), SHMBUS_ELIMIT if the domain's node table is
    // full, SHMBUS_ETOOBIG beyond the largest class, SHMBUS_EINVAL for a bad name or count 0.
    template <class T, class E = Node<T>>
    std::shared_ptr<E> node(const std::string &name, std::size_t count = 1)
    {
        static_assert(std::is_base_of_v<Node<T>, E>, "E derives from Node<T>");
        if (count == 0 || count > (std::size_t(1) << 40) / sizeof(T))
            throw Error(SHMBUS_EINVAL, "node", "element count 0 or too large");
        const uint64_t bytes = uint64_t(sizeof(T)) * count;
        std::lock_guard<std::mutex> g(mutex_);
        auto key = std::make_pair(name, std::type_index(typeid(E)));
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            if (auto sp = std::static_pointer_cast<E>(it->second.lock())) {
                if (sp->count() < count)
                    throw Error(SHMBUS_EINCOMPAT, "node",
                                "node \"" + name + "\" is held here with " +
                                    std::to_string(sp->count()) + " elements");
                return sp;
            }
        }
        shmbus_msg *m = nullptr;
        bool created = false;
        detail::check(shmbus_node_get(pool_.get(), name.c_str(), bytes, &m, &created), "node");
        Message msg(m, pool_.handle());
        if (msg.capacity() < bytes)
            throw Error(SHMBUS_EINCOMPAT, "node",
                        "node \"" + name + "\" has " + std::to_string(msg.capacity()) +
                            " bytes, " + std::to_string(count) + " elements need " +
                            std::to_string(bytes));
        std::shared_ptr<NodeMutex> mx = mutexes_[name].lock();
        if (!mx) // the first object of this node in the process
            mx = std::make_shared<NodeMutex>(msg.clone());
        auto sp = std::make_shared<E>(std::move(msg), mx, created, name, count);
        forget_expired(cache_); // nodes and locks nobody holds any more
        forget_expired(mutexes_);
        cache_[key] = sp;
        mutexes_[name] = mx;
        return sp;
    }

    Domain &domain() noexcept { return dom_; }
    Pool &pool() noexcept { return pool_; }

  private:
    explicit NodeManager(const NodeOptions &o)
        : dom_(domain_name(o), o.domain_options), pool_(dom_.pool(o.pool, o.classes))
    {
    }
    template <class M> static void forget_expired(M &m)
    {
        for (auto e = m.begin(); e != m.end();)
            e = e->second.expired() ? m.erase(e) : std::next(e);
    }
    static std::string domain_name(const NodeOptions &o)
    {
        if (!o.domain.empty())
            return o.domain;
        const char *env = std::getenv("SHMBUS_NODE_DOMAIN");
        return env && *env ? env : "nodes";
    }
    static std::mutex &global_mutex()
    {
        static std::mutex m;
        return m;
    }
    static std::unique_ptr<NodeManager> &instance_ptr()
    {
        static std::unique_ptr<NodeManager> p;
        return p;
    }
    static NodeOptions &options()
    {
        static NodeOptions o;
        return o;
    }

    Domain dom_;
    Pool pool_;
    std::mutex mutex_; // guards cache_ and mutexes_
    std::map<std::pair<std::string, std::type_index>, std::weak_ptr<void>> cache_;
    std::map<std::string, std::weak_ptr<NodeMutex>> mutexes_;
};

} // namespace shmbus

#endif
