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
    _Atomic uint64_t held_seq; /* the frame the other subscriber holds now (0: none yet) */
    _Atomic uint64_t target;   /* the frame the scribbler writes into */
    _Atomic int verify;        /* the scribbler is dead: check the held frame */
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

/* Publishes and subscribes, one frame at a time: once it holds, as a received message, the
 * frame the other subscriber holds too, it reports 'w' and, told 'x', writes into it. */
static void scribbler(const ps_env *e, ps_chan *ch, struct shared *sh)
{
    shmbus_domain *d = ps_child_start(e, ch);
    shmbus_pub *p;
    shmbus_sub *s;
    PS_OK(shmbus_pub_open(d, TOPIC, &p));
    PS_OK(shmbus_sub_open(d, TOPIC, NULL, &s));
    PS_CHECK(proc_tell(ch->up[1], 'r') == 0, "cannot report ready");
    shmbus_msg *target = NULL;
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    for (uint64_t seq = 1; !target; seq++) {
        PS_CHECK(proc_now_ns() < deadline, "never held a frame the other one holds");
        PS_OK(ps_publish(p, 1000, seq, 1, 0));
        /* Wait a little for both copies of this frame: ours and the holder's. */
        shmbus_msg *mine = NULL, *m;
        uint64_t until = proc_now_ns() + 200000000u;
        while (proc_now_ns() < until && !(mine && atomic_load(&sh->held_seq) == seq)) {
            if (shmbus_sub_recv(s, 10, &m) != 0)
                continue;
            if (shmbus_msg_seq(m) == seq && !mine)
                mine = m;
            else
                shmbus_msg_release(m);
        }
        if (mine && atomic_load(&sh->held_seq) == seq)
            target = mine;
        else if (mine)
            shmbus_msg_release(mine);
    }
    atomic_store(&sh->target, shmbus_msg_seq(target));
    PS_CHECK(proc_tell(ch->up[1], 'w') == 0, "cannot report the target");
    PS_CHECK(proc_hear(ch->down[0], 'x', PS_SAFETY_MS) == 0, "no go to write");
    ((volatile uint8_t *)shmbus_msg_data(target))[100] ^= 0xff; /* must fault */
    _exit(3);
}

/* Holds the latest frame it received; once the scribbler is dead, checks it. */
static void holder(const ps_env *e, ps_chan *ch, struct shared *sh)
{
    shmbus_domain *d = ps_child_start(e, ch);
    shmbus_sub *s;
    PS_OK(shmbus_sub_open(d, TOPIC, NULL, &s));
    PS_CHECK(proc_tell(ch->up[1], 'r') == 0, "cannot report ready");
    shmbus_msg *held = NULL, *m;
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    while (!atomic_load(&sh->verify)) {
        PS_CHECK(proc_now_ns() < deadline, "never told to verify");
        if (shmbus_sub_recv(s, 10, &m) != 0)
            continue;
        if (held)
            PS_OK(shmbus_msg_release(held));
        held = m;
        atomic_store(&sh->held_seq, shmbus_msg_seq(m));
    }
    PS_CHECK(held && shmbus_msg_seq(held) == atomic_load(&sh->target),
             "holds seq %llu, the scribbler wrote into %llu",
             held ? (unsigned long long)shmbus_msg_seq(held) : 0ull,
             (unsigned long long)atomic_load(&sh->target));
    ps_hdr h;
    PS_CHECK(ps_check_msg(held, &h) == 0, "the held frame was changed");
    PS_OK(shmbus_msg_release(held));
    while (shmbus_sub_recv(s, 0, &m) == 0)
        shmbus_msg_release(m);
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
    pid_t pw = proc_fork();
    if (pw == 0)
        scribbler(e, &cw, sh);
    ps_chan_parent(&cw);
    ps_chan_make(&ch);
    pid_t ph = proc_fork();
    if (ph == 0)
        holder(e, &ch, sh);
    ps_chan_parent(&ch);
    ps_tell_child(&cw, 'g');
    ps_tell_child(&ch, 'g');
    ps_hear_child(&cw, 'r', PS_CHILD_MS, "scribbler ready");
    ps_hear_child(&ch, 'r', PS_CHILD_MS, "holder ready");
    ps_hear_child(&cw, 'w', PS_CHILD_MS, "scribbler holds the held frame");
    ps_tell_child(&cw, 'x');
    int rc = proc_wait(pw, PS_CHILD_MS);
    proc_forget(pw);
    if (rc != 128 + SIGSEGV)
        fail_msg("the publisher that wrote into a received message ended with %d, expected "
                 "SIGSEGV (%d)",
                 rc, 128 + SIGSEGV);
    print_message("    frame seq %llu: the writer died of SIGSEGV\n",
                  (unsigned long long)atomic_load(&sh->target));
    atomic_store(&sh->verify, 1);
    proc_expect_ok(ph, PS_CHILD_MS, "holder finds its frame intact");
    ps_chan_close(&cw);
    ps_chan_close(&ch);
}

PS_MAIN(PS_TEST(test_publisher_writing_into_a_message_it_received_faults_and_harms_no_one))
