/* The bridge's configuration file: every mistake is one line naming the file, the JSON path
 * and the reason; defaults follow the ROS 2 QoS profiles; the samples in examples/config/
 * parse; shmbus-bridge --check reports a broken file and exits 2; shmbus doctor reports a
 * net.core.rmem_max too small for large frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge_config.h"

static void expect_error(const char *json, const char *want)
{
    bridge_config c;
    char err[1024] = "";
    if (bridge_config_parse(json, "t.json", &c, err, sizeof err) == 0)
        fail_msg("accepted: %s", json);
    if (!strstr(err, want)) fail_msg("for %s\n  got:  %s\n  want: %s", json, err, want);
}

static void test_every_mistake_names_file_json_path_and_reason(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"out\": [", "t.json:1:10: syntax error"},
        {"[]", "t.json: $: expected an object, got an array"},
        {"{}", "t.json: $: no routes"},
        {"{\"outs\": []}",
         "t.json: $.outs: unknown key (expected one of: shmbus, dds, stats, out, in)"},
        {"{\"out\": {}}", "t.json: $.out: expected an array, got an object"},
        {"{\"out\": [{}]}", "t.json: $.out[0].topic: required key missing"},
        {"{\"out\": [{\"topic\": \"/abs\"}]}",
         "t.json: $.out[0].topic: \"/abs\" is not a shmbus topic name"},
        {"{\"out\": [{\"topic\": \"a\", \"type\": \"video\"}]}",
         "t.json: $.out[0].type: \"video\" is neither"},
        {"{\"in\": [{\"topic\": \"a\"}, {\"topic\": \"b\", \"frame_id\": \"x\"}]}",
         "t.json: $.in[1].frame_id: unknown key"},
        {"{\"out\": [{\"topic\": \"a\", \"frame_id\": \"x\"}]}",
         "t.json: $.out[0].frame_id: only for \"type\": \"image\""},
        {"{\"out\": [{\"topic\": \"a\", \"qos\": {\"reliability\": \"sometimes\"}}]}",
         "t.json: $.out[0].qos.reliability: \"sometimes\" is neither \"best_effort\" nor "
         "\"reliable\""},
        {"{\"out\": [{\"topic\": \"a\", \"qos\": {\"depth\": 0}}]}",
         "t.json: $.out[0].qos.depth: 0 is out of range 1..1000"},
        {"{\"out\": [{\"topic\": \"a\", \"qos\": {\"depth\": 2.5}}]}",
         "t.json: $.out[0].qos.depth: expected an integer, got 2.5"},
        {"{\"out\": [{\"topic\": \"a\", \"max_sample_size\": \"12XB\"}]}",
         "t.json: $.out[0].max_sample_size: \"12XB\" is not a size"},
        {"{\"out\": [{\"topic\": \"a\", \"max_sample_size\": \"2GiB\"}]}",
         "t.json: $.out[0].max_sample_size: \"2GiB\" is not a size from 1 B to 1024 MiB"},
        {"{\"out\": [{\"topic\": \"a\"}, {\"topic\": \"a\"}]}",
         "t.json: $.out[1].topic: \"a\" is already routed out"},
        {"{\"in\": [{\"topic\": \"a\", \"checksum\": 1}]}",
         "t.json: $.in[0].checksum: expected true or false, got a number"},
        {"{\"in\": [{\"topic\": \"a\", \"checksum\": true}]}",
         "t.json: $.in[0].checksum: only for \"type\": \"image\""},
        {"{\"dds\": {\"domain_id\": 231}, \"in\": [{\"topic\": \"a\"}]}",
         "t.json: $.dds.domain_id: 231 is out of range 0..230"},
        {"{\"dds\": {\"domain_id\": \"1\"}, \"in\": [{\"topic\": \"a\"}]}",
         "t.json: $.dds.domain_id: expected an integer, got a string"},
        {"{\"shmbus\": {\"domain\": \"\"}, \"in\": [{\"topic\": \"a\"}]}",
         "t.json: $.shmbus.domain: must not be empty"},
        {"{\"shmbus\": {\"domain\": \"a\", \"domain\": \"b\"}, \"in\": [{\"topic\": \"a\"}]}",
         "t.json: $.shmbus.domain: key given twice"},
        {"{\"stats\": {\"interval_ms\": 5}, \"in\": [{\"topic\": \"a\"}]}",
         "t.json: $.stats.interval_ms: 5 is out of range 10..60000"},
        {"{\"stats\": {\"topic\": \"a b\"}, \"in\": [{\"topic\": \"a\"}]}",
         "t.json: $.stats.topic: \"a b\" is not a shmbus topic name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].json, cases[i].want);
}

static void test_defaults_follow_the_ros2_qos_profiles(void **state)
{
    (void)state;
    bridge_config c;
    char err[512];
    assert_int_equal(
        bridge_config_parse("{\"out\": [{\"topic\": \"camera/front\", \"type\": \"image\"}],"
                            " \"in\": [{\"topic\": \"imu\"}]}",
                            "t.json", &c, err, sizeof err),
        0);
    assert_int_equal(c.nroutes, 2);
    const bridge_route *img = &c.routes[0], *msg = &c.routes[1];
    assert_string_equal(img->dds_topic, "rt/camera/front");
    assert_int_equal(img->type, BRIDGE_TYPE_IMAGE);
    assert_false(img->qos.reliable); /* sensor data: best effort, keep last 5 */
    assert_int_equal(img->qos.depth, 5);
    assert_string_equal(msg->dds_topic, "rt/imu");
    assert_int_equal(msg->type, BRIDGE_TYPE_MESSAGE);
    assert_true(msg->qos.reliable); /* default profile: reliable, keep last 10 */
    assert_int_equal(msg->qos.depth, 10);
    assert_string_equal(c.name, "shmbus-bridge");
    assert_string_equal(c.stats_topic, "shmbus-bridge/stats");
    assert_int_equal(c.dds_domain_id, 0);
    assert_int_equal(img->max_sample_size, 64u << 20);
}

static void test_samples_parse_and_relative_paths_follow_the_file(void **state)
{
    (void)state;
    static const char *const samples[] = {"bridge-robot.json", "bridge-station.json",
                                          "bridge-reliable.json"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char path[512], err[1024];
        snprintf(path, sizeof path, "%s/%s", BRIDGE_EXAMPLES, samples[i]);
        bridge_config c;
        if (bridge_config_load(path, &c, err, sizeof err) != 0) fail_msg("%s", err);
        if (c.domain_config[0]) assert_non_null(strstr(c.domain_config, BRIDGE_EXAMPLES "/"));
    }
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/bridge-robot.json", BRIDGE_EXAMPLES);
    bridge_config c;
    assert_int_equal(bridge_config_load(path, &c, err, sizeof err), 0);
    assert_string_equal(c.domain_config, BRIDGE_EXAMPLES "/camera.json");
    assert_string_equal(c.routes[0].dds_topic, "rt/camera/front/image_raw");
    assert_string_equal(c.routes[0].frame_id, "camera_front_optical");
    assert_int_equal(c.routes[1].max_sample_size, 8u << 20);
    assert_int_equal(bridge_config_load("/nonexistent/b.json", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/b.json: No such file or directory"));
}

static void test_check_option_reports_a_broken_file_and_exits_2(void **state)
{
    (void)state;
    char dir[] = "/tmp/bridge-config-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[128], cmd[512], out[128];
    snprintf(file, sizeof file, "%s/bad.json", dir);
    snprintf(out, sizeof out, "%s/err.txt", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("{\"in\": [{\"topic\": \"a\", \"qos\": {\"depth\": -1}}]}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/shmbus-bridge --check --config %s 2>%s", BRIDGE_BIN_DIR, file,
             out);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    f = fopen(out, "r");
    assert_non_null(f);
    char line[512] = "";
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "%s: $.in[0].qos.depth: -1 is out of range 1..1000", file);
    if (!strstr(line, want)) fail_msg("got: %s", line);
    unlink(file);
    unlink(out);
    rmdir(dir);
}

/* shmbus doctor reports a net.core.rmem_max too small for large frames, with the fix. */
static void doctor_with_rmem(const char *dir, const char *value, char *out, size_t outlen)
{
    char path[256], cmd[600], outfile[256];
    snprintf(path, sizeof path, "%s/net", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/net/core", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/net/core/rmem_max", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(value, f);
    fclose(f);
    snprintf(outfile, sizeof outfile, "%s/doctor.txt", dir);
    snprintf(cmd, sizeof cmd, "SHMBUS_SYSCTL_DIR=%s %s/shmbus doctor >%s 2>&1", dir, BRIDGE_BIN_DIR,
             outfile);
    if (system(cmd)) {
    } /* other checks may find problems on this host: only the line counts */
    f = fopen(outfile, "r");
    assert_non_null(f);
    out[0] = '\0';
    char line[1024];
    while (fgets(line, sizeof line, f))
        if (strstr(line, "rmem_max ")) snprintf(out, outlen, "%s", line);
    fclose(f);
    unlink(outfile);
    unlink(path);
}

static void test_doctor_reports_a_too_small_rmem_max_with_the_fix(void **state)
{
    (void)state;
    char dir[] = "/tmp/bridge-doctor-test.XXXXXX", line[1024];
    assert_non_null(mkdtemp(dir));
    doctor_with_rmem(dir, "4194304\n", line, sizeof line);
    if (strncmp(line, "PROBLEM", 7) != 0 || !strstr(line, "net.core.rmem_max 4194304") ||
        !strstr(line, "fix: sysctl -w net.core.rmem_max=33554432"))
        fail_msg("doctor said: %s", line);
    doctor_with_rmem(dir, "33554432\n", line, sizeof line);
    if (strncmp(line, "ok", 2) != 0) fail_msg("doctor said: %s", line);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/net/core", dir);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/net", dir);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_mistake_names_file_json_path_and_reason),
        cmocka_unit_test(test_defaults_follow_the_ros2_qos_profiles),
        cmocka_unit_test(test_samples_parse_and_relative_paths_follow_the_file),
        cmocka_unit_test(test_check_option_reports_a_broken_file_and_exits_2),
        cmocka_unit_test(test_doctor_reports_a_too_small_rmem_max_with_the_fix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
