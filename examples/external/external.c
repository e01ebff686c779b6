/* external: a program outside the shmbus tree, built against an installed shmbus with
 * find_package(shmbus) or pkg-config (CMakeLists.txt beside it). It sends or receives small
 * test-pattern camera frames with a checksum, so a run proves the installed headers, the
 * library and the frame format work together. CONFIG's topic "external/frames" should keep
 * a history of at least COUNT frames (tests/install/external.json), so a subscriber that
 * reads slowly still gets every one.
 *
 *   external sub DOMAIN CONFIG COUNT   receive COUNT frames, check each; prints "received N"
 *   external pub DOMAIN CONFIG COUNT   wait for a subscriber, then send COUNT frames
 *
 * Exit status: 0 done, 1 a shmbus call failed, 2 usage, 3 a frame was malformed or corrupt. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <shmbus.h>                /* <shmbus.h> and <shmbus/...> both work with one -I */
#include <shmbus/shmbus_frame.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "external/frames"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "external: %s: %s (%s)\n", what, shmbus_strerror(rc), shmbus_last_error());
    return 1;
}

static int publish(shmbus_domain *d, int count)
{
    shmbus_pub *pub;
    int rc = shmbus_pub_open(d, TOPIC, &pub);
    if (rc)
        return fail("publisher", rc);
    if ((rc = shmbus_pub_wait_subscribers(pub, 1, 20000)))
        return fail("waiting for a subscriber", rc);
    shmbus_frame_hdr g;
    if ((rc = shmbus_frame_init(&g, SHMBUS_PIXFMT_GRAY8, 64, 48)))
        return fail("frame geometry", rc);
    for (int i = 0; i < count; i++) {
        shmbus_msg *m;
        shmbus_frame_hdr *h;
        if ((rc = shmbus_frame_loan(pub, &g, &m, &h)))
            return fail("loan", rc);
        uint8_t *px = shmbus_frame_plane_mut(h, 0);
        for (uint64_t j = 0; j < h->plane_size[0]; j++)
            px[j] = (uint8_t)(i * 7 + j);
        h->frame_number = (uint64_t)i;
        if ((rc = shmbus_frame_publish(pub, m, true)))
            return fail("publish", rc);
    }
    /* The topic's history keeps the last frames held for a slow subscriber until this
     * publisher closes: stay until the subscriber has left (at most 20 s). */
    for (int i = 0; i < 1000 && shmbus_pub_subscribers(pub) > 0; i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return (rc = shmbus_pub_close(pub)) ? fail("close publisher", rc) : 0;
}

static int subscribe(shmbus_domain *d, int count)
{
    shmbus_sub *sub;
    int rc = shmbus_sub_open(d, TOPIC, NULL, &sub);
    if (rc)
        return fail("subscriber", rc);
    int got = 0, bad = 0;
    while (got < count) {
        shmbus_msg *m;
        if ((rc = shmbus_sub_recv(sub, 20000, &m)))
            return fail("receive", rc);
        const shmbus_frame_hdr *h;
        if (shmbus_frame_get(m, &h) != 0 || !shmbus_frame_has_checksum(h) ||
            !shmbus_frame_checksum_ok(h) || h->frame_number != (uint64_t)got)
            bad++;
        got++;
        shmbus_msg_release(m);
    }
    printf("received %d frames, %d bad (shmbus %d.%d.%d)\n", got, bad, SHMBUS_VERSION_MAJOR,
           SHMBUS_VERSION_MINOR, SHMBUS_VERSION_PATCH);
    fflush(stdout);
    if ((rc = shmbus_sub_close(sub)))
        return fail("close subscriber", rc);
    return bad ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "pub") && strcmp(argv[1], "sub"))) {
        fprintf(stderr, "usage: external pub|sub DOMAIN CONFIG COUNT\n");
        return 2;
    }
    int count = atoi(argv[4]);
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = argv[3];
    shmbus_domain *d;
    int rc = shmbus_domain_open(argv[2], &o, &d);
    if (rc)
        return fail("open domain", rc);
    int status = strcmp(argv[1], "pub") == 0 ? publish(d, count) : subscribe(d, count);
    if ((rc = shmbus_domain_close(d)))
        return fail("close domain", rc);
    return status;
}
