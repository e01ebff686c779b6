// The origin design's program, unchanged apart from its include line: two named nodes from the
// per-process manager, one written, one read (shmbus/share_mem_mgr.hpp, docs/cpp.md).
// The nodes live in domain $SHMBUS_NODE_DOMAIN (default "nodes").
#include <shmbus/share_mem_mgr.hpp>
int main() {
    ShareMemMgr *mgr = Singleton<ShareMemMgr>::GetInstance();
    {
        const SpShareMemElem<uint32_t> &a = mgr->AllocShareMemNode<uint32_t>("aaa");
        const SpShareMemElem<uint32_t> &b = mgr->AllocShareMemNode<uint32_t>("bbb");
        *b = 100;
        printf("%p %u\n", (void *)a->GetShareMemAddr(), *a->GetShareMemAddr());
    }
    Singleton<ShareMemMgr>::DestroyInstance();
}
