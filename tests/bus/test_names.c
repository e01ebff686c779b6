/* Names at every entry point: each kind of name (domain, participant, pool, topic, node) is
 * checked by one rule (docs/config.md, "Names"), and a name that breaks it is refused with
 * SHMBUS_EINVAL and a reason, never truncated, changed or half-used: no topic slot, no
 * segment, no domain is made for it. Valid names up to the limit work. shmbus_domain_list
 * leaves out files whose name is not a domain's.
 *
 * One process, no children: the test process opens its domain and its publishers and
 * subscribers itself. Each test has its own domain and runtime directory (iso_setup).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso_common.h"

#define L64 "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"

/* rc must be EINVAL with a detail saying "invalid <kind> name". */
static void expect_refused(int rc, const char *kind, const char *call, const char *name,
                           char *problems, size_t len)
{
    char want[64];
    snprintf(want, sizeof want, "invalid %s name", kind);
    if (rc != SHMBUS_EINVAL)
        note(problems, len, "%s(%s name of %zu bytes) returned %s, not SHMBUS_EINVAL", call,
             kind, name ? strlen(name) : 0, shmbus_errname(rc));
    else if (!strstr(shmbus_last_error(), want))
        note(problems, len, "%s: the detail \"%s\" does not say \"%s\"", call,
             shmbus_last_error(), want);
}

/* Topic names that are not topic names. */
static const char *const bad_topics[] = {
    "", " ", "a b", "a\tb", "a\nb", "caf\xc3\xa9", "/abs", "../up", "a/../b", ".hidden",
    "a//b", "a/", "a/.b", "a\\b", "a\"b", L64, L64 "xx", NULL,
};

static void test_bad_topic_names_are_refused_by_pub_and_sub_open_and_take_no_slot(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json"); /* has a default_topic: any valid name is created */
    shmbus_domain *d = ps_open_domain(e);
    char problems[4096] = "";
    for (unsigned round = 0; round < 5; round++) /* repeated opens: each must be refused */
        for (unsigned i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
            shmbus_pub *p = NULL;
            shmbus_sub *s = NULL;
            expect_refused(shmbus_pub_open(d, bad_topics[i], &p), "topic", "shmbus_pub_open",
                           bad_topics[i], problems, sizeof problems);
            expect_refused(shmbus_sub_open(d, bad_topics[i], NULL, &s), "topic",
                           "shmbus_sub_open", bad_topics[i], problems, sizeof problems);
            if (p)
                shmbus_pub_close(p);
            if (s)
                shmbus_sub_close(s);
        }
    shmbus_pub *up = NULL;
    expect_refused(shmbus_pub_open(d, "../up", &up), "topic", "shmbus_pub_open", "../up",
                   problems, sizeof problems);
    print_message("    e.g. %s\n", shmbus_last_error());
    shmbus_snapshot *snap = NULL;
    ps_assert_ok(shmbus_snapshot_take(d, &snap));
    unsigned ntopics = snap->ntopics;
    for (unsigned t = 0; t < snap->ntopics; t++)
        if (strcmp(snap->topics[t].def.name, "t") != 0) /* "t" is the file's own */
            note(problems, sizeof problems, "a topic \"%s\" was made", snap->topics[t].def.name);
    shmbus_snapshot_free(snap);
    ps_close_domain(e, d);
    if (ntopics != 1)
        note(problems, sizeof problems, "%u topics in the registry, expected only \"t\"", ntopics);
    if (problems[0])
        fail_msg("%s", problems);
}

static void test_topic_name_of_the_longest_length_works_end_to_end(void **state)
{
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    memset(name, 'n', SHMBUS_TOPIC_NAME_MAX);
    name[SHMBUS_TOPIC_NAME_MAX] = 0;
    memcpy(name, "cam/front/", 10);
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    ps_assert_ok(shmbus_sub_open(d, name, NULL, &s));
    ps_assert_ok(shmbus_pub_open(d, name, &p));
    ps_assert_ok(shmbus_pub_wait_subscribers(p, 1, WAIT_MS));
    ps_assert_ok(shmbus_sub_wait_publishers(s, 1, WAIT_MS));
    ps_assert_ok(ps_publish(p, 128, 1, 1, 0));
    shmbus_msg *m = NULL;
    ps_assert_ok(shmbus_sub_recv(s, PS_SAFETY_MS, &m));
    ps_hdr h;
    assert_int_equal(ps_check_msg(m, &h), 0);
    assert_int_equal(h.seq, 1);
    ps_assert_ok(shmbus_msg_release(m));
    ps_assert_ok(shmbus_pub_close(p));
    ps_assert_ok(shmbus_sub_close(s));
    ps_close_domain(e, d);
}

static void test_bad_pool_and_node_names_are_refused(void **state)
{
    static const char *const bad_pools[] = {
        "", "a b", "a\nb", ".hidden", "a/b", "caf\xc3\xa9", "p:1",
        "pppppppppppppppppppppppppppppppp" /* 32 */, NULL,
    };
    static const char *const bad_nodes[] = {
        "", "a b", "a\nb", "../x", "/abs", "a//b",
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" /* 48 */, NULL,
    };
    ps_env *e = PS_ENV(state);
    ps_use_config(e, "iso_plain.json");
    shmbus_domain *d = ps_open_domain(e);
    char problems[4096] = "";
    shmbus_pool_class cls = {.block_size = 4096, .count = 4};
    for (unsigned i = 0; i < sizeof bad_pools / sizeof bad_pools[0]; i++) {
        shmbus_pool *p = NULL;
        expect_refused(shmbus_pool_open(d, bad_pools[i], &cls, 1, &p), "pool",
                       "shmbus_pool_open", bad_pools[i], problems, sizeof problems);
    }
    shmbus_pool *pool = NULL;
    ps_assert_ok(shmbus_pool_open(d, "frames", NULL, 0, &pool));
    for (unsigned i = 0; i < sizeof bad_nodes / sizeof bad_nodes[0]; i++) {
        shmbus_msg *m = NULL;
        expect_refused(shmbus_node_get(pool, bad_nodes[i], 64, &m, NULL), "node",
                       "shmbus_node_get", bad_nodes[i], problems, sizeof problems);
        if (m)
            shmbus_msg_release(m);
    }
    char names[512];
    int segs = leftovers(e->dom, names, sizeof names);
    ps_close_domain(e, d);
    if (segs != 3) /* ctl, reg and the pool "frames" */
        note(problems, sizeof problems, "segments of the domain:%s", names);
    if (problems[0])
        fail_msg("%s", problems);
}

/* Domain names made from the test's own domain name, so that whatever they leave is found. */
static void test_bad_domain_and_participant_names_are_refused_and_leave_nothing(void **state)
{
    ps_env *e = PS_ENV(state);
    char bad[8][64];
    unsigned n = 0;
    snprintf(bad[n++], sizeof bad[0], "%s.x", e->dom);             /* "adv.x" */
    snprintf(bad[n++], sizeof bad[0], "%s x", e->dom);
    snprintf(bad[n++], sizeof bad[0], "%s\n", e->dom);
    snprintf(bad[n++], sizeof bad[0], "%s/x", e->dom);
    snprintf(bad[n++], sizeof bad[0], "%s\xc3\xa9", e->dom);
    snprintf(bad[n++], sizeof bad[0], "%s\t", e->dom);
    for (unsigned k = 32; k <= 40; k += 8) { /* 32 and 40 characters: not cut to 31 */
        snprintf(bad[n], sizeof bad[0], "%s", e->dom);
        size_t l = strlen(bad[n]);
        memset(bad[n] + l, 'q', k - l);
        bad[n++][k] = 0;
    }
    char problems[4096] = "";
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.runtime_dir = e->tmpdir;
    for (unsigned i = 0; i < n; i++) {
        shmbus_domain *d = NULL;
        expect_refused(shmbus_domain_open(bad[i], &o, &d), "domain", "shmbus_domain_open",
                       bad[i], problems, sizeof problems);
        if (d)
            shmbus_domain_close(d);
        expect_refused(shmbus_domain_remove(bad[i], NULL), "domain", "shmbus_domain_remove",
                       bad[i], problems, sizeof problems);
    }
    expect_refused(shmbus_domain_open("", &o, &(shmbus_domain *){NULL}), "domain",
                   "shmbus_domain_open", "", problems, sizeof problems);
    static const char *const bad_participants[] = {
        "", "a b", "a\nb", ".x", "x/y", "caf\xc3\xa9", "pppppppppppppppppppppppppppppppp",
    };
    for (unsigned i = 0; i < sizeof bad_participants / sizeof bad_participants[0]; i++) {
        shmbus_domain *d = NULL;
        o.name = bad_participants[i];
        expect_refused(shmbus_domain_open(e->dom, &o, &d), "participant", "shmbus_domain_open",
                       bad_participants[i], problems, sizeof problems);
        if (d)
            shmbus_domain_close(d);
    }
    char prefix[64], names[512], rd[256];
    snprintf(prefix, sizeof prefix, "shmbus.%s", e->dom);
    if (entries(shm_dir(), prefix, names, sizeof names) > 0)
        note(problems, sizeof problems, "left in %s:%s", shm_dir(), names);
    if (entries(e->tmpdir, "shmbus.", names, sizeof names) > 0)
        note(problems, sizeof problems, "left in %s:%s", e->tmpdir, names);
    /* the longest valid domain name works, and is not cut */
    snprintf(bad[0], sizeof bad[0], "%s", e->dom);
    size_t l = strlen(bad[0]);
    memset(bad[0] + l, 'q', SHMBUS_DOMAIN_NAME_MAX - l);
    bad[0][SHMBUS_DOMAIN_NAME_MAX] = 0;
    o.name = "names.test+1";
    shmbus_domain *d = NULL;
    ps_assert_ok(shmbus_domain_open(bad[0], &o, &d));
    assert_string_equal(shmbus_domain_name(d), bad[0]);
    ps_assert_ok(shmbus_domain_close(d));
    snprintf(rd, sizeof rd, "%s/shmbus.%s", e->tmpdir, bad[0]);
    if (entries(shm_dir(), prefix, names, sizeof names) > 0 || access(rd, F_OK) == 0)
        note(problems, sizeof problems, "the 31-character domain left%s", names);
    if (problems[0])
        fail_msg("%s", problems);
}

/* A configuration file: the same rules (ECONFIG naming the JSON path and the reason). */
static void test_bad_names_in_a_configuration_file_are_refused_with_the_reason(void **state)
{
    static const char *const docs[][2] = {
        {"{\"domain\": \"adv.x\"}", "$.domain: invalid domain name \"adv.x\": character '.'"},
        {"{\"pools\": [{\"name\": \"p\", \"block_size\": 64, \"count\": 16}], \"topics\": "
         "[{\"name\": \"a/../b\", \"pool\": \"p\"}]}",
         "$.topics[0].name: invalid topic name \"a/../b\": a part starts with '.'"},
        {"{\"pools\": [{\"name\": \"p\", \"block_size\": 64, \"count\": 16}], \"topics\": "
         "[{\"name\": \"a//b\", \"pool\": \"p\"}]}",
         "$.topics[0].name: invalid topic name \"a//b\": it has an empty part"},
        {"{\"pools\": [{\"name\": \"p\", \"block_size\": 64, \"count\": 16}], \"topics\": "
         "[{\"name\": \"a\\nb\", \"pool\": \"p\"}]}",
         "$.topics[0].name: invalid topic name \"a\\x0ab\": byte 0x0a at offset 1"},
        {"{\"pools\": [{\"name\": \".p\", \"block_size\": 64, \"count\": 16}]}",
         "$.pools[0].name: invalid pool name \".p\": it starts with '.'"},
    };
    ps_env *e = PS_ENV(state);
    char problems[4096] = "", path[256];
    snprintf(path, sizeof path, "%s/names.json", e->tmpdir);
    for (unsigned i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(docs[i][0], f);
        fclose(f);
        shmbus_domain_opts o;
        shmbus_domain_opts_init(&o);
        o.config_path = path;
        o.runtime_dir = e->tmpdir;
        shmbus_domain *d = NULL;
        int rc = shmbus_domain_open(e->dom, &o, &d);
        if (d)
            shmbus_domain_close(d);
        if (rc != SHMBUS_ECONFIG || !strstr(shmbus_last_error(), docs[i][1]))
            note(problems, sizeof problems, "file %u: %s \"%s\", expected SHMBUS_ECONFIG "
                 "with \"%s\"", i, shmbus_errname(rc), shmbus_last_error(), docs[i][1]);
        shmbus_config_summary sum;
        rc = shmbus_config_load(path, &sum);
        if (rc != SHMBUS_ECONFIG || !strstr(shmbus_last_error(), docs[i][1]))
            note(problems, sizeof problems, "shmbus_config_load, file %u: %s \"%s\"", i,
                 shmbus_errname(rc), shmbus_last_error());
    }
    unlink(path);
    if (problems[0])
        fail_msg("%s", problems);
}

static void test_domain_list_leaves_out_files_that_are_not_domains(void **state)
{
    ps_env *e = PS_ENV(state);
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/shm", e->tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    static const char *const files[] = {"shmbus.ok-1.ctl", "shmbus.two\nlines.ctl",
                                        "shmbus.sp ace.ctl", "shmbus.dot.ted.ctl",
                                        "shmbus.caf\xc3\xa9.ctl"};
    for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
    }
    char names[8][SHMBUS_DOMAIN_NAME_MAX + 1];
    int n = shmbus_domain_list(dir, names, 8);
    for (int i = 0; i < n && i < 8; i++)
        print_message("    listed \"%s\"\n", names[i]);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "ok-1");
}

/* Names that come from shared memory (here the process name a participant gets when it
 * gives none) are shown printable: a control character cannot break a listing. */
static void test_names_from_shared_memory_are_printable_in_snapshots(void **state)
{
    ps_env *e = PS_ENV(state);
    char saved[17] = "";
    assert_int_equal(prctl(PR_GET_NAME, saved), 0);
    assert_int_equal(prctl(PR_SET_NAME, "bad\tname\x01"), 0);
    shmbus_domain *d = NULL;
    int rc = ps_domain_open(e, &d);
    prctl(PR_SET_NAME, saved);
    ps_assert_ok(rc);
    e->d = d;
    shmbus_snapshot *s = NULL;
    ps_assert_ok(shmbus_snapshot_take(d, &s));
    assert_int_equal(s->nparticipants, 1);
    char name[sizeof s->participants[0].name];
    snprintf(name, sizeof name, "%s", s->participants[0].name);
    shmbus_snapshot_free(s);
    ps_close_domain(e, d);
    print_message("    participant shown as \"%s\"\n", name);
    for (const char *c = name; *c; c++)
        if (*c < 0x20 || *c >= 0x7f)
            fail_msg("the participant's name has byte 0x%02x", (unsigned char)*c);
    assert_non_null(strstr(name, "bad?name"));
}

PS_MAIN(ISO_TEST(test_bad_topic_names_are_refused_by_pub_and_sub_open_and_take_no_slot),
        ISO_TEST(test_topic_name_of_the_longest_length_works_end_to_end),
        ISO_TEST(test_bad_pool_and_node_names_are_refused),
        ISO_TEST(test_bad_domain_and_participant_names_are_refused_and_leave_nothing),
        ISO_TEST(test_bad_names_in_a_configuration_file_are_refused_with_the_reason),
        ISO_TEST(test_domain_list_leaves_out_files_that_are_not_domains),
        ISO_TEST(test_names_from_shared_memory_are_printable_in_snapshots))
