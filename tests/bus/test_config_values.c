/* Configuration values: every file under configs/valid/ and every example under
 * examples/config/ is parsed and its values checked; the embedded default, lookups by name
 * and the memory total.
 *
 * Usage: test_config_values [CONFIGS_DIR [EXAMPLES_DIR]] (defaults are compiled in).
 */
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_testutil.h"
#include "shmpool.h"

/* ---- valid files --------------------------------------------------------------------------- */

static void test_empty_object_gives_default_pool_and_template(void **state)
{
    (void)state;
    bus_config cfg, def;
    load_ok(g_configs, "valid", "empty_object.json", &cfg);
    bus_config_default(&def);
    assert_memory_equal(&cfg, &def, sizeof cfg);
}

/* The default as docs/config.md writes it out is the default. */
static void test_default_written_out_is_the_default(void **state)
{
    (void)state;
    bus_config cfg, def;
    load_ok(g_configs, "valid", "default_written_out.json", &cfg);
    bus_config_default(&def);
    assert_memory_equal(&cfg, &def, sizeof cfg);
}

static void test_full_config_sets_every_field(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "full.json", &cfg);
    assert_string_equal(cfg.domain, "lab-2_cams");
    assert_int_equal(cfg.mode, 0640);
    assert_int_equal(cfg.gid, 4242);
    assert_string_equal(cfg.group, "4242");
    assert_string_equal(cfg.runtime_dir, "/run/shmbus/lab");

    assert_int_equal(cfg.npools, 2);
    assert_string_equal(cfg.pools[0].name, "frames");
    assert_int_equal(cfg.pools[0].nclasses, 1);
    assert_class(&cfg.pools[0], 0, 8 * MiB, 8);
    const bus_pool_cfg *mixed = pool(&cfg, "mixed");
    assert_int_equal(mixed->nclasses, 3); /* sorted by block size */
    assert_class(mixed, 0, 256, 1048576);
    assert_class(mixed, 1, 4 * KiB, 64);
    assert_class(mixed, 2, 1 * MiB, 65);

    assert_int_equal(cfg.ntopics, 4);
    assert_string_equal(cfg.topics[0].name, "camera/front"); /* file order */
    assert_topic(topic(&cfg, "camera/front"), "frames", 4, 6 * MiB, 4, 50, 16);
    assert_topic(topic(&cfg, "camera/rear"), "frames", 4, 8 * MiB, 8, 100, 16);
    assert_topic(topic(&cfg, "lidar/points"), "mixed", 64, 1 * MiB, 1024, 0, 1024);
    assert_topic(topic(&cfg, "status.v1_a-b"), "mixed", 4, 1500, 8, 60000, 16);

    assert_true(cfg.has_default_topic);
    assert_string_equal(cfg.default_topic.name, "");
    assert_topic(&cfg.default_topic, "mixed", 2, 64 * KiB, 3, 100, 32);
}

static void test_topics_without_pools_use_default_pool_and_no_template(void **state)
{
    (void)state;
    bus_config cfg, def;
    load_ok(g_configs, "valid", "topics_only.json", &cfg);
    bus_config_default(&def);
    assert_int_equal(cfg.npools, 1);
    assert_memory_equal(&cfg.pools[0], &def.pools[0], sizeof def.pools[0]);
    assert_int_equal(cfg.ntopics, 1);
    assert_topic(topic(&cfg, "imu"), "default", 4, 4 * KiB, 8, 100, 16);
    assert_false(cfg.has_default_topic); /* topics are listed: no template unless given */
}

static void test_pools_without_topics_get_template_on_first_pool(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "pools_only.json", &cfg);
    assert_int_equal(cfg.npools, 2);
    assert_class(pool(&cfg, "small"), 0, 2 * KiB, 32);
    assert_class(pool(&cfg, "small"), 1, 64 * KiB, 4);
    assert_class(pool(&cfg, "big"), 0, 16 * MiB, 2);
    assert_int_equal(cfg.ntopics, 0);
    assert_true(cfg.has_default_topic);
    /* history 4 would hold all 4 blocks of the 64 KiB class: the template keeps one free */
    assert_topic(&cfg.default_topic, "small", 3, 64 * KiB, 8, 100, 16);
}

static void test_sizes_are_accepted_in_every_form(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "sizes.json", &cfg);
    const bus_pool_cfg *p = pool(&cfg, "sizes.v2");
    assert_int_equal(p->nclasses, 8);
    static const uint64_t want[] = {1, 100, 1536, 2000, 512 * KiB, 1250000, 3 * MiB, 1000000000};
    for (unsigned i = 0; i < 8; i++)
        assert_class(p, i, want[i], i == 7 ? 2 : 1);
    assert_int_equal(cfg.default_topic.max_message_size, 1000000000);
}

static void test_on_full_fail_means_no_wait(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "on_full_fail.json", &cfg);
    assert_int_equal(topic(&cfg, "drop-when-full")->full_wait_ms, 0);
    assert_int_equal(topic(&cfg, "wait-default")->full_wait_ms, 100);
    assert_true(cfg.has_default_topic);
    assert_topic(&cfg.default_topic, "default", 4, 1 * MiB, 8, 0, 16);
}

static void test_delivery_is_nng_unless_a_topic_says_shm(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "delivery.json", &cfg);
    assert_int_equal(topic(&cfg, "ring")->delivery, BUS_DELIVERY_SHM);
    assert_int_equal(topic(&cfg, "ring")->queue_depth, 1024);
    assert_int_equal(topic(&cfg, "sockets")->delivery, BUS_DELIVERY_NNG);
    assert_int_equal(topic(&cfg, "unsaid")->delivery, BUS_DELIVERY_NNG);
    assert_int_equal(cfg.default_topic.delivery, BUS_DELIVERY_SHM);
    bus_config def;
    bus_config_default(&def);
    assert_int_equal(def.default_topic.delivery, BUS_DELIVERY_NNG);
}

static void test_group_by_name_and_by_number(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "group_by_name.json", &cfg);
    assert_int_equal(cfg.mode, 0600); /* 384 decimal */
    assert_int_equal(cfg.gid, 0);
    assert_string_equal(cfg.group, "root");
    load_ok(g_configs, "valid", "group_numeric_string.json", &cfg);
    assert_int_equal(cfg.mode, 0777);
    assert_int_equal(cfg.gid, 54321);
    assert_string_equal(cfg.group, "54321");
}

static void test_byte_order_mark_and_crlf_are_accepted(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "bom_crlf.json", &cfg);
    assert_string_equal(cfg.domain, "crlf");
    assert_int_equal(cfg.ntopics, 0); /* "topics": [] lists none: the template applies */
    assert_true(cfg.has_default_topic);
}

static void test_camera_example(void **state)
{
    (void)state;
    bus_config cfg;
    char path[512], err[BUS_ERR_MAX];
    int rc = bus_config_load(path_in(path, sizeof path, g_examples, "", "camera.json"), &cfg,
                             err, sizeof err);
    struct group *gr = getgrnam("video");
    if (!gr) { /* a host without the group: the example cannot apply here, and says so */
        assert_int_equal(rc, SHMBUS_ECONFIG);
        assert_non_null(strstr(err, "$.permissions.group: unknown group \"video\""));
        skip();
    }
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg.domain, "camera");
    assert_int_equal(cfg.mode, 0660);
    assert_int_equal(cfg.gid, (long)gr->gr_gid);
    assert_string_equal(cfg.group, "video");
    assert_string_equal(cfg.runtime_dir, "");
    assert_int_equal(cfg.npools, 2);
    assert_class(pool(&cfg, "frames"), 0, 8 * MiB, 12);
    assert_class(pool(&cfg, "small"), 0, 4 * KiB, 256);
    assert_class(pool(&cfg, "small"), 1, 64 * KiB, 64);
    assert_int_equal(cfg.ntopics, 4);
    assert_topic(topic(&cfg, "camera/front/image"), "frames", 2, 6 * MiB, 4, 50, 8);
    assert_topic(topic(&cfg, "camera/rear/image"), "frames", 2, 6 * MiB, 4, 0, 16);
    assert_topic(topic(&cfg, "camera/front/info"), "small", 4, 4 * KiB, 8, 100, 16);
    assert_topic(topic(&cfg, "imu"), "small", 16, 256, 8, 100, 256);
    assert_true(cfg.has_default_topic);
    assert_topic(&cfg.default_topic, "small", 4, 64 * KiB, 8, 100, 16);
}

static void test_minimal_example(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_examples, "", "minimal.json", &cfg);
    assert_string_equal(cfg.domain, "demo");
    assert_int_equal(cfg.mode, 0600);
    assert_int_equal(cfg.gid, -1);
    assert_string_equal(cfg.group, "");
    assert_int_equal(cfg.npools, 1);
    assert_class(pool(&cfg, "msgs"), 0, 64 * KiB, 32);
    assert_int_equal(cfg.ntopics, 0);
    assert_true(cfg.has_default_topic);
    assert_topic(&cfg.default_topic, "msgs", 4, 64 * KiB, 8, 100, 16);
}

/* ---- the default, lookups, memory -------------------------------------------------------- */

static void test_default_config(void **state)
{
    (void)state;
    bus_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    bus_config_default(&cfg);
    assert_string_equal(cfg.domain, "default");
    assert_int_equal(cfg.mode, 0600);
    assert_int_equal(cfg.gid, -1);
    assert_string_equal(cfg.group, "");
    assert_string_equal(cfg.runtime_dir, "");
    assert_int_equal(cfg.npools, 1);
    const bus_pool_cfg *p = pool(&cfg, "default");
    assert_int_equal(p->nclasses, 5);
    assert_class(p, 0, 4 * KiB, 256);
    assert_class(p, 1, 64 * KiB, 64);
    assert_class(p, 2, 1 * MiB, 16);
    assert_class(p, 3, 8 * MiB, 8);
    assert_class(p, 4, 24 * MiB, 6);
    assert_int_equal(cfg.ntopics, 0);
    assert_true(cfg.has_default_topic);
    assert_string_equal(cfg.default_topic.name, "");
    assert_topic(&cfg.default_topic, "default", 2, 24 * MiB, 4, 100, 16);
}

static void test_lookup_by_name(void **state)
{
    (void)state;
    bus_config cfg;
    load_ok(g_configs, "valid", "full.json", &cfg);
    assert_ptr_equal(bus_config_topic(&cfg, "camera/rear"), &cfg.topics[1]);
    assert_ptr_equal(bus_config_pool(&cfg, "mixed"), &cfg.pools[1]);
    assert_null(bus_config_topic(&cfg, "camera"));
    assert_null(bus_config_topic(&cfg, ""));
    assert_null(bus_config_pool(&cfg, "frame"));
    assert_null(bus_config_pool(NULL, "mixed"));
    assert_null(bus_config_topic(&cfg, NULL));
}

static uint64_t sum_pool_sizes(const bus_config *cfg)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < cfg->npools; i++) {
        uint64_t sz = 0;
        assert_int_equal(shmpool_pool_size(cfg->pools[i].classes, cfg->pools[i].nclasses, &sz),
                         0);
        assert_true(sz > 0);
        total += sz;
    }
    return total;
}

static void test_config_memory_is_the_sum_of_pool_sizes(void **state)
{
    (void)state;
    bus_config cfg;
    bus_config_default(&cfg);
    uint64_t payload = 256 * 4 * KiB + 64 * 64 * KiB + 16 * MiB + 8 * 8 * MiB + 6 * 24 * MiB;
    assert_int_equal(bus_config_memory(&cfg), sum_pool_sizes(&cfg));
    assert_true(bus_config_memory(&cfg) > payload);
    load_ok(g_configs, "valid", "full.json", &cfg);
    assert_int_equal(bus_config_memory(&cfg), sum_pool_sizes(&cfg));
    load_ok(g_examples, "", "minimal.json", &cfg);
    assert_int_equal(bus_config_memory(&cfg), sum_pool_sizes(&cfg));
    cfg.npools = 0;
    assert_int_equal(bus_config_memory(&cfg), 0);
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    config_test_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_object_gives_default_pool_and_template),
        cmocka_unit_test(test_default_written_out_is_the_default),
        cmocka_unit_test(test_full_config_sets_every_field),
        cmocka_unit_test(test_topics_without_pools_use_default_pool_and_no_template),
        cmocka_unit_test(test_pools_without_topics_get_template_on_first_pool),
        cmocka_unit_test(test_sizes_are_accepted_in_every_form),
        cmocka_unit_test(test_on_full_fail_means_no_wait),
        cmocka_unit_test(test_delivery_is_nng_unless_a_topic_says_shm),
        cmocka_unit_test(test_group_by_name_and_by_number),
        cmocka_unit_test(test_byte_order_mark_and_crlf_are_accepted),
        cmocka_unit_test(test_camera_example),
        cmocka_unit_test(test_minimal_example),
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_lookup_by_name),
        cmocka_unit_test(test_config_memory_is_the_sum_of_pool_sizes),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL) ? 1 : 0;
}
