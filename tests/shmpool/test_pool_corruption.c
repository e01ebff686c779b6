/* One bad writer must not take everyone down: a publisher, a subscriber and an idle
 * participant run on a domain while the test process writes into its live segments (the
 * control segment, the pool, the bus registry) the way a buggy or hostile process of the same
 * uid could. Whatever it writes, every one of them must go on running (its loop keeps turning,
 * calls give SHMBUS_E* codes at worst) and leave cleanly when told: no SIGFPE, SIGSEGV or
 * SIGBUS, no hang. The data of the domain may be spoiled; the processes may not die.
 *
 * The named attacks are the ones that killed every participant before the geometry was kept
 * privately (a class count of 0 or 2^31-1, a changed stride, a pool truncated to 4 KiB, 2000
 * random bytes in the control segment); then seeded rounds of random mutations
 * ($SHMBUS_CORRUPT_ROUNDS, default 8; each round prints its seed).
 *
 * Public API for the processes; the test writes the segment files directly, and takes the
 * pool header's offsets from shmpool's layout header.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "pubsub_common.h"

#define TOPIC "corrupt"
#define POOL "frames"
#define POOL_SEG "pool.frames" /* its segment's suffix */

enum role { PUB, SUB, IDLE, NROLES };
static const char *const role_name[NROLES] = {"publisher", "subscriber", "idle participant"};

struct child_state {
    _Atomic uint64_t loops;  /* turns of its loop: a hang stops them */
    _Atomic uint64_t ok;     /* messages published / received */
    _Atomic uint64_t errors; /* calls that returned an error code */
    _Atomic int bad_code;    /* a status that is no SHMBUS_E* code (0: none seen) */
};

struct shared {
    _Atomic int stop;
    struct child_state c[NROLES];
};

/* The domain's configuration: two classes, a topic that fails at once when the pool is full
 * (a corrupted pool may look full for good; waiting would look like a hang). */
static void write_config(ps_env *e)
{
    snprintf(e->config, sizeof e->config, "%s/corrupt.json", e->tmpdir);
    FILE *f = fopen(e->config, "w");
    assert_non_null(f);
    fprintf(f, "{\"pools\": [{\"name\": \"%s\", \"classes\": ["
               "{\"block_size\": \"4KiB\", \"count\": 32}, {\"block_size\": \"64KiB\", \"count\": 8}]}],\n"
               " \"topics\": [{\"name\": \"%s\", \"pool\": \"%s\", \"history\": 4, "
               "\"max_message_size\": \"64KiB\", \"max_held\": 8, \"on_full\": \"fail\", "
               "\"queue_depth\": 64}]}\n",
            POOL, TOPIC, POOL);
    assert_int_equal(fclose(f), 0);
}

static void note_rc(struct child_state *cs, int rc)
{
    if (rc == 0)
        return;
    atomic_fetch_add(&cs->errors, 1);
    if (rc > 0 || strcmp(shmbus_errname(rc), "SHMBUS_E?") == 0)
        atomic_store(&cs->bad_code, rc);
}

/* Read every byte of a received payload (as a subscriber does), within its length. */
static uint64_t touch(const shmbus_msg *m)
{
    const volatile uint8_t *p = shmbus_msg_data(m);
    uint64_t len = shmbus_msg_length(m), sum = 0;
    for (uint64_t i = 0; i < len; i += 64)
        sum += p[i];
    return sum;
}

static void child(const ps_env *e, ps_chan *ch, enum role r, struct shared *sh)
{
    shmbus_domain *d = ps_child_start(e, ch);
    struct child_state *cs = &sh->c[r];
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    if (r == PUB)
        PS_OK(shmbus_pub_open(d, TOPIC, &p));
    if (r == SUB)
        PS_OK(shmbus_sub_open(d, TOPIC, NULL, &s));
    PS_CHECK(proc_tell(ch->up[1], 'r') == 0, "cannot report ready");
    uint64_t seq = 0, rnd = (uint64_t)getpid();
    volatile uint64_t sink = 0;
    while (!atomic_load(&sh->stop)) {
        if (r == PUB) {
            int rc = ps_publish(p, ps_rand_len(&rnd, 60000), ++seq, 1, 0);
            note_rc(cs, rc);
            if (rc == 0)
                atomic_fetch_add(&cs->ok, 1);
            proc_sleep_ms(1);
        } else if (r == SUB) {
            shmbus_msg *m = NULL;
            int rc = shmbus_sub_recv(s, 20, &m);
            if (rc == 0) {
                sink += touch(m);
                note_rc(cs, shmbus_msg_release(m));
                atomic_fetch_add(&cs->ok, 1);
            } else if (rc != SHMBUS_ETIMEDOUT) {
                note_rc(cs, rc);
                proc_sleep_ms(1);
            }
        } else {
            proc_sleep_ms(5);
        }
        atomic_fetch_add(&cs->loops, 1);
    }
    (void)sink;
    /* Leave: whatever the calls say about the spoiled domain, they must say it as codes. */
    if (p)
        note_rc(cs, shmbus_pub_close(p));
    if (s)
        note_rc(cs, shmbus_sub_close(s));
    note_rc(cs, shmbus_domain_close(d));
    _exit(0);
}

/* ---- the test process's side ----------------------------------------------------------- */

static void seg_path(const ps_env *e, const char *suffix, char *buf, size_t len)
{
    const char *dir = getenv("SHMBUS_SHM_DIR");
    snprintf(buf, len, "%s/shmbus.%s.%s", dir && *dir ? dir : "/dev/shm", e->dom, suffix);
}

static void poke(const ps_env *e, const char *suffix, off_t off, const void *buf, size_t len)
{
    char path[512];
    seg_path(e, suffix, path, sizeof path);
    int fd = open(path, O_RDWR | O_NOFOLLOW);
    if (fd < 0)
        fail_msg("%s: %s", path, strerror(errno));
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    if (off + (off_t)len <= st.st_size) /* write into the segment, never grow it */
        assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
    close(fd);
}

static off_t seg_size(const ps_env *e, const char *suffix)
{
    char path[512];
    struct stat st;
    seg_path(e, suffix, path, sizeof path);
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static void truncate_seg(const ps_env *e, const char *suffix, off_t size)
{
    char path[512];
    seg_path(e, suffix, path, sizeof path);
    if (truncate(path, size) != 0)
        fail_msg("truncate %s: %s", path, strerror(errno));
}

static void random_bytes(const ps_env *e, const char *suffix, unsigned n, uint64_t *rnd)
{
    off_t size = seg_size(e, suffix);
    for (unsigned i = 0; i < n && size > 0; i++) {
        uint8_t b = (uint8_t)ps_rand(rnd);
        poke(e, suffix, (off_t)(ps_rand(rnd) % (uint64_t)size), &b, 1);
    }
}

typedef void (*mutation)(const ps_env *e, uint64_t seed);

/* Write v (len bytes) into the given field of every class record of the pool header. */
static void set_class_field(const ps_env *e, size_t field, const void *v, size_t len)
{
    for (unsigned c = 0; c < 2; c++)
        poke(e, POOL_SEG,
             (off_t)(offsetof(struct pool_seg_hdr, classes) + c * sizeof(struct pool_class_shm) +
                     field),
             v, len);
}

static void class_count_zero(const ps_env *e, uint64_t seed)
{
    (void)seed;
    uint32_t zero = 0;
    set_class_field(e, offsetof(struct pool_class_shm, count), &zero, sizeof zero);
}

static void class_count_huge(const ps_env *e, uint64_t seed)
{
    (void)seed;
    uint32_t huge = 0x7fffffffu;
    set_class_field(e, offsetof(struct pool_class_shm, count), &huge, sizeof huge);
}

static void stride_changed(const ps_env *e, uint64_t seed)
{
    (void)seed;
    uint64_t big = 1ull << 40;
    set_class_field(e, offsetof(struct pool_class_shm, stride), &big, sizeof big);
    set_class_field(e, offsetof(struct pool_class_shm, block_size), &big, sizeof big);
}

static void pool_truncated(const ps_env *e, uint64_t seed)
{
    (void)seed;
    truncate_seg(e, POOL_SEG, 4096);
}

static void ctl_random_bytes(const ps_env *e, uint64_t seed)
{
    uint64_t rnd = seed;
    random_bytes(e, "ctl", 2000, &rnd);
}

/* A random mutation of a random segment, from the seed alone. */
static void random_mutation(const ps_env *e, uint64_t seed)
{
    static const char *const segs[] = {"ctl", POOL_SEG, "reg"};
    uint64_t rnd = seed;
    const char *seg = segs[ps_rand(&rnd) % 3];
    off_t size = seg_size(e, seg);
    unsigned op = (unsigned)(ps_rand(&rnd) % 5);
    print_message("    seed %llu: %s, %s\n", (unsigned long long)seed, seg,
                  (const char *[]){"random bytes", "integer fields", "0xff run", "truncation",
                                   "zeroed header"}[op]);
    if (size <= 0)
        return;
    switch (op) {
    case 0:
        random_bytes(e, seg, 1 + (unsigned)(ps_rand(&rnd) % 4000), &rnd);
        break;
    case 1: /* aligned integers near the start, where the headers are */
        for (unsigned i = 0; i < 64; i++) {
            static const uint64_t vals[] = {0, 1, 0x7fffffffu, 0xffffffffu, ~0ull, 1ull << 40};
            uint64_t v = ps_rand(&rnd) % 7 == 6 ? ps_rand(&rnd) : vals[ps_rand(&rnd) % 6];
            off_t lim = size < 65536 ? size : 65536;
            off_t off = (off_t)(ps_rand(&rnd) % (uint64_t)lim) & ~(off_t)7;
            poke(e, seg, off, &v, ps_rand(&rnd) % 2 ? 8 : 4);
        }
        break;
    case 2: {
        uint8_t ff[4096];
        memset(ff, 0xff, sizeof ff);
        off_t off = (off_t)(ps_rand(&rnd) % (uint64_t)size);
        poke(e, seg, off, ff, (size_t)(size - off < 4096 ? size - off : 4096));
        break;
    }
    case 3: {
        static const off_t sizes[] = {0, 4096, 64};
        truncate_seg(e, seg, sizes[ps_rand(&rnd) % 3]);
        break;
    }
    default: {
        uint8_t z[512] = {0};
        poke(e, seg, 0, z, (size_t)(size < 512 ? size : 512));
        break;
    }
    }
}

/* Remove what is left of the test's own domain after a round (the spoiled segments, the
 * runtime directory), so that the next round starts clean. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_domain_files(const ps_env *e)
{
    const char *dir = getenv("SHMBUS_SHM_DIR");
    dir = dir && *dir ? dir : "/dev/shm";
    char prefix[64], path[512];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", e->dom);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    closedir(dp);
    snprintf(path, sizeof path, "%s/shmbus.%s", e->tmpdir, e->dom);
    nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static bool all_advanced(struct shared *sh, const uint64_t *from, uint64_t by)
{
    for (unsigned r = 0; r < NROLES; r++)
        if (atomic_load(&sh->c[r].loops) < from[r] + by)
            return false;
    return true;
}

static void run_round(ps_env *e, struct shared *sh, mutation mutate, uint64_t seed)
{
    memset(sh, 0, sizeof *sh);
    ps_chan ch[NROLES];
    pid_t pid[NROLES];
    for (unsigned r = 0; r < NROLES; r++) {
        ps_chan_make(&ch[r]);
        pid[r] = proc_fork();
        if (pid[r] == 0)
            child(e, &ch[r], (enum role)r, sh);
        ps_chan_parent(&ch[r]);
    }
    for (unsigned r = 0; r < NROLES; r++) {
        ps_tell_child(&ch[r], 'g');
        ps_hear_child(&ch[r], 'r', PS_CHILD_MS, role_name[r]);
    }
    /* Messages flow before the attack. */
    if (ps_wait_counter(&sh->c[SUB].ok, 5, PS_SAFETY_MS) != 0)
        fail_msg("the subscriber received %llu messages before the attack",
                 (unsigned long long)atomic_load(&sh->c[SUB].ok));

    mutate(e, seed);

    /* Everyone keeps running: each loop turns on (a hang stops it; a crash ends it). */
    uint64_t from[NROLES];
    for (unsigned r = 0; r < NROLES; r++)
        from[r] = atomic_load(&sh->c[r].loops);
    uint64_t deadline = proc_now_ns() + (uint64_t)ps_patience(20000) * 1000000u;
    while (!all_advanced(sh, from, 50) && proc_now_ns() < deadline)
        proc_sleep_ms(10);
    atomic_store(&sh->stop, 1);
    char problems[1024] = "";
    for (unsigned r = 0; r < NROLES; r++) {
        uint64_t turned = atomic_load(&sh->c[r].loops) - from[r];
        int rc = proc_wait(pid[r], PS_CHILD_MS);
        proc_forget(pid[r]);
        size_t n = strlen(problems);
        if (rc != 0)
            snprintf(problems + n, sizeof problems - n, " %s ended with %s %d;", role_name[r],
                     rc > 128 ? "signal" : rc < 0 ? "a hang, status" : "status",
                     rc > 128 ? rc - 128 : rc);
        else if (turned < 50)
            snprintf(problems + n, sizeof problems - n,
                     " %s stalled (%llu turns of its loop after the attack);", role_name[r],
                     (unsigned long long)turned);
        else if (atomic_load(&sh->c[r].bad_code))
            snprintf(problems + n, sizeof problems - n, " %s got status %d, no SHMBUS_E* code;",
                     role_name[r], atomic_load(&sh->c[r].bad_code));
        print_message("    %s: %llu turns after the attack, %llu ok, %llu errors\n", role_name[r],
                      (unsigned long long)turned, (unsigned long long)atomic_load(&sh->c[r].ok),
                      (unsigned long long)atomic_load(&sh->c[r].errors));
        ps_chan_close(&ch[r]);
    }
    remove_domain_files(e);
    if (problems[0])
        fail_msg("seed %llu:%s", (unsigned long long)seed, problems);
}

static void attack(void **state, mutation m)
{
    ps_env *e = PS_ENV(state);
    write_config(e);
    struct shared *sh = ps_shared(e, sizeof(struct shared));
    run_round(e, sh, m, 1);
}

static void test_class_count_of_zero_in_the_pool_header_kills_no_participant(void **state)
{
    attack(state, class_count_zero);
}

static void test_class_count_of_2_pow_31_minus_1_kills_no_participant(void **state)
{
    attack(state, class_count_huge);
}

static void test_changed_stride_and_block_size_kill_no_participant(void **state)
{
    attack(state, stride_changed);
}

static void test_pool_truncated_to_4_kib_kills_no_participant(void **state)
{
    attack(state, pool_truncated);
}

static void test_2000_random_bytes_in_the_control_segment_kill_no_participant(void **state)
{
    attack(state, ctl_random_bytes);
}

static void test_seeded_random_mutations_of_live_segments_kill_and_hang_no_participant(
    void **state)
{
    ps_env *e = PS_ENV(state);
    write_config(e);
    struct shared *sh = ps_shared(e, sizeof(struct shared));
    const char *env = getenv("SHMBUS_CORRUPT_ROUNDS");
    unsigned rounds = env && *env ? (unsigned)strtoul(env, NULL, 10) : 8;
    const char *base_env = getenv("SHMBUS_CORRUPT_SEED");
    uint64_t base = base_env && *base_env ? strtoull(base_env, NULL, 10) : 20261130;
    for (unsigned i = 0; i < rounds; i++)
        run_round(e, sh, random_mutation, base + i);
}

PS_MAIN(PS_TEST(test_class_count_of_zero_in_the_pool_header_kills_no_participant),
        PS_TEST(test_class_count_of_2_pow_31_minus_1_kills_no_participant),
        PS_TEST(test_changed_stride_and_block_size_kill_no_participant),
        PS_TEST(test_pool_truncated_to_4_kib_kills_no_participant),
        PS_TEST(test_2000_random_bytes_in_the_control_segment_kill_no_participant),
        PS_TEST(test_seeded_random_mutations_of_live_segments_kill_and_hang_no_participant))
