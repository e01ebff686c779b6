/* SIGBUS guard: a segment that another process shrinks does not kill this one.
 *
 * Touching a page of a shared mapping beyond the end of its (truncated) file raises SIGBUS.
 * Every segment this library maps is registered here. On the first SIGBUS inside one, the
 * handler replaces the whole registered range with private zero-filled memory of the same
 * protection (the faulting access then completes, reading zeros) and marks the segment
 * broken: calls on it return SHMBUS_EBADSEG from then on. A SIGBUS outside every registered
 * range goes to the handler that was installed before (or kills the process as usual).
 *
 * The handler is installed the first time a segment is mapped. A program that installs its
 * own SIGBUS handler afterwards replaces it and gives up this protection.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define GUARD_SLOTS 1024 /* registered mappings: 3 per pool, 1 per ctl or auxiliary segment */

struct guard_slot {
    _Atomic uintptr_t base; /* 0: free */
    _Atomic size_t len;
    _Atomic int prot;
    _Atomic bool *broken;
};

static struct guard_slot g_slots[GUARD_SLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* registration; not the handler */
static struct sigaction g_prev;
static bool g_installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (unsigned i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t base = atomic_load_explicit(&g_slots[i].base, memory_order_acquire);
        size_t len = atomic_load_explicit(&g_slots[i].len, memory_order_relaxed);
        if (!base || a < base || a - base >= len)
            continue;
        _Atomic bool *broken = g_slots[i].broken;
        if (broken)
            atomic_store(broken, true);
        /* mmap is a plain system call here: safe in a signal handler on Linux. */
        mmap((void *)base, len, atomic_load(&g_slots[i].prot),
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        return;
    }
    if ((g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_sigaction) {
        g_prev.sa_sigaction(sig, si, uc);
    } else if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
        g_prev.sa_handler(sig);
    } else {
        signal(SIGBUS, SIG_DFL); /* the fault repeats and ends the process as usual */
    }
}

void pool_guard(void *base, size_t len, int prot, _Atomic bool *broken)
{
    pthread_mutex_lock(&g_lock);
    if (!g_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        g_installed = sigaction(SIGBUS, &sa, &g_prev) == 0;
    }
    for (unsigned i = 0; i < GUARD_SLOTS; i++) {
        if (atomic_load(&g_slots[i].base) == 0) {
            g_slots[i].broken = broken;
            atomic_store(&g_slots[i].len, len);
            atomic_store(&g_slots[i].prot, prot);
            atomic_store_explicit(&g_slots[i].base, (uintptr_t)base, memory_order_release);
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
}

void pool_unguard(void *base)
{
    pthread_mutex_lock(&g_lock);
    for (unsigned i = 0; i < GUARD_SLOTS; i++)
        if (atomic_load(&g_slots[i].base) == (uintptr_t)base)
            atomic_store(&g_slots[i].base, 0);
    pthread_mutex_unlock(&g_lock);
}
