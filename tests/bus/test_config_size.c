/* The size grammar of configuration files (bus_parse_size): units and fractions give exact
 * byte counts; anything else is refused with a reason. The public API exports the same
 * grammar (shmbus_parse_size, which the tools use), with the reason in shmbus_last_error(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config_testutil.h"
#include "shmbus.h"

/* ---- sizes ------------------------------------------------------------------------------- */

static void test_parse_size_accepts_units_and_fractions(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"4096", 4096},
        {"8MiB", 8 * MiB},
        {"8 MiB", 8 * MiB},
        {"1.5MiB", 3 * 512 * KiB},
        {"0.5KiB", 512},
        {"1.25 KiB", 1280},
        {"1.0B", 1},
        {"100B", 100},
        {"1kB", 1000},
        {"1.5kB", 1500},
        {"2MB", 2000000},
        {"3GB", 3000000000ull},
        {"1TB", 1000000000000ull},
        {"4KiB", 4096},
        {"2GiB", 2 * GiB},
        {"1TiB", TiB},
        {"0.0009765625MiB", 1024},
        {"16777215TiB", 16777215ull * TiB},
        {"18446744073709551615", UINT64_MAX},
        {"007KiB", 7 * KiB},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        char err[128] = "";
        int rc = bus_parse_size(good[i].s, &v, err, sizeof err);
        if (rc != 0 || v != good[i].v)
            fail_msg("\"%s\": rc %d value %llu (%s), expected %llu", good[i].s, rc,
                     (unsigned long long)v, err, (unsigned long long)good[i].v);
    }
}

static void test_parse_size_rejects_bad_text_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        const char *why;
    } bad[] = {
        {"", "empty size"},
        {"MiB", "expected a number"},
        {"-1", "cannot be negative"},
        {"-1MiB", "cannot be negative"},
        {"+1MiB", "expected a number"},
        {" 8MiB", "expected a number"},
        {".5MiB", "expected a number"},
        {"1.MiB", "expected a digit after '.'"},
        {"1.5", "not a whole number of bytes"},
        {"1.3KiB", "not a whole number of bytes"},
        {"0.1B", "not a whole number of bytes"},
        {"0.0000000000001TB", "not a whole number of bytes"},
        {"8mib", "unknown unit \"mib\""},
        {"8 KB", "unknown unit \"KB\""},
        {"8K", "unknown unit \"K\""},
        {"8MiB ", "unknown unit \"MiB \""},
        {"8 ", "expected a unit after the space"},
        {"8  MiB", "unknown unit \" MiB\""},
        {"8MiB/s", "unknown unit \"MiB/s\""},
        {"1e3", "unknown unit \"e3\""},
        {"0x10", "unknown unit \"x10\""},
        {"18446744073709551616", "too large"},
        {"16777216TiB", "too large"},
        {"99999999999999999999999", "too large"},
        {"1.00000000000000000001KiB", "too many decimal places"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        char err[160] = "";
        int rc = bus_parse_size(bad[i].s, &v, err, sizeof err);
        if (rc != SHMBUS_EINVAL || v != 777 || !strstr(err, bad[i].why))
            fail_msg("\"%s\": rc %d value %llu err \"%s\", expected \"%s\"", bad[i].s, rc,
                     (unsigned long long)v, err, bad[i].why);
    }
    uint64_t v;
    assert_int_equal(bus_parse_size(NULL, &v, NULL, 0), SHMBUS_EINVAL);
    assert_int_equal(bus_parse_size("8MiB", NULL, NULL, 0), SHMBUS_EINVAL);
}

/* ---- the public entry -------------------------------------------------------------------- */

static void test_public_parse_size_gives_the_config_grammar_and_its_reason(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "4096", "8MiB", "1.5 MiB", "1.5kB", "6MB", "0.5KiB", "18446744073709551615", "007KiB",
        "", "8KB", "8 KB", "8K", "12 parsecs", "1.3KiB", "-1", "1.", "18446744073709551616",
        "8 ", "\x01\xff",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        uint64_t want = 777, got = 777;
        char why[160] = "";
        int want_rc = bus_parse_size(texts[i], &want, why, sizeof why);
        int rc = shmbus_parse_size(texts[i], &got);
        if (rc != want_rc || got != want)
            fail_msg("\"%s\": rc %d value %llu, the config grammar gives rc %d value %llu",
                     texts[i], rc, (unsigned long long)got, want_rc, (unsigned long long)want);
        if (rc == 0 && shmbus_last_error()[0])
            fail_msg("\"%s\": detail after success: %s", texts[i], shmbus_last_error());
        if (rc != 0 && (!strstr(shmbus_last_error(), why) ||
                        strncmp(shmbus_last_error(), "bad size \"", 10) != 0))
            fail_msg("\"%s\": detail \"%s\" does not give the reason \"%s\"", texts[i],
                     shmbus_last_error(), why);
    }
    /* no text, nowhere to put the result: refused with a detail, not a crash */
    uint64_t v = 5;
    assert_int_equal(shmbus_parse_size(NULL, &v), SHMBUS_EINVAL);
    assert_int_equal(v, 5);
    assert_non_null(strstr(shmbus_last_error(), "shmbus_parse_size"));
    assert_int_equal(shmbus_parse_size("8MiB", NULL), SHMBUS_EINVAL);
    assert_true(shmbus_last_error()[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size_accepts_units_and_fractions),
        cmocka_unit_test(test_parse_size_rejects_bad_text_with_a_reason),
        cmocka_unit_test(test_public_parse_size_gives_the_config_grammar_and_its_reason),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL) ? 1 : 0;
}
