/* Helpers of the camera pipeline test: a temporary directory and a domain per test, the
 * programs started from the build's bin directory with posix_spawn (exec: no fork that
 * keeps using the bus, which nng forbids), and their logs and JSON summaries read back.
 * Every test ends with nothing of its domain left in the shm directory (teardown checks). */
#ifndef CAMTEST_H
#define CAMTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include <cmocka.h>

#define MAX_CHILDREN 16

typedef struct fixture {
    char dir[64];  /* temporary directory: outputs, logs and the runtime dir */
    char dom[32];  /* this test's domain */
    pid_t child[MAX_CHILDREN];
    char tag[MAX_CHILDREN][16];
    int nchild;
} fixture;

/* cmocka setup/teardown: make the directory (SHMBUS_RUNTIME_DIR under it) and the domain
 * name; kill leftover children, fail if the domain left files in the shm directory (and
 * remove them), remove the directory. */
int ct_setup(void **state);
int ct_teardown(void **state);

/* Files of domain dom in the shm directory ($SHMBUS_SHM_DIR or /dev/shm); with remove, unlink
 * them. */
int ct_leftovers(const char *dom, bool remove);

/* <test dir>/<name> */
void ct_path(const fixture *f, const char *name, char *out, size_t len);

/* Start program argv[0] of the build's bin directory with --config <config> (its copy for
 * $SHMBUS_TEST_DELIVERY, tests/common/delivery.h) --domain <the test's> and the rest of argv; stdout to <tag>.out, stderr to <tag>.err in the test dir,
 * stdin from `in` (NULL: /dev/null). */
pid_t ct_spawn(fixture *f, const char *tag, const char *config, const char *in,
               const char *const *argv);

/* Wait for a child (at most timeout_ms, then kill it) and require exit status want (128 +
 * signal for a signal); on mismatch fail with its stderr. */
void ct_expect_exit(fixture *f, pid_t pid, int want, int timeout_ms);

/* A whole file, NUL-terminated (caller frees); NULL if it cannot be read. */
char *ct_slurp(const char *path, size_t *len);
/* The stderr of child `tag` (caller frees). */
char *ct_log(const fixture *f, const char *tag);
/* A number from a JSON summary in the test dir: the value of "key" (fails if absent). */
double ct_summary(const fixture *f, const char *file, const char *key);

/* Require `key cmp want` in a summary; on failure show the whole summary. */
#define ASSERT_SUMMARY(f, file, key, cmp, want)                                              \
    do {                                                                                     \
        double v_ = ct_summary(f, file, key);                                             \
        if (!(v_ cmp(double)(want))) {                                                       \
            char p_[128];                                                                    \
            ct_path(f, file, p_, sizeof p_);                                                 \
            char *all_ = ct_slurp(p_, NULL);                                                    \
            fail_msg("%s: %s is %.0f, expected %s %.0f:\n%s", file, key, v_, #cmp,           \
                     (double)(want), all_ ? all_ : "");                                      \
        }                                                                                    \
    } while (0)

#endif
