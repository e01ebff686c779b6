/* The tools' common helpers that shape what users read: a line cut to the terminal's width
 * ends with a visible mark at a word, never mid-number; a mistyped name finds its nearest
 * neighbour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "toolutil.h"

static const char *fit(const char *line, size_t width)
{
    static char buf[512];
    strcpy(buf, line);
    return tool_fit_line(buf, width);
}

static void test_a_line_that_fits_is_left_alone(void **state)
{
    (void)state;
    assert_string_equal(fit("held by cam[4120] 2 blk", 23), "held by cam[4120] 2 blk");
    assert_string_equal(fit("", 10), "");
}

static void test_a_cut_line_ends_with_a_mark_at_a_word_not_mid_number(void **state)
{
    (void)state;
    const char *line = "  held by cam[4120] 2 blk, oldest 33.4 ms; rec[4131] 4 blk";
    /* width 40 would cut inside "33.4": the cut goes back to the space before it */
    assert_string_equal(fit(line, 40), "  held by cam[4120] 2 blk, oldest ..>");
    for (size_t w = 4; w < strlen(line); w++) {
        const char *out = fit(line, w);
        size_t n = strlen(out);
        assert_true(n <= w);
        assert_string_equal(out + n - 3, "..>");
        assert_true(n == 3 || out[n - 4] == ' ' || line[n - 3] == ' ');
    }
}

static void test_columns_not_bytes_count_for_unicode_bars(void **state)
{
    (void)state;
    /* 12 block characters (3 bytes each) and " 50%": 16 columns */
    const char *bar = "\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"
                      "\xe2\x96\x91\xe2\x96\x91\xe2\x96\x91\xe2\x96\x91\xe2\x96\x91\xe2\x96\x91"
                      " 50%";
    assert_string_equal(fit(bar, 16), bar);
    const char *out = fit(bar, 8); /* no space to go back to: cut after 5 whole characters */
    assert_int_equal(strlen(out), 5 * 3 + 3);
    assert_string_equal(out + 15, "..>");
}

static void test_the_nearest_name_is_suggested_only_when_near(void **state)
{
    (void)state;
    static const char names[][64] = {"camera/front", "camera/rear", "imu"};
    assert_string_equal(tool_nearest("camera/fornt", names[0], sizeof names[0], 3),
                        "camera/front");
    assert_string_equal(tool_nearest("camera/reer", names[0], sizeof names[0], 3), "camera/rear");
    assert_null(tool_nearest("lidar", names[0], sizeof names[0], 3));
    assert_null(tool_nearest("imu", names[0], sizeof names[0], 3)); /* itself: no suggestion */
    assert_string_equal(tool_nearest("imv", names[0], sizeof names[0], 3), "imu");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_line_that_fits_is_left_alone),
        cmocka_unit_test(test_a_cut_line_ends_with_a_mark_at_a_word_not_mid_number),
        cmocka_unit_test(test_columns_not_bytes_count_for_unicode_bars),
        cmocka_unit_test(test_the_nearest_name_is_suggested_only_when_near),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
