/* shmbus_last_error() describes the last call: every call that returns a status clears it,
 * a failure always leaves a detail of its own (never the text of an earlier failure), and a
 * success leaves "". One process, no children (iso_setup: own domain and runtime directory).
 */
#include <string.h>

#include "iso_common.h"

#define STALE "invalid topic name \"stale name\""

/* Make the detail hold an earlier failure's text. */
static void fail_first(shmbus_domain *d)
{
    shmbus_pub *p = NULL;
    assert_int_equal(shmbus_pub_open(d, "stale name", &p), SHMBUS_EINVAL);
    assert_non_null(strstr(shmbus_last_error(), STALE));
}

/* After a failed call: rc as expected, a detail that is its own. */
static void expect_own_detail(int rc, int want, const char *call, const char *needle,
                              char *problems, size_t len)
{
    const char *err = shmbus_last_error();
    if (rc != want)
        note(problems, len, "%s returned %s, expected %s", call, shmbus_errname(rc),
             shmbus_errname(want));
    else if (!err[0])
        note(problems, len, "%s failed with no detail", call);
    else if (strstr(err, STALE))
        note(problems, len, "%s: the detail is still the earlier failure's: \"%s\"", call, err);
    else if (needle && !strstr(err, needle))
        note(problems, len, "%s: the detail \"%s\" lacks \"%s\"", call, err, needle);
    else
        print_message("    %s: %s \"%s\"\n", call, shmbus_errname(rc), err);
}

static void test_failed_call_detail_describes_that_call_not_an_earlier_one(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    char problems[4096] = "";
    shmbus_pool *pool = NULL;
    ps_assert_ok(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    ps_assert_ok(shmbus_sub_open(d, "t", NULL, &s));
    ps_assert_ok(shmbus_pub_open(d, "t", &p));
    shmbus_msg *m = NULL;

    fail_first(d);
    expect_own_detail(shmbus_pool_loan(pool, 1ull << 40, 0, &m), SHMBUS_ETOOBIG,
                      "shmbus_pool_loan", "shmbus_pool_loan", problems, sizeof problems);
    fail_first(d);
    expect_own_detail(shmbus_pub_loan(p, 1ull << 40, &m), SHMBUS_ETOOBIG, "shmbus_pub_loan",
                      NULL, problems, sizeof problems);
    fail_first(d);
    expect_own_detail(shmbus_sub_recv(s, 0, &m), SHMBUS_EAGAIN, "shmbus_sub_recv",
                      "shmbus_sub_recv", problems, sizeof problems);
    fail_first(d);
    expect_own_detail(shmbus_msg_release(NULL), SHMBUS_EINVAL, "shmbus_msg_release",
                      "shmbus_msg_release", problems, sizeof problems);
    fail_first(d);
    expect_own_detail(shmbus_sub_stats(NULL, NULL), SHMBUS_EINVAL, "shmbus_sub_stats",
                      "shmbus_sub_stats", problems, sizeof problems);
    fail_first(d);
    shmbus_desc zero = {{0}};
    expect_own_detail(shmbus_domain_acquire(d, &zero, &m), SHMBUS_EBADDESC,
                      "shmbus_domain_acquire", "shmbus_domain_acquire", problems,
                      sizeof problems);
    fail_first(d);
    expect_own_detail(shmbus_config_load("/nonexistent/cfg.json", &(shmbus_config_summary){0}),
                      SHMBUS_ENOENT, "shmbus_config_load", "/nonexistent/cfg.json", problems,
                      sizeof problems);
    fail_first(d);
    expect_own_detail(shmbus_pool_open(d, "nosuchpool", NULL, 0, &pool), SHMBUS_ENOENT,
                      "shmbus_pool_open", "pool \"nosuchpool\" does not exist", problems,
                      sizeof problems);
    fail_first(d);
    shmbus_pool_class other = {.block_size = 8192, .count = 2}; /* frames: 4 KiB x 32 */
    expect_own_detail(shmbus_pool_open(d, "frames", &other, 1, &pool), SHMBUS_EINCOMPAT,
                      "shmbus_pool_open",
                      "as (8 KiB x 2), but the running domain has it as (4 KiB x 32)", problems,
                      sizeof problems);

    /* a success leaves no detail */
    fail_first(d);
    ps_assert_ok(ps_publish(p, 64, 1, 1, 0));
    if (shmbus_last_error()[0])
        note(problems, sizeof problems, "after a successful publish the detail is \"%s\"",
             shmbus_last_error());
    ps_assert_ok(shmbus_pub_close(p));
    ps_assert_ok(shmbus_sub_close(s));
    ps_close_domain(e, d);
    if (problems[0])
        fail_msg("%s", problems);
}

PS_MAIN(ISO_TEST(test_failed_call_detail_describes_that_call_not_an_earlier_one))
