/* shmbus-bench latency: the floors, what waking another process costs on this machine with
 * nothing of shmbus or nng in the way. They are transports of the fanout like the others
 * (bench_transport.c hands them here), run by the same publisher and subscriber processes,
 * interleaved with the bus rows at each size and acknowledged over the same pipes, so that
 * they are measured exactly as the bus rows are and at the same time:
 *
 *   futex        the sender writes the payload (any size: the time it takes is time the
 *                receivers sleep, as before a large shmbus message) into a MAP_SHARED memfd
 *                mapping, then the stamp, bumps a 32-bit sequence word there and wakes every
 *                receiver with one FUTEX_WAKE (INT_MAX); each receiver sleeps in FUTEX_WAIT
 *                on that word (the shared ops, not _PRIVATE) and reads the payload's first
 *                and last byte. One receiver or several (the 4-subscriber group), as many
 *                as the group has subscriber processes.
 *   unix-socket  the sender writes 64 bytes (sequence and stamp in the first 16) to one end
 *                of an AF_UNIX stream socket pair; the receiver blocks in read() on the other.
 *                One-to-one: only a group with one subscriber uses it.
 *
 * The mapping and the socket pair are made before the processes fork (bf_env_create) and
 * serve every group in turn. The futex slot holds one message: a receiver that falls behind
 * sees the latest only, which the latency phases (one message at a time, the next only
 * when every receiver acknowledged the last) never do. A group's publisher and receivers
 * start from the message a group before left in the slot (bf_last), so the word changes
 * with the first message of the next group.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench_fanout_defs.h"
#include "shmbus.h"

#define SOCKET_SIZE 64

/* The head of the shared mapping; the payload follows at the next page. Guards: every
 * field is written by the sender only; the receiver reads len, stamp and the payload after
 * it saw `seq` change (acquire; the sender stores seq last, release). */
struct floor_page {
    _Atomic uint32_t seq; /* the futex word: low 32 bits of the message's sequence number */
    uint32_t pad;
    uint64_t seq64;
    uint64_t stamp;
    uint64_t len;
};

static volatile unsigned char sink;

static struct floor_page *page(const fo_env *env) { return env->floor_map; }

static unsigned char *payload(const fo_env *env)
{
    return (unsigned char *)env->floor_map + env->floor_head;
}

int bf_env_create(fo_env *env, uint64_t futex_size, bool unix_socket)
{
    env->floor_map = NULL;
    env->usock[0] = env->usock[1] = -1;
    if (futex_size) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        env->floor_head = (sizeof(struct floor_page) + pg - 1) / pg * pg;
        env->floor_len = env->floor_head + (size_t)futex_size;
        int fd = memfd_create("shmbus-bench-floor", MFD_CLOEXEC);
        if (fd < 0)
            return bench_error("memfd_create", SHMBUS_ESYS);
        void *map = MAP_FAILED;
        if (ftruncate(fd, (off_t)env->floor_len) == 0)
            map = mmap(NULL, env->floor_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
            return bench_error("mapping the futex floor's memory", SHMBUS_ESYS);
        env->floor_map = map;
        env->floor_max = futex_size;
    }
    if (unix_socket && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, env->usock) != 0) {
        env->usock[0] = env->usock[1] = -1;
        return bench_error("socketpair", SHMBUS_ESYS);
    }
    /* the receiver's end wakes every slice to notice a stop */
    struct timeval tv = {.tv_sec = 0, .tv_usec = FO_RECV_SLICE_MS * 1000};
    if (unix_socket)
        setsockopt(env->usock[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return 0;
}

void bf_env_destroy(fo_env *env)
{
    if (env->floor_map)
        munmap(env->floor_map, env->floor_len);
    env->floor_map = NULL;
    for (int i = 0; i < 2; i++)
        if (env->usock[i] >= 0)
            close(env->usock[i]);
    env->usock[0] = env->usock[1] = -1;
}

int bf_send(const fo_env *env, int t, uint64_t seq, uint64_t size)
{
    int fill = (int)(seq & 0xff);
    if (t == FO_FUTEX) {
        if (!env->floor_map || size == 0 || size > env->floor_max)
            return SHMBUS_EINVAL;
        struct floor_page *pg = page(env);
        memset(payload(env), fill, (size_t)size);
        pg->len = size;
        pg->seq64 = seq;
        pg->stamp = tool_now_ns();
        atomic_store_explicit(&pg->seq, (uint32_t)seq, memory_order_release);
        /* every receiver at once, as the shm delivery path wakes its subscribers */
        syscall(SYS_futex, (uint32_t *)&pg->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        return 0;
    }
    if (env->usock[0] < 0 || size != SOCKET_SIZE)
        return SHMBUS_EINVAL;
    unsigned char buf[SOCKET_SIZE];
    memset(buf, fill, sizeof buf);
    uint64_t stamp[2] = {seq, tool_now_ns()};
    memcpy(buf, stamp, sizeof stamp);
    return bench_write_all(env->usock[0], buf, sizeof buf, true);
}

uint64_t bf_last(const fo_env *env, int t)
{
    if (t != FO_FUTEX || !env->floor_map)
        return 0;
    const struct floor_page *pg = page(env);
    (void)atomic_load_explicit(&pg->seq, memory_order_acquire); /* seq64 is stored before */
    return pg->seq64;
}

/* FUTEX_WAIT until the word is no longer `last`, at most ms. */
static int futex_recv(const fo_env *env, uint64_t *last, int ms, bt_rx *rx)
{
    struct floor_page *pg = page(env);
    uint32_t v = atomic_load_explicit(&pg->seq, memory_order_acquire);
    if (v == (uint32_t)*last) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        if (syscall(SYS_futex, (uint32_t *)&pg->seq, FUTEX_WAIT, v, &ts, NULL, 0) != 0 &&
            errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
            return SHMBUS_ESYS;
        v = atomic_load_explicit(&pg->seq, memory_order_acquire);
        if (v == (uint32_t)*last)
            return SHMBUS_ETIMEDOUT; /* the caller checks the stop and its deadline */
    }
    uint64_t now = tool_now_ns(), stamp = pg->stamp;
    rx->seq = pg->seq64;
    rx->len = pg->len;
    rx->lat_ns = now > stamp ? now - stamp : 0;
    if (rx->len > env->floor_max)
        return SHMBUS_EINVAL;
    const unsigned char *data = payload(env);
    sink = (unsigned char)(data[0] + data[rx->len - 1]);
    *last = rx->seq;
    return 0;
}

/* read() 64 bytes, blocking up to a slice (SO_RCVTIMEO) at a time. */
static int socket_recv(const fo_env *env, bt_rx *rx)
{
    unsigned char buf[SOCKET_SIZE];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = read(env->usock[1], buf + got, sizeof buf - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            return SHMBUS_ECLOSED;
        if (errno != EAGAIN && errno != EINTR)
            return SHMBUS_ESYS;
        if (got == 0)
            return SHMBUS_ETIMEDOUT; /* nothing yet: the caller checks the stop */
        if (tool_stop_requested())
            return SHMBUS_EINTR;
    }
    uint64_t now = tool_now_ns(), stamp[2];
    memcpy(stamp, buf, sizeof stamp);
    sink = (unsigned char)(buf[0] + buf[SOCKET_SIZE - 1]);
    rx->seq = stamp[0];
    rx->len = SOCKET_SIZE;
    rx->lat_ns = now > stamp[1] ? now - stamp[1] : 0;
    return 0;
}

int bf_recv(const fo_env *env, int t, uint64_t *last, int ms, bt_rx *rx)
{
    if (t == FO_FUTEX)
        return env->floor_map ? futex_recv(env, last, ms, rx) : SHMBUS_EINVAL;
    return env->usock[1] >= 0 ? socket_recv(env, rx) : SHMBUS_EINVAL;
}
