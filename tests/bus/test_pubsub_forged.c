/* Forged descriptors: whatever a peer puts on the wire, a subscriber counts it and never
 * returns it, and a genuine publisher's messages still get through.
 *
 * A subscriber dials the endpoints that publishers record in the registry. To put a raw nng
 * pub0 socket at one of them, the forger opens a publisher A, unlinks A's ipc socket file and
 * listens on the same path with the raw socket: the registry still lists A, so a subscriber
 * opened afterwards dials the raw socket. A second publisher B stays genuine.
 *
 * Same rules as test_pubsub.c: children are forked before the test process touches the bus
 * and report by exit status; the test process closes the domain last.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "pubsub_common.h"

/* Wire format (bus/msg.c, shmpool/desc.c): a 64-byte pool descriptor, then u32 magic "SHBT",
 * u16 version 1, u16 topic index, u64 publisher id; all little-endian. */
#define W_SIZE 80
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void wire(uint8_t out[W_SIZE], const shmbus_desc *real, uint16_t topic, uint64_t pub_id,
                 uint64_t user)
{
    memcpy(out, real->bytes, 64);
    put64(out + 56, user);
    put32(out + 64, 0x54424853u);
    put16(out + 68, 1);
    put16(out + 70, topic);
    put64(out + 72, pub_id);
}

/* Forged wire message k of FORGED (len in *len). All are counted invalid: the last two name a
 * real block with the wrong generation or loan number, which alone looks like a stale
 * descriptor, but they carry a publisher id that no live publisher has and that the
 * subscriber never heard from, so they cannot be real messages it lost. Those that pass the
 * format checks carry consecutive sequence numbers 1, 2, ... of that ghost publisher. */
#define FORGED 18
#define FORGED_INVALID 18
static void forge(unsigned k, const shmbus_desc *real, uint8_t out[2 * W_SIZE], size_t *len)
{
    const uint64_t ghost = (777ull << 8) | 63; /* registry slot 63 is unused here */
    uint64_t rs = 99 + k;
    *len = W_SIZE;
    wire(out, real, 0, ghost, 1);
    switch (k) {
    case 0: memset(out, 0, W_SIZE); break;                                  /* zeros */
    case 1: for (int i = 0; i < W_SIZE; i += 8) put64(out + i, ps_rand(&rs)); break;
    case 2: *len = 12; break;                                               /* truncated */
    case 3: memcpy(out + W_SIZE, out, W_SIZE); *len = 2 * W_SIZE; break;    /* too long */
    case 4: out[64] ^= 0xff; break;                                         /* wire magic */
    case 5: put16(out + 68, 2); break;                                      /* wire version */
    case 6: out[0] ^= 0xff; break;                                          /* desc magic */
    case 7: put32(out + 20, 1); break;                                      /* reserved */
    case 8: put16(out + 70, 7); break;                                      /* other topic */
    case 9: put64(out + 72, (5ull << 8) | 200); break;                      /* no such slot */
    case 10: put64(out + 56, 0); break;                                     /* seq 0 */
    case 11: put32(out + 8, (uint32_t)get64(out + 8) + 1); break;           /* other pool */
    case 12: put16(out + 12, 9); put64(out + 56, 1); break;                 /* no such class */
    case 13: put32(out + 16, 0x7fffffff); put64(out + 56, 2); break;        /* no such index */
    case 14: put64(out + 24, 1ull << 40); put64(out + 56, 3); break;        /* length */
    case 15: put64(out + 56, 4); break;  /* a real held block, but not this message (seq) */
    case 16: put64(out + 32, get64(out + 32) + 1000); put64(out + 56, 5); break; /* loan no. */
    case 17: put16(out + 14, (uint16_t)(out[14] | out[15] << 8) + 1); put64(out + 56, 6); break;
    }
}

struct forge_shared {
    _Atomic uint64_t ids[2];    /* forger: publisher ids of A and B */
    _Atomic uint64_t connected; /* subscriber: connected to A (raw) and B */
    _Atomic uint64_t judged;    /* subscriber: counted every forged descriptor */
    _Atomic uint64_t published; /* forger: genuine messages published on B */
    _Atomic uint64_t got;       /* subscriber: genuine messages received */
    _Atomic uint64_t done;
};

static void pipe_added(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)pipe, (void)ev;
    atomic_fetch_add((_Atomic uint64_t *)arg, 1);
}

static uint64_t pub_id(shmbus_pub *p)
{
    shmbus_msg *m;
    PS_OK(shmbus_pub_loan(p, 64, &m)); /* its id, as a message shows it */
    uint64_t id = shmbus_msg_publisher(m);
    PS_OK(shmbus_msg_release(m));
    return id;
}

static void endpoint(const ps_env *e, uint64_t id, char *url, size_t len)
{
    snprintf(url, len, "ipc://%s/shmbus.%s/p%llu.ipc", e->tmpdir, e->dom,
             (unsigned long long)id);
}

/* Unlink publisher p's ipc socket file and listen on its path with a raw pub0 socket: a
 * subscriber that finds p in the registry dials the raw socket instead. */
static nng_socket take_place(const ps_env *e, shmbus_pub *p, _Atomic uint64_t *pipes)
{
    char url[600];
    endpoint(e, pub_id(p), url, sizeof url);
    PS_CHECK(unlink(url + 6) == 0, "unlink %s", url + 6);
    nng_socket raw;
    PS_CHECK(nng_pub0_open(&raw) == 0, "nng_pub0_open");
    PS_CHECK(nng_socket_set_int(raw, NNG_OPT_SENDBUF, 4 * FORGED) == 0, "send buffer");
    PS_CHECK(nng_pipe_notify(raw, NNG_PIPE_EV_ADD_POST, pipe_added, (void *)pipes) == 0,
             "pipe notify");
    PS_CHECK(nng_listen(raw, url, NULL, 0) == 0, "listen on %s", url);
    return raw;
}

/* The forger. poison: forge B's own id with a huge sequence number, between B's messages. */
static int forger(const ps_env *e, ps_chan *c, struct forge_shared *sh, bool poison)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pool *pool;
    PS_OK(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    shmbus_msg *held;
    shmbus_desc real;
    PS_OK(shmbus_pool_loan(pool, 100, 0, &held));
    memset(shmbus_msg_data(held), 1, 100);
    PS_OK(shmbus_msg_describe(held, 100, &real));

    shmbus_pub *a, *b;
    PS_OK(shmbus_pub_open(d, "forge", &a));
    _Atomic uint64_t raw_pipes = 0;
    nng_socket raw = take_place(e, a, &raw_pipes);
    PS_OK(shmbus_pub_open(d, "forge", &b));
    PS_CHECK(proc_tell(c->up[1], 'L') == 0, "pipe");

    PS_CHECK(ps_wait_counter(&sh->connected, 1, PS_SAFETY_MS) == 0, "no subscriber");
    PS_CHECK(ps_wait_counter(&raw_pipes, 1, PS_SAFETY_MS) == 0, "raw socket: no pipe");
    PS_OK(shmbus_pub_wait_subscribers(b, 1, PS_SAFETY_MS));
    uint8_t buf[2 * W_SIZE];
    size_t len;
    if (!poison) {
        for (unsigned k = 0; k < FORGED; k++) {
            forge(k, &real, buf, &len);
            PS_CHECK(nng_send(raw, buf, len, 0) == 0, "send");
        }
        PS_CHECK(ps_wait_counter(&sh->judged, 1, PS_SAFETY_MS) == 0, "subscriber stalled");
        PS_OK(ps_publish(b, 200, 1, 0, 0));
        atomic_store(&sh->published, 1);
    } else {
        shmbus_msg *m;
        PS_OK(shmbus_pub_loan(b, 64, &m)); /* B's id, as a message shows it */
        uint64_t b_id = shmbus_msg_publisher(m);
        PS_OK(shmbus_msg_release(m));
        PS_OK(ps_publish(b, 200, 1, 0, 0));
        atomic_store(&sh->published, 1);
        PS_CHECK(ps_wait_counter(&sh->got, 1, PS_SAFETY_MS) == 0, "subscriber stalled");
        wire(buf, &real, 0, b_id, 1ull << 40); /* B's id, a far-future seq, a bad index */
        put32(buf + 16, 0x7fffffff);
        PS_CHECK(nng_send(raw, buf, W_SIZE, 0) == 0, "send");
        PS_CHECK(ps_wait_counter(&sh->judged, 1, PS_SAFETY_MS) == 0, "subscriber stalled");
        PS_OK(ps_publish(b, 200, 2, 0, 0));
        PS_OK(ps_publish(b, 200, 3, 0, 0));
        atomic_store(&sh->published, 3);
    }
    PS_CHECK(ps_wait_counter(&sh->done, 1, PS_SAFETY_MS) == 0, "subscriber stalled");
    nng_close(raw);
    PS_OK(shmbus_pub_close(a));
    PS_OK(shmbus_pub_close(b));
    PS_OK(shmbus_msg_release(held));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

/* Receive until the counters reach `seen` (invalid + expired); no message may come out. */
static shmbus_sub_counters judge(shmbus_sub *s, uint64_t seen)
{
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    for (;;) {
        shmbus_sub_counters st = ps_sub_stats(s);
        if (st.invalid + st.expired >= seen)
            return st;
        PS_CHECK(proc_now_ns() < deadline, "forged descriptors not all counted: " PS_SUB_FMT,
                 PS_SUB_ARGS(st));
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        PS_CHECK(rc == SHMBUS_ETIMEDOUT, "recv returned %s for a forged descriptor (seq %llu)",
                 shmbus_errname(rc), m ? (unsigned long long)shmbus_msg_seq(m) : 0ull);
    }
}

static int forge_subscriber(const ps_env *e, ps_chan *c, struct forge_shared *sh, bool poison)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "forge", NULL, &s));
    PS_OK(shmbus_sub_wait_publishers(s, 2, PS_SAFETY_MS));
    atomic_store(&sh->connected, 1);
    shmbus_sub_counters st;
    if (!poison) {
        st = judge(s, FORGED);
        PS_CHECK(st.invalid == FORGED_INVALID && st.expired == FORGED - FORGED_INVALID &&
                     st.received == 0 && st.dropped == 0 && st.overflow == 0 && st.held == 0,
                 PS_SUB_FMT, PS_SUB_ARGS(st));
        atomic_store(&sh->judged, 1);
        ps_expect_seq(ps_recv_one(s, "after the forged ones"), 1); /* B still gets through */
    } else {
        ps_expect_seq(ps_recv_one(s, "B's first message"), 1);
        atomic_store(&sh->got, 1);
        st = judge(s, 1);
        atomic_store(&sh->judged, 1);
        bool ok = true;
        for (uint64_t want = 2; want <= 3; want++) {
            shmbus_msg *m = NULL;
            int rc = shmbus_sub_recv(s, ps_patience(3000), &m);
            if (rc != 0) {
                fprintf(stderr, "child %d: B's genuine message %llu was never delivered after "
                        "a forged descriptor with B's id and seq 2^40 (recv: %s)\n",
                        (int)getpid(), (unsigned long long)want, shmbus_errname(rc));
                ok = false;
                break;
            }
            ps_expect_seq(m, want);
        }
        st = ps_sub_stats(s);
        if (st.dropped != 0) {
            fprintf(stderr, "child %d: a descriptor that failed validation was counted as "
                    "%llu dropped messages: " PS_SUB_FMT "\n", (int)getpid(),
                    (unsigned long long)st.dropped, PS_SUB_ARGS(st));
            ok = false;
        }
        PS_CHECK(st.invalid == 1, PS_SUB_FMT, PS_SUB_ARGS(st));
        atomic_store(&sh->done, 1);
        PS_CHECK(ok, "forged descriptor disturbed the genuine publisher's stream");
    }
    atomic_store(&sh->done, 1);
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int replay_forger(const ps_env *e, ps_chan *c, struct forge_shared *sh);
static int replay_subscriber(const ps_env *e, ps_chan *c, struct forge_shared *sh);

enum forgery { FORGE, POISON, REPLAY };

static void run_forgery(void **state, enum forgery mode)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "forge.json");
    struct forge_shared *sh = ps_shared(e, sizeof *sh);
    ps_chan ch[2];
    pid_t pid[2];
    for (unsigned i = 0; i < 2; i++) {
        ps_chan_make(&ch[i]);
        if ((pid[i] = proc_fork()) == 0)
            _exit(mode == REPLAY ? (i == 0 ? replay_forger(e, &ch[i], sh)
                                           : replay_subscriber(e, &ch[i], sh))
                  : i == 0 ? forger(e, &ch[i], sh, mode == POISON)
                           : forge_subscriber(e, &ch[i], sh, mode == POISON));
        ps_chan_parent(&ch[i]);
    }
    shmbus_domain *d = ps_open_domain(e); /* first: topic "forge" gets index 0 */
    ps_tell_child(&ch[0], 'g');
    ps_hear_child(&ch[0], 'L', PS_CHILD_MS, "forger listens in publisher A's place");
    ps_tell_child(&ch[1], 'g');
    proc_expect_ok(pid[1], PS_CHILD_MS, "subscriber");
    proc_expect_ok(pid[0], PS_CHILD_MS, "forger");
    for (unsigned i = 0; i < 2; i++)
        ps_chan_close(&ch[i]);
    ps_assert_pool_drained(d, "frames", 0);
    ps_close_domain(e, d);
}

/* ---- real descriptors out of place: another publisher's, another topic's, replayed ------- */

#define MADE_UP 5
#define MISPLACED (MADE_UP + 4) /* all counted invalid; the one real A message is delivered */

/* A real wire message of publisher `id`, read off a raw sub0 socket dialed to it. */
static void capture(nng_socket cap, uint64_t id, uint8_t out[W_SIZE])
{
    for (;;) {
        size_t len = W_SIZE;
        PS_CHECK(nng_recv(cap, out, &len, 0) == 0 && len == W_SIZE, "capture");
        if (get64(out + 72) == id && (get64(out + 64) & 0xffffffffu) == 0x54424853u)
            return; /* a message of publisher id (not a sync marker) */
    }
}

static int replay_forger(const ps_env *e, ps_chan *c, struct forge_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_pub *a, *b, *o;
    PS_OK(shmbus_pub_open(d, "forge", &a));
    PS_OK(shmbus_pub_open(d, "forge", &b));
    PS_OK(shmbus_pub_open(d, "other", &o));
    uint64_t ida = pub_id(a), idb = pub_id(b), ido = pub_id(o);
    atomic_store(&sh->ids[0], ida);
    atomic_store(&sh->ids[1], idb);
    /* a raw subscriber on all three, to read real descriptors off the wire */
    nng_socket cap;
    PS_CHECK(nng_sub0_open(&cap) == 0 && nng_socket_set(cap, NNG_OPT_SUB_SUBSCRIBE, "", 0) == 0 &&
                 nng_socket_set_ms(cap, NNG_OPT_RECVTIMEO, PS_SAFETY_MS) == 0,
             "raw subscriber");
    shmbus_pub *all[3] = {a, b, o};
    for (unsigned k = 0; k < 3; k++) {
        char url[600];
        endpoint(e, k == 0 ? ida : k == 1 ? idb : ido, url, sizeof url);
        PS_CHECK(nng_dial(cap, url, NULL, 0) == 0, "dial %s", url);
        PS_OK(shmbus_pub_wait_subscribers(all[k], 1, PS_SAFETY_MS));
    }
    _Atomic uint64_t raw_pipes = 0;
    nng_socket raw = take_place(e, a, &raw_pipes); /* A's connection to cap stays */
    PS_CHECK(proc_tell(c->up[1], 'L') == 0, "pipe");
    PS_CHECK(ps_wait_counter(&sh->connected, 1, PS_SAFETY_MS) == 0, "no subscriber");
    PS_CHECK(ps_wait_counter(&raw_pipes, 1, PS_SAFETY_MS) == 0, "raw socket: no pipe");
    PS_OK(shmbus_pub_wait_subscribers(b, 2, PS_SAFETY_MS));

    uint8_t wa[W_SIZE], wb[W_SIZE], wo[W_SIZE], buf[W_SIZE];
    PS_OK(ps_publish(a, 200, 1, 0, 0)); /* reaches cap only: the subscriber dialed raw */
    capture(cap, ida, wa);
    PS_OK(ps_publish(b, 200, 1, 1, 0)); /* reaches the subscriber, genuinely */
    capture(cap, idb, wb);
    PS_OK(ps_publish(o, 200, 1, 2, 0));
    capture(cap, ido, wo);
    /* over A's connection: B's message under made-up publisher ids, then under A's id */
    for (unsigned k = 0; k < MADE_UP; k++) {
        memcpy(buf, wb, W_SIZE);
        put64(buf + 72, ((900ull + k) << 8) | (40 + k));
        PS_CHECK(nng_send(raw, buf, W_SIZE, 0) == 0, "send");
    }
    memcpy(buf, wb, W_SIZE);
    put64(buf + 72, ida);
    PS_CHECK(nng_send(raw, buf, W_SIZE, 0) == 0, "send");
    /* topic "other"'s message with its topic field rewritten to "forge" (index 0), under its
     * own publisher id and under A's */
    memcpy(buf, wo, W_SIZE);
    put16(buf + 70, 0);
    PS_CHECK(nng_send(raw, buf, W_SIZE, 0) == 0, "send");
    put64(buf + 72, ida);
    PS_CHECK(nng_send(raw, buf, W_SIZE, 0) == 0, "send");
    /* A's own message, then exactly the same again */
    PS_CHECK(nng_send(raw, wa, W_SIZE, 0) == 0, "send");
    PS_CHECK(nng_send(raw, wa, W_SIZE, 0) == 0, "send");

    PS_CHECK(ps_wait_counter(&sh->done, 1, PS_SAFETY_MS) == 0, "subscriber stalled");
    nng_close(raw);
    nng_close(cap);
    for (unsigned k = 0; k < 3; k++)
        PS_OK(shmbus_pub_close(all[k]));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static int replay_subscriber(const ps_env *e, ps_chan *c, struct forge_shared *sh)
{
    shmbus_domain *d = ps_child_start(e, c);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, "forge", NULL, &s));
    PS_OK(shmbus_sub_wait_publishers(s, 2, PS_SAFETY_MS));
    atomic_store(&sh->connected, 1);
    bool got_a = false, got_b = false;
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    shmbus_sub_counters st = ps_sub_stats(s);
    while (!(got_a && got_b && st.invalid >= MISPLACED)) {
        PS_CHECK(proc_now_ns() < deadline, "not all judged: " PS_SUB_FMT, PS_SUB_ARGS(st));
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        st = ps_sub_stats(s);
        if (rc == SHMBUS_ETIMEDOUT)
            continue;
        PS_OK(rc);
        uint64_t from = shmbus_msg_publisher(m);
        ps_hdr h;
        PS_CHECK(ps_check_msg(m, &h) == 0, "payload");
        PS_CHECK(shmbus_msg_seq(m) == 1 && h.src == (from == sh->ids[0] ? 0u : 1u),
                 "delivered a misplaced descriptor: publisher %llu seq %llu, payload of source "
                 "%u (" PS_SUB_FMT ")", (unsigned long long)from,
                 (unsigned long long)shmbus_msg_seq(m), h.src, PS_SUB_ARGS(st));
        bool *got = from == sh->ids[0] ? &got_a : &got_b;
        PS_CHECK(from == sh->ids[0] || from == sh->ids[1], "unknown publisher %llu",
                 (unsigned long long)from);
        PS_CHECK(!*got, "publisher %llu's message delivered twice (a replay)",
                 (unsigned long long)from);
        *got = true;
        PS_OK(shmbus_msg_release(m));
    }
    shmbus_msg *m = NULL;
    PS_RC(shmbus_sub_recv(s, 0, &m), SHMBUS_EAGAIN);
    st = ps_sub_stats(s);
    PS_CHECK(st.received == 2 && st.invalid == MISPLACED && st.expired + st.dropped == 0,
             PS_SUB_FMT, PS_SUB_ARGS(st));
    PS_CHECK(ps_check_accounting(s, false) == 2, "accounting");
    shmbus_peer_counters pa = ps_pair(s, sh->ids[0]);
    PS_CHECK(pa.received == 1 && pa.invalid == 0 && pa.forged == MISPLACED, PS_PAIR_FMT,
             PS_PAIR_ARGS(pa));
    atomic_store(&sh->done, 1);
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    return 0;
}

static void test_forged_descriptors_are_counted_and_never_returned(void **state)
{
    run_forgery(state, FORGE);
}

static void test_forged_descriptor_with_a_real_publisher_id_does_not_hide_its_messages(
    void **state)
{
    run_forgery(state, POISON);
}

static void test_real_descriptors_with_another_publisher_topic_or_replayed_are_invalid(
    void **state)
{
    run_forgery(state, REPLAY);
}

PS_MAIN(
    PS_TEST(test_forged_descriptors_are_counted_and_never_returned),
    PS_TEST(test_forged_descriptor_with_a_real_publisher_id_does_not_hide_its_messages),
    PS_TEST(test_real_descriptors_with_another_publisher_topic_or_replayed_are_invalid))
