/* shmbus-bench latency and camera: the transports a message goes through.
 *
 *   shmbus    shmbus_pub_loan, write the payload in place, shmbus_pub_publish (which stamps
 *             the time); the subscriber's shmbus_sub_recv maps the block, it reads the first
 *             and last byte, shmbus_msg_release. Topic FO_TOPIC, "delivery": "nng".
 *   shmbus-shm     the same on topic FO_TOPIC_SHM, "delivery": "shm" (a domain of its own).
 *   shmbus-shm-fd  the same on topic FO_TOPIC_FD, the subscriber waiting in poll() on
 *             shmbus_sub_fd, then shmbus_sub_recv with timeout 0.
 *   futex, unix-socket  the floors, in bench_floor.c.
 *   nng-copy  what one writes without shmbus: nng pub0 listening on ipc://, sub0 dialing it,
 *             the whole payload in the message. nng_msg_alloc, write the payload, put the
 *             sequence number and the time in its first 16 bytes, nng_sendmsg; the
 *             subscriber's nng_recvmsg, read the first and last byte, nng_msg_free.
 *
 * Both write every payload byte with memset, so both pay the same "the producer wrote its
 * message" cost. Only api/shmbus.h and nng's public headers.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bench_fanout_defs.h"
#include "shmbus.h"


char fo_role[32] = "bench";
const char *const fo_transport_names[FO_NTRANSPORTS] = {
    "shmbus", "nng-copy", "shmbus-shm", "shmbus-shm-fd", "futex", "unix-socket"};

static const char *const topics[FO_NTRANSPORTS] = {FO_TOPIC, NULL, FO_TOPIC_SHM, FO_TOPIC_FD,
                                                   NULL, NULL};

/* shmbus on either delivery path; the rest are nng-copy and the floors (bench_floor.c) */
static bool on_bus(enum fo_transport t) { return topics[t] != NULL; }
static bool is_floor(enum fo_transport t) { return (FO_FLOOR_BITS & FO_BIT(t)) != 0; }

struct bt_pub {
    enum fo_transport t;
    const fo_env *env; /* the floors' mapping and socket */
    uint64_t seq; /* the last message's number */
    shmbus_domain *d; /* shared with the process's other users of that domain */
    shmbus_pub *p;
    nng_socket sock;
    bool sock_open;
};

struct bt_sub {
    enum fo_transport t;
    const fo_env *env; /* as in bt_pub */
    uint64_t last;     /* the floors: the last message received */
    shmbus_domain *d;  /* as in bt_pub */
    shmbus_sub *s;
    int fd;           /* FO_SHM_FD: shmbus_sub_fd */
    nng_socket sock;
    bool sock_open;
};

static volatile unsigned char sink; /* what the subscribers read, so it is read */

static int shmbus_fail(const char *call, int rc)
{
    const char *detail = shmbus_last_error();
    fprintf(stderr, "shmbus-bench: %s: %s: %s (%s)%s%s\n", fo_role, call, shmbus_errname(rc),
            shmbus_strerror(rc), detail && *detail ? ": " : "", detail ? detail : "");
    return rc;
}

static int floor_fail(enum fo_transport t, int rc)
{
    fprintf(stderr, "shmbus-bench: %s: the %s floor: %s (%s)\n", fo_role, fo_transport_names[t],
            shmbus_errname(rc), shmbus_strerror(rc));
    return rc;
}

static int nng_fail(const char *call, int rv)
{
    fprintf(stderr, "shmbus-bench: %s: %s: %s\n", fo_role, call, nng_strerror(rv));
    return SHMBUS_ETRANSPORT;
}

/* The domains this process has open, one per config (the shm one and the other), shared by
 * its publishers or subscribers of the transports on them. The processes are
 * single-threaded. */
static struct {
    shmbus_domain *d;
    int users;
} domains[2];

static bool on_shm(enum fo_transport t) { return (FO_SHM_BITS & FO_BIT(t)) != 0; }

/* Sets *out only when it succeeds. */
static int domain_get(const fo_env *env, enum fo_transport t, int group, const char *name,
                      shmbus_domain **out)
{
    int shm = on_shm(t);
    if (!domains[shm].d) {
        char dom[32];
        fo_domain_name(env, group, shm, dom, sizeof dom);
        shmbus_domain_opts o;
        shmbus_domain_opts_init(&o);
        o.config_path = shm ? env->config_shm : env->config;
        o.runtime_dir = env->dir;
        o.name = name;
        int rc = shmbus_domain_open(dom, &o, &domains[shm].d);
        if (rc)
            return shmbus_fail("shmbus_domain_open", rc);
    }
    domains[shm].users++;
    *out = domains[shm].d;
    return 0;
}

/* Close what a publisher or subscriber holds besides its shmbus_pub or shmbus_sub: its use
 * of the domain (if d; the last user closes it), then the socket (if sock_open). A failure
 * to close the domain is reported and returned only while `status` is 0. */
static int close_rest(shmbus_domain *d, nng_socket sock, bool sock_open, int status)
{
    for (int i = 0; d && i < 2; i++)
        if (domains[i].d == d && --domains[i].users == 0) {
            domains[i].d = NULL;
            int rc = shmbus_domain_close(d);
            if (rc && status == 0)
                status = shmbus_fail("shmbus_domain_close", rc);
        }
    if (sock_open)
        nng_close(sock);
    return status;
}

/* ---- publisher -------------------------------------------------------------------------- */

int bt_pub_open(const fo_env *env, enum fo_transport t, int group, bt_pub **out)
{
    bt_pub *p = calloc(1, sizeof *p);
    if (!p)
        return SHMBUS_ENOMEM;
    p->t = t;
    p->env = env;
    int rc, rv;
    if (is_floor(t)) {
        p->seq = bf_last(env, t); /* made before the fork: nothing to open */
    } else if (on_bus(t)) {
        if ((rc = domain_get(env, t, group, "bench-pub", &p->d)) != 0)
            goto fail;
        if ((rc = shmbus_pub_open(p->d, topics[t], &p->p)) != 0) {
            shmbus_fail("shmbus_pub_open", rc);
            goto fail;
        }
    } else {
        if ((rv = nng_pub0_open(&p->sock)) != 0) {
            rc = nng_fail("nng_pub0_open", rv);
            goto fail;
        }
        p->sock_open = true;
        /* pub0 drops what does not fit a subscriber's queue: room for more than a window */
        if ((rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, FO_QUEUE_DEPTH)) != 0) {
            rc = nng_fail("NNG_OPT_SENDBUF", rv);
            goto fail;
        }
        if ((rv = nng_listen(p->sock, env->url, NULL, 0)) != 0) {
            rc = nng_fail(env->url, rv);
            goto fail;
        }
    }
    *out = p;
    return 0;

fail: /* only one of the domain and the socket is open: their order does not matter */
    close_rest(p->d, p->sock, p->sock_open, rc);
    free(p);
    return rc;
}

int bt_pub_wait(bt_pub *p, int n, int timeout_ms)
{
    if (!on_bus(p->t))
        return 0;
    int rc = shmbus_pub_wait_subscribers(p->p, n, timeout_ms);
    if (rc)
        fprintf(stderr, "shmbus-bench: %s: %d of %d subscribers connected after %d ms\n",
                fo_role, shmbus_pub_subscribers(p->p), n, timeout_ms);
    return rc;
}

int bt_pub_send(bt_pub *p, uint64_t size, uint64_t *seq)
{
    uint64_t n = p->seq + 1;
    int fill = (int)(n & 0xff);
    if (is_floor(p->t)) {
        int rc = bf_send(p->env, p->t, n, size);
        if (rc)
            return floor_fail(p->t, rc);
    } else if (on_bus(p->t)) {
        shmbus_msg *m;
        int rc = shmbus_pub_loan(p->p, size, &m);
        if (rc)
            return shmbus_fail("shmbus_pub_loan", rc);
        memset(shmbus_msg_data(m), fill, (size_t)size);
        rc = shmbus_pub_publish(p->p, m, size);
        if (rc) {
            if (rc != SHMBUS_ETRANSPORT)
                shmbus_msg_release(m);
            return shmbus_fail("shmbus_pub_publish", rc);
        }
    } else {
        nng_msg *m;
        int rv = nng_msg_alloc(&m, (size_t)size);
        if (rv)
            return nng_fail("nng_msg_alloc", rv);
        unsigned char *body = nng_msg_body(m);
        memset(body, fill, (size_t)size);
        uint64_t stamp[2] = {n, tool_now_ns()};
        memcpy(body, stamp, sizeof stamp);
        if ((rv = nng_sendmsg(p->sock, m, 0)) != 0) {
            nng_msg_free(m);
            return nng_fail("nng_sendmsg", rv);
        }
    }
    p->seq = n;
    *seq = n;
    return 0;
}

int bt_pub_close(bt_pub *p)
{
    int status = 0;
    if (p->p) {
        int rc = shmbus_pub_close(p->p);
        if (rc)
            status = shmbus_fail("shmbus_pub_close", rc);
    }
    status = close_rest(p->d, p->sock, p->sock_open, status);
    free(p);
    return status;
}

/* ---- subscriber ------------------------------------------------------------------------- */

int bt_sub_open(const fo_env *env, enum fo_transport t, int group, int k, bt_sub **out)
{
    bt_sub *s = calloc(1, sizeof *s);
    if (!s)
        return SHMBUS_ENOMEM;
    s->t = t;
    s->env = env;
    s->fd = -1;
    int rc, rv = 0;
    if (is_floor(t)) {
        s->last = bf_last(env, t); /* made before the fork: nothing to open */
    } else if (on_bus(t)) {
        char name[32];
        snprintf(name, sizeof name, "bench-sub%d", k);
        if ((rc = domain_get(env, t, group, name, &s->d)) != 0)
            goto fail;
        if ((rc = shmbus_sub_open(s->d, topics[t], NULL, &s->s)) != 0) {
            shmbus_fail("shmbus_sub_open", rc);
            goto fail;
        }
        if (t == FO_SHM_FD && (rc = shmbus_sub_fd(s->s, &s->fd)) != 0) {
            shmbus_fail("shmbus_sub_fd", rc);
            goto fail;
        }
    } else {
        const char *what = "nng_sub0_open";
        if ((rv = nng_sub0_open(&s->sock)) != 0) {
            rc = nng_fail(what, rv);
            goto fail;
        }
        s->sock_open = true;
        if ((rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0)
            what = "NNG_OPT_SUB_SUBSCRIBE";
        else if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 0)) != 0)
            what = "NNG_OPT_RECVMAXSZ"; /* the default, 1 MiB, would refuse larger messages */
        else if ((rv = nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, FO_QUEUE_DEPTH)) != 0)
            what = "NNG_OPT_RECVBUF";
        else if ((rv = nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, FO_RECV_SLICE_MS)) != 0)
            what = "NNG_OPT_RECVTIMEO";
        else if ((rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 10)) != 0)
            what = "NNG_OPT_RECONNMINT";
        else if ((rv = nng_dial(s->sock, env->url, NULL, NNG_FLAG_NONBLOCK)) != 0)
            what = env->url; /* non-blocking: retries until the publisher listens */
        if (rv) {
            rc = nng_fail(what, rv);
            goto fail;
        }
    }
    *out = s;
    return 0;

fail: /* as in bt_pub_open */
    if (s->s)
        shmbus_sub_close(s->s);
    close_rest(s->d, s->sock, s->sock_open, rc);
    free(s);
    return rc;
}

/* The pollable-fd path: take what is waiting, else sleep in poll() on the fd for up to ms
 * and try again once. */
static int recv_fd(bt_sub *s, int ms, shmbus_msg **m)
{
    int rc = shmbus_sub_recv(s->s, 0, m);
    if (rc != SHMBUS_EAGAIN)
        return rc;
    struct pollfd pf = {.fd = s->fd, .events = POLLIN};
    int n = poll(&pf, 1, ms);
    if (n < 0)
        return errno == EINTR ? SHMBUS_ETIMEDOUT : SHMBUS_ESYS; /* the caller checks the stop */
    if (n == 0)
        return SHMBUS_ETIMEDOUT;
    rc = shmbus_sub_recv(s->s, 0, m);
    return rc == SHMBUS_EAGAIN ? SHMBUS_ETIMEDOUT : rc; /* woken for nothing: wait again */
}

static int recv_shmbus(bt_sub *s, int ms, bt_rx *rx)
{
    shmbus_msg *m;
    int rc = s->t == FO_SHM_FD ? recv_fd(s, ms, &m) : shmbus_sub_recv(s->s, ms, &m);
    if (rc == SHMBUS_ETIMEDOUT)
        return rc;
    if (rc)
        return shmbus_fail("shmbus_sub_recv", rc);
    uint64_t now = tool_now_ns(), ts = shmbus_msg_timestamp_ns(m);
    rx->lat_ns = now > ts ? now - ts : 0;
    rx->seq = shmbus_msg_seq(m);
    rx->len = shmbus_msg_length(m);
    const unsigned char *data = shmbus_msg_data(m);
    if (rx->len)
        sink = (unsigned char)(data[0] + data[rx->len - 1]);
    rc = shmbus_msg_release(m);
    return rc ? shmbus_fail("shmbus_msg_release", rc) : 0;
}

static int recv_nng(bt_sub *s, bt_rx *rx)
{
    nng_msg *m;
    int rv = nng_recvmsg(s->sock, &m, 0);
    if (rv == NNG_ETIMEDOUT)
        return SHMBUS_ETIMEDOUT;
    if (rv)
        return nng_fail("nng_recvmsg", rv);
    uint64_t now = tool_now_ns(), stamp[2] = {0, 0};
    const unsigned char *body = nng_msg_body(m);
    rx->len = nng_msg_len(m);
    if (rx->len >= sizeof stamp)
        memcpy(stamp, body, sizeof stamp);
    if (rx->len)
        sink = (unsigned char)(body[0] + body[rx->len - 1]);
    nng_msg_free(m);
    rx->seq = stamp[0];
    rx->lat_ns = now > stamp[1] ? now - stamp[1] : 0;
    return 0;
}

int bt_sub_recv(bt_sub *s, int timeout_ms, bt_rx *rx)
{
    uint64_t deadline = tool_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        if (tool_stop_requested())
            return SHMBUS_EINTR;
        int rc = is_floor(s->t) ? bf_recv(s->env, s->t, &s->last, FO_RECV_SLICE_MS, rx)
                 : on_bus(s->t) ? recv_shmbus(s, FO_RECV_SLICE_MS, rx)
                                : recv_nng(s, rx);
        if (rc && rc != SHMBUS_ETIMEDOUT && is_floor(s->t))
            return floor_fail(s->t, rc);
        if (rc != SHMBUS_ETIMEDOUT)
            return rc;
        if (tool_now_ns() >= deadline)
            return SHMBUS_ETIMEDOUT;
    }
}

void bt_sub_loss(bt_sub *s, bt_loss *out)
{
    *out = (bt_loss){0, 0, 0};
    shmbus_sub_counters c;
    if (on_bus(s->t) && shmbus_sub_stats(s->s, &c) == 0)
        *out = (bt_loss){c.expired, c.dropped, c.overflow + c.invalid};
}

int bt_sub_close(bt_sub *s)
{
    int status = 0;
    if (s->s) {
        int rc = shmbus_sub_close(s->s);
        if (rc)
            status = shmbus_fail("shmbus_sub_close", rc);
    }
    status = close_rest(s->d, s->sock, s->sock_open, status);
    free(s);
    return status;
}
