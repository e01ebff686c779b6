/* A received payload is read-only in every process, including one that publishes to (and so
 * loans from) the same pool: such a process that writes into a message it received dies
 * with SIGSEGV, and another subscriber holding the same frame finds it intact.
 * Public API only; the processes are real, and so are their mappings. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub_common.h"

#define TOPIC "ro"

struct shared {
    _Atomic uint64_t held_seq; /* the frame the other subscriber holds (0: none yet) */
};

static void write_config(ps_env *e)
{
    snprintf(e->config, sizeof e->config, "%s/readonly.json", e->tmpdir);
    FILE *f = fopen(e->config, "w");
    assert_non_null(f);
    fprintf(f, "{\"pools\": [{\"name\": \"frames\", \"block_size\": \"4KiB\", \"count\": 32}],\n"
               " \"topics\": [{\"name\": \"%s\", \"pool\": \"frames\", \"history\": 4, "
               "\"max_held\": 8, \"on_full\": \"fail\", \"queue_depth\": 64}]}\n",
            TOPIC);
    assert_int_equal(fclose(f), 0);
}

/* Publishes and subscribes: once it holds, as a received message, the frame the other
 * subscriber holds, it reports 'w' and, told 'x', writes into it. */
static void scribbler(const ps_env *e, ps_chan *ch, struct shared *sh)
{
    shmbus_domain *d = ps_child_start(e, ch);
    shmbus_pub *p;
    shmbus_sub *s;
    PS_OK(shmbus_pub_open(d, TOPIC, &p));
    PS_OK(shmbus_sub_open(d, TOPIC, NULL, &s));
    PS_CHECK(ps_tell(ch->up[1], 'r') == 0, "cannot report ready");
    enum { KEEP = 6 };
    shmbus_msg *kept[KEEP] = {0};
    shmbus_msg *target = NULL;
    uint64_t deadline = ps_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    for (uint64_t seq = 1; !target; seq++) {
        PS_CHECK(ps_now_ns() < deadline, "never received the frame the other one holds");
        int rc = ps_publish(p, 1000, seq, 1, 0);
        PS_CHECK(rc == 0 || rc == SHMBUS_EFULL, "publish: %s", shmbus_errname(rc));
        shmbus_msg *m;
        while (shmbus_sub_recv(s, 20, &m) == 0) {
            unsigned slot = (unsigned)(shmbus_msg_seq(m) % KEEP);
            if (kept[slot])
                shmbus_msg_release(kept[slot]);
            kept[slot] = m;
        }
        uint64_t want = atomic_load(&sh->held_seq);
        for (unsigned i = 0; i < KEEP && want && !target; i++)
            if (kept[i] && shmbus_msg_seq(kept[i]) == want)
                target = kept[i];
    }
    PS_CHECK(ps_tell(ch->up[1], 'w') == 0, "cannot report the target");
    PS_CHECK(ps_hear(ch->down[0], 'x', PS_SAFETY_MS) == 0, "no go to write");
    ((volatile uint8_t *)shmbus_msg_data(target))[100] ^= 0xff; /* must fault */
    _exit(3);
}

/* Holds the first frame it receives until told to check it. */
static void holder(const ps_env *e, ps_chan *ch, struct shared *sh)
{
    shmbus_domain *d = ps_child_start(e, ch);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, TOPIC, NULL, &s));
    PS_CHECK(ps_tell(ch->up[1], 'r') == 0, "cannot report ready");
    shmbus_msg *m = ps_recv_one(s, "a frame to hold");
    atomic_store(&sh->held_seq, shmbus_msg_seq(m));
    PS_CHECK(ps_hear(ch->down[0], 'v', PS_SAFETY_MS) == 0, "no go to verify");
    ps_hdr h;
    PS_CHECK(ps_check_msg(m, &h) == 0, "the held frame was changed");
    PS_OK(shmbus_msg_release(m));
    shmbus_msg *rest;
    while (shmbus_sub_recv(s, 0, &rest) == 0)
        shmbus_msg_release(rest);
    PS_OK(shmbus_sub_close(s));
    PS_OK(shmbus_domain_close(d));
    _exit(0);
}

static void test_publisher_writing_into_a_message_it_received_faults_and_harms_no_one(
    void **state)
{
    ps_env *e = PS_ENV(state);
    write_config(e);
    struct shared *sh = ps_shared(e, sizeof *sh);
    ps_chan cw, ch;
    ps_chan_make(&cw);
    pid_t pw = ps_fork();
    if (pw == 0)
        scribbler(e, &cw, sh);
    ps_chan_parent(&cw);
    ps_chan_make(&ch);
    pid_t ph = ps_fork();
    if (ph == 0)
        holder(e, &ch, sh);
    ps_chan_parent(&ch);
    ps_tell_child(&cw, 'g');
    ps_tell_child(&ch, 'g');
    ps_hear_child(&cw, 'r', PS_CHILD_MS, "scribbler ready");
    ps_hear_child(&ch, 'r', PS_CHILD_MS, "holder ready");
    ps_hear_child(&cw, 'w', PS_CHILD_MS, "scribbler holds the held frame");
    ps_tell_child(&cw, 'x');
    int rc = ps_wait(pw, PS_CHILD_MS);
    ps_forget(pw);
    if (rc != 128 + SIGSEGV)
        fail_msg("the publisher that wrote into a received message ended with %d, expected "
                 "SIGSEGV (%d)",
                 rc, 128 + SIGSEGV);
    print_message("    frame seq %llu: the writer died of SIGSEGV\n",
                  (unsigned long long)atomic_load(&sh->held_seq));
    ps_tell_child(&ch, 'v');
    ps_expect_ok(ph, PS_CHILD_MS, "holder finds its frame intact");
    ps_chan_close(&cw);
    ps_chan_close(&ch);
}

PS_MAIN(PS_TEST(test_publisher_writing_into_a_message_it_received_faults_and_harms_no_one))
