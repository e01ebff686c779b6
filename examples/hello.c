/* hello: the smallest shmbus program. Run `hello sub` in one terminal and `hello pub` in
 * another (or `hello` alone: both in one process). Domain "default", embedded configuration,
 * topic "hello". Uses only api/shmbus.h. */
#include <stdio.h>
#include <string.h>

#include "shmbus.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "hello: %s: %s (%s)\n", what, shmbus_strerror(rc), shmbus_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *role = argc > 1 ? argv[1] : "both";
    bool pub_role = strcmp(role, "sub") != 0, sub_role = strcmp(role, "pub") != 0;
    shmbus_domain *d;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    int rc = shmbus_domain_open(NULL, NULL, &d);
    if (rc)
        return fail("open domain", rc);
    if (sub_role && (rc = shmbus_sub_open(d, "hello", NULL, &sub)))
        return fail("subscribe", rc);
    if (pub_role && (rc = shmbus_pub_open(d, "hello", &pub)))
        return fail("publish", rc);
    if (pub && (rc = shmbus_pub_wait_subscribers(pub, 1, 10000)))
        return fail("waiting for a subscriber", rc);
    for (int i = 0; i < 5; i++) {
        if (pub) {
            shmbus_msg *m;
            if ((rc = shmbus_pub_loan(pub, 64, &m)))
                return fail("loan", rc);
            int n = snprintf(shmbus_msg_data(m), 64, "hello #%d from shared memory", i);
            if ((rc = shmbus_pub_publish(pub, m, (uint64_t)n + 1)))
                return fail("publish", rc);
        }
        if (sub) {
            shmbus_msg *m;
            if ((rc = shmbus_sub_recv(sub, 5000, &m)))
                return fail("receive", rc);
            printf("got seq %llu: %s\n", (unsigned long long)shmbus_msg_seq(m),
                   (const char *)shmbus_msg_data(m));
            shmbus_msg_release(m);
        }
    }
    if (pub)
        shmbus_pub_close(pub);
    if (sub)
        shmbus_sub_close(sub);
    return shmbus_domain_close(d) ? 1 : 0;
}
