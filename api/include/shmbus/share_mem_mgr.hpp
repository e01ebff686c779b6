// share_mem_mgr.hpp: the origin design's names for shmbus nodes, a thin alias layer over
// shmbus/nodes.hpp (docs/cpp.md). A program written for the origin design compiles unchanged
// apart from its include line:
//
//   ShareMemMgr *mgr = Singleton<ShareMemMgr>::GetInstance();
//   {
//       const SpShareMemElem<uint32_t> &b = mgr->AllocShareMemNode<uint32_t>("bbb");
//       *b = 100;                                      // stores under the node's lock
//       printf("%u\n", *b->GetShareMemAddr());
//   }
//   Singleton<ShareMemMgr>::DestroyInstance();
//
//   origin                              shmbus
//   Singleton<ShareMemMgr>::GetInstance  shmbus::NodeManager::instance()
//   Singleton<ShareMemMgr>::DestroyInstance  shmbus::NodeManager::destroy()
//   mgr->AllocShareMemNode<T>(name, n)    NodeManager::instance().node<T>(name, n)
//   SpShareMemElem<T>, ShareMemElem<T>    std::shared_ptr<Node<T>>, Node<T>
//   elem.GetShareMemAddr()                Node<T>::get()
//   elem.GetShareMemSema()                &Node<T>::mutex()   (ShareSemaphore = NodeMutex)
//   UniqueLock<ShareSemaphore> l(*sema)   NodeLock l(*node)
//   elem = v, elem + x, elem * x          the same operators on Node<T>
//
// Where the origin returned an empty pointer on failure, these throw shmbus::Error.
// The node domain: $SHMBUS_NODE_DOMAIN, else "nodes" (see nodes.hpp).
#ifndef SHMBUS_SHARE_MEM_MGR_HPP
#define SHMBUS_SHARE_MEM_MGR_HPP

#include <cstdint>
#include <cstdio> // origin programs print with printf
#include <memory>
#include <mutex>

#include "nodes.hpp"

// The origin design's singleton holder: GetInstance creates on first use.
template <class T> class Singleton {
  public:
    static T *GetInstance()
    {
        std::lock_guard<std::mutex> g(lock());
        if (!ptr())
            ptr() = new T();
        return ptr();
    }
    static void DestroyInstance()
    {
        T *old;
        {
            std::lock_guard<std::mutex> g(lock());
            old = ptr();
            ptr() = nullptr;
        }
        delete old;
    }
    static bool GetInstanceStatus()
    {
        std::lock_guard<std::mutex> g(lock());
        return ptr() != nullptr;
    }

  private:
    static std::mutex &lock()
    {
        static std::mutex m;
        return m;
    }
    static T *&ptr()
    {
        static T *p = nullptr;
        return p;
    }
};

using ShareSemaphore = shmbus::NodeMutex;
template <class M> using UniqueLock = std::unique_lock<M>;

template <class T> class ShareMemElem : public shmbus::Node<T> {
  public:
    using shmbus::Node<T>::Node;
    using shmbus::Node<T>::operator=;
    T *GetShareMemAddr() const noexcept { return this->get(); }
    ShareSemaphore *GetShareMemSema() const noexcept { return &this->mutex(); }
};

template <class T> using SpShareMemElem = std::shared_ptr<ShareMemElem<T>>;

class ShareMemMgr {
  public:
    // The node `name` holding type_cnt T's (get-or-create): NodeManager::node<T>.
    template <class T>
    SpShareMemElem<T> AllocShareMemNode(const char *name, uint32_t type_cnt = 1)
    {
        return shmbus::NodeManager::instance().node<T, ShareMemElem<T>>(name, type_cnt);
    }

  private:
    ShareMemMgr() { shmbus::NodeManager::instance(); } // joins the node domain now
    ~ShareMemMgr() { shmbus::NodeManager::destroy(); }
    friend class Singleton<ShareMemMgr>;
};

#endif
