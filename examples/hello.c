/* hello: the smallest shmbus program. Run `hello sub` in one terminal and `hello pub` in
 * another (either first), or `hello` alone: both in one process. Domain "default", embedded
 * configuration, topic "hello", five messages. Uses only api/shmbus.h.
 *
 * Every exit path closes what it opened, so the last process out removes the domain and
 * nothing stays in /dev/shm: errors go to one cleanup, and SIGINT/SIGTERM only set a flag
 * that the waits look at (every wait is in steps of at most 200 ms). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shmbus.h"

#define TOPIC "hello"
#define COUNT 5
#define STEP_MS 200 /* longest wait between two looks at the stop flag */

static const char usage[] =
    "usage: hello [pub | sub | both | --help]\n"
    "\n"
    "Publish and receive five messages on topic \"" TOPIC "\" of domain \"default\".\n"
    "  pub    publish them (waits for a subscriber, then for it to take all five)\n"
    "  sub    receive them (waits for a publisher)\n"
    "  both   both in this process (the default)\n"
    "\n"
    "Exit codes: 0 ok, 1 error, 2 usage error. Ctrl-C stops it cleanly.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "hello: %s: %s (%s)\n", what, shmbus_strerror(rc), shmbus_last_error());
    return 1;
}

/* Publish message i: its text written in place in shared memory. */
static int publish(shmbus_pub *pub, int i)
{
    shmbus_msg *m;
    int rc = shmbus_pub_loan(pub, 64, &m);
    if (rc)
        return fail("loan", rc);
    int n = snprintf(shmbus_msg_data(m), 64, "hello #%d from shared memory", i);
    if ((rc = shmbus_pub_publish(pub, m, (uint64_t)n + 1)) != 0) {
        if (rc != SHMBUS_ETRANSPORT) /* publish consumed it otherwise */
            shmbus_msg_release(m);
        return fail("publish", rc);
    }
    return 0;
}

/* Receive and print one message, waiting as long as it takes (or until a signal). */
static int receive(shmbus_sub *sub)
{
    for (;;) {
        shmbus_msg *m;
        int rc = shmbus_sub_recv(sub, STEP_MS, &m);
        if (rc == 0) {
            printf("got seq %llu: %s\n", (unsigned long long)shmbus_msg_seq(m),
                   (const char *)shmbus_msg_data(m));
            fflush(stdout);
            rc = shmbus_msg_release(m);
            return rc ? fail("release", rc) : 0;
        }
        if (rc != SHMBUS_ETIMEDOUT && rc != SHMBUS_EINTR)
            return fail("receive", rc);
        if (stop)
            return 0;
    }
}

/* Wait until the publisher has at least (more) or at most (!more) n subscribers; give up after
 * limit_ms (< 0: never) or a signal. */
static void wait_subscribers(shmbus_pub *pub, int n, bool more, int limit_ms)
{
    for (int waited = 0; !stop && (limit_ms < 0 || waited < limit_ms); waited += 10) {
        int have = shmbus_pub_subscribers(pub);
        if (more ? have >= n : have <= n)
            return;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *role = argc > 1 ? argv[1] : "both";
    if (strcmp(role, "-h") == 0 || strcmp(role, "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc > 2 || (strcmp(role, "pub") && strcmp(role, "sub") && strcmp(role, "both"))) {
        fprintf(stderr, "hello: unexpected argument \"%s\"\n%s", argc > 2 ? argv[2] : role,
                usage);
        return 2;
    }
    bool pub_role = strcmp(role, "sub") != 0, sub_role = strcmp(role, "pub") != 0;

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    shmbus_domain *d;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    int rc = shmbus_domain_open(NULL, NULL, &d), status = 0;
    if (rc)
        return fail("open domain", rc);
    if (sub_role && (rc = shmbus_sub_open(d, TOPIC, NULL, &sub))) {
        status = fail("subscribe", rc);
        goto out;
    }
    if (pub_role && (rc = shmbus_pub_open(d, TOPIC, &pub))) {
        status = fail("publish", rc);
        goto out;
    }
    if (pub && !sub) {
        printf("waiting for a subscriber on \"%s\" in domain \"%s\" (run: hello sub)\n", TOPIC,
               shmbus_domain_name(d));
        fflush(stdout);
        wait_subscribers(pub, 1, true, -1);
    } else if (sub && !pub) {
        printf("waiting for a publisher on \"%s\" in domain \"%s\" (run: hello pub)\n", TOPIC,
               shmbus_domain_name(d));
        fflush(stdout);
    } else {
        wait_subscribers(pub, 1, true, -1); /* our own subscriber's connection */
    }
    for (int i = 0; i < COUNT && !stop && status == 0; i++) {
        if (pub && (status = publish(pub, i)) != 0)
            break;
        if (sub)
            status = receive(sub);
        else if (i + 1 < COUNT) { /* a message every 100 ms: watch them arrive */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (pub && !sub && status == 0 && !stop) {
        printf("published %d messages\n", COUNT);
        /* Closing the publisher releases the messages it holds: a subscriber that has not
         * taken the last ones yet would find them gone. It leaves after five; wait for it. */
        wait_subscribers(pub, 0, false, 5000);
    }
out:
    if (sub && (rc = shmbus_sub_close(sub)) != 0)
        status = fail("close subscriber", rc);
    if (pub && (rc = shmbus_pub_close(pub)) != 0)
        status = fail("close publisher", rc);
    if ((rc = shmbus_domain_close(d)) != 0)
        status = fail("close domain", rc);
    return status;
}
