/* shmbus-bench latency: the floors, what waking another process costs on this machine with
 * nothing of shmbus or nng in the way, measured the way the bus rows are (one message at a
 * time, one way, CLOCK_MONOTONIC at the receiver minus the sender's stamp taken after it
 * wrote the payload).
 *
 *   futex        the sender writes the payload (any size: the time it takes is time the
 *                receiver sleeps, as before a large shmbus message) and the stamp into a
 *                MAP_SHARED memfd mapping, bumps a 32-bit sequence word there and FUTEX_WAKEs
 *                it; the receiver sleeps in FUTEX_WAIT on that word (the shared ops, not
 *                _PRIVATE) and reads the payload's first and last byte.
 *   unix-socket  the sender writes 64 bytes (stamp in the first 8) to one end of an
 *                AF_UNIX stream socket pair; the receiver blocks in read() on the other.
 *
 * The receiver is a forked process. As in the bus rows, it acknowledges each message over a
 * pipe, and the sender, asleep in poll() on that pipe, sends the next only then. It writes
 * its latencies into the shared page, which the sender reads after the child has exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_fanout.h"
#include "shmbus.h"

#define SOCKET_SIZE 64
#define WAIT_SLICE_MS 100      /* a sleeping side wakes this often to notice a stop */
#define PEER_TIMEOUT_MS 10000  /* the other side said nothing for this long: give up */

/* The mapping both processes share: this header, `count` latencies, then the payload at
 * the next page. Guards: `seq` and the payload and stamp it publishes are written by the
 * sender only, read by the receiver after it saw `seq` change (acquire); `lat` and `status`
 * are written by the receiver only, read by the sender after the receiver exited. */
struct floor_page {
    _Atomic uint32_t seq;
    uint32_t pad0;
    _Atomic uint64_t stamp;
    int32_t status;
    uint32_t pad;
    uint64_t lat[]; /* count of them, the warm-up excluded */
};

enum floor_kind { FLOOR_FUTEX, FLOOR_SOCKET };

struct floor {
    enum floor_kind kind;
    uint32_t warmup, count;
    uint64_t size;
    struct floor_page *pg;
    unsigned char *payload; /* FLOOR_FUTEX: in the mapping, after pg */
    size_t pg_len;
    int sock[2]; /* FLOOR_SOCKET: [0] the sender's end, [1] the receiver's */
    int ack[2];  /* the pipe of the acknowledgements: [0] the sender reads, [1] the receiver */
};

static volatile unsigned char sink;

static int futex_wait(_Atomic uint32_t *word, uint32_t val, int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    return (int)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Sleep on *word until it equals want; 0, SHMBUS_EINTR (stop requested), SHMBUS_ETIMEDOUT. */
static int await_word(_Atomic uint32_t *word, uint32_t want)
{
    uint64_t deadline = tool_now_ns() + PEER_TIMEOUT_MS * 1000000ull;
    for (;;) {
        uint32_t v = atomic_load_explicit(word, memory_order_acquire);
        if (v == want)
            return 0;
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        if (tool_now_ns() > deadline)
            return SHMBUS_ETIMEDOUT;
        if (futex_wait(word, v, WAIT_SLICE_MS) != 0 && errno != EAGAIN && errno != EINTR &&
            errno != ETIMEDOUT)
            return SHMBUS_ESYS;
    }
}

/* The next acknowledgement: asleep in poll() on the pipe (a slice at a time, noticing a
 * stop), then read its byte. */
static int await_ack(int fd)
{
    uint64_t deadline = tool_now_ns() + PEER_TIMEOUT_MS * 1000000ull;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int n = poll(&pf, 1, WAIT_SLICE_MS);
        if (n > 0) {
            char b;
            return bench_read_all(fd, &b, 1, true);
        }
        if (n < 0 && errno != EINTR)
            return SHMBUS_ESYS;
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        if (tool_now_ns() > deadline)
            return SHMBUS_ETIMEDOUT;
    }
}

/* Block in read() until len bytes came (waking a slice at a time to notice a stop). */
static int sock_read(int fd, void *buf, size_t len)
{
    uint64_t deadline = tool_now_ns() + PEER_TIMEOUT_MS * 1000000ull;
    struct timeval tv = {.tv_sec = 0, .tv_usec = WAIT_SLICE_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return SHMBUS_ECLOSED;
        if (errno != EINTR && errno != EAGAIN)
            return SHMBUS_ESYS;
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        if (tool_now_ns() > deadline)
            return SHMBUS_ETIMEDOUT;
    }
    return 0;
}

/* ---- the receiver (forked) --------------------------------------------------------------- */

static int receive_one(struct floor *f, uint32_t i, uint64_t *lat)
{
    struct floor_page *pg = f->pg;
    uint64_t now, stamp;
    if (f->kind == FLOOR_FUTEX) {
        int rc = await_word(&pg->seq, i + 1);
        if (rc)
            return rc;
        now = tool_now_ns();
        stamp = atomic_load_explicit(&pg->stamp, memory_order_relaxed);
        sink = (unsigned char)(f->payload[0] + f->payload[f->size - 1]);
    } else {
        unsigned char buf[SOCKET_SIZE];
        int rc = sock_read(f->sock[1], buf, sizeof buf);
        if (rc)
            return rc;
        now = tool_now_ns();
        memcpy(&stamp, buf, sizeof stamp);
        sink = (unsigned char)(buf[0] + buf[SOCKET_SIZE - 1]);
    }
    *lat = now > stamp ? now - stamp : 0;
    char ack = 1;
    return bench_write_all(f->ack[1], &ack, 1, true);
}

static _Noreturn void receiver_main(struct floor *f)
{
    int rc = 0;
    uint32_t total = f->warmup + f->count;
    for (uint32_t i = 0; i < total && rc == 0; i++) {
        uint64_t lat = 0;
        rc = receive_one(f, i, &lat);
        if (rc == 0 && i >= f->warmup)
            f->pg->lat[i - f->warmup] = lat;
    }
    f->pg->status = rc;
    _exit(rc ? 1 : 0);
}

/* ---- the sender --------------------------------------------------------------------------- */

static int send_one(struct floor *f, uint32_t i)
{
    struct floor_page *pg = f->pg;
    int fill = (int)((i + 1) & 0xff);
    if (f->kind == FLOOR_FUTEX) {
        memset(f->payload, fill, (size_t)f->size);
        atomic_store_explicit(&pg->stamp, tool_now_ns(), memory_order_relaxed);
        atomic_store_explicit(&pg->seq, i + 1, memory_order_release);
        futex_wake(&pg->seq);
    } else {
        unsigned char buf[SOCKET_SIZE];
        memset(buf, fill, sizeof buf);
        uint64_t stamp = tool_now_ns();
        memcpy(buf, &stamp, sizeof stamp);
        int rc = bench_write_all(f->sock[0], buf, sizeof buf, true);
        if (rc)
            return rc;
    }
    return await_ack(f->ack[0]);
}

static int run_floor(struct floor *f, fo_result *out)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return SHMBUS_ESYS;
    if (pid == 0) {
        if (f->kind == FLOOR_SOCKET)
            close(f->sock[0]);
        close(f->ack[0]);
        receiver_main(f);
    }
    if (f->kind == FLOOR_SOCKET) {
        close(f->sock[1]);
        f->sock[1] = -1;
    }
    close(f->ack[1]);
    f->ack[1] = -1;
    int rc = 0;
    for (uint32_t i = 0; i < f->warmup + f->count && rc == 0; i++)
        rc = send_one(f, i);
    if (rc)
        kill(pid, SIGTERM); /* our child, not yet reaped */
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
        rc = f->pg->status ? f->pg->status : SHMBUS_ESYS;
    if (rc)
        return rc;
    *out = (fo_result){.size = f->size, .nsubs = 1, .ran = 1,
                       .transport = f->kind == FLOOR_FUTEX ? FO_FUTEX : FO_UNIX,
                       .samples = f->count};
    /* one subscriber: every sample is its message's slowest */
    out->p50_ns = out->p50_slowest_ns = fo_percentile(f->pg->lat, f->count, 50);
    out->p99_ns = fo_percentile(f->pg->lat, f->count, 99);
    out->max_ns = fo_percentile(f->pg->lat, f->count, 100);
    return 0;
}

int fo_floor(int transport, uint64_t size, uint32_t warmup, uint32_t count, fo_result *out)
{
    if ((transport != FO_FUTEX && transport != FO_UNIX) || count == 0 || size == 0 ||
        size > FO_FLOOR_MAX_SIZE || (transport == FO_UNIX && size != SOCKET_SIZE))
        return bench_error("floor", SHMBUS_EINVAL);
    struct floor f = {.kind = transport == FO_FUTEX ? FLOOR_FUTEX : FLOOR_SOCKET,
                      .warmup = warmup, .count = count, .size = size, .sock = {-1, -1},
                      .ack = {-1, -1}};
    size_t page = (size_t)sysconf(_SC_PAGESIZE), head;
    head = (sizeof *f.pg + (size_t)count * sizeof f.pg->lat[0] + page - 1) / page * page;
    f.pg_len = head + (f.kind == FLOOR_FUTEX ? (size_t)size : 0);
    int mfd = memfd_create("shmbus-bench-floor", MFD_CLOEXEC);
    if (mfd < 0)
        return bench_error("memfd_create", SHMBUS_ESYS);
    void *map = MAP_FAILED;
    if (ftruncate(mfd, (off_t)f.pg_len) == 0)
        map = mmap(NULL, f.pg_len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    close(mfd);
    if (map == MAP_FAILED)
        return bench_error("mapping the floor's shared page", SHMBUS_ESYS);
    f.pg = map;
    f.payload = (unsigned char *)map + head;
    int rc = pipe2(f.ack, O_CLOEXEC) ? SHMBUS_ESYS : 0;
    if (rc == 0 && f.kind == FLOOR_SOCKET &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.sock))
        rc = SHMBUS_ESYS;
    if (rc == 0)
        rc = run_floor(&f, out);
    for (int i = 0; i < 2; i++) {
        if (f.sock[i] >= 0)
            close(f.sock[i]);
        if (f.ack[i] >= 0)
            close(f.ack[i]);
    }
    munmap(map, f.pg_len);
    if (rc == SHMBUS_EINTR)
        return 1;
    if (rc) {
        char what[64], sz[32];
        tool_fmt_size_exact(sz, sizeof sz, size);
        snprintf(what, sizeof what, "%s floor at %s", fo_transport_names[transport], sz);
        return bench_error(what, rc);
    }
    return 0;
}
