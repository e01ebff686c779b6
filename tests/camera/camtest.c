/* Helpers of the camera pipeline test (see camtest.h). */
#include "camtest.h"

#include "delivery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CAMERA_BIN_DIR
#error "CAMERA_BIN_DIR (where camera-pub, frame-sink and frame-stats are) must be defined"
#endif

extern char **environ;

static const char *shm_dir(void)
{
    const char *d = getenv("SHMBUS_SHM_DIR");
    return d && *d ? d : "/dev/shm";
}

/* Files of domain dom in the shm directory; with remove, unlink them. */
int ct_leftovers(const char *dom, bool remove)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", dom);
    DIR *d = opendir(shm_dir());
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
            if (remove) {
                char p[512];
                snprintf(p, sizeof p, "%s/%s", shm_dir(), e->d_name);
                fprintf(stderr, "left behind: %s\n", p);
                unlink(p);
            }
        }
    closedir(d);
    return n;
}

int ct_setup(void **state)
{
    static int counter;
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/camtest.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char run[96];
    snprintf(run, sizeof run, "%s/run", f->dir);
    if (mkdir(run, 0700) != 0 || setenv("SHMBUS_RUNTIME_DIR", run, 1) != 0)
        return -1;
    snprintf(f->dom, sizeof f->dom, "cam%d_%d", (int)getpid(), ++counter);
    *state = f;
    return 0;
}

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(p);
}

int ct_teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < f->nchild; i++)
        if (f->child[i] > 0 && kill(f->child[i], SIGKILL) == 0)
            waitpid(f->child[i], NULL, 0);
    usleep(300 * 1000); /* let a last sweep run if a child was just killed */
    int left = ct_leftovers(f->dom, true);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    if (left) {
        fprintf(stderr, "%d shared memory segment(s) of the test's domain were left behind\n",
                left);
        return -1;
    }
    return 0;
}

/* ---- processes --------------------------------------------------------------------------- */

void ct_path(const fixture *f, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", f->dir, name);
}

/* Start program argv[0] from the build's bin directory with the test's config and domain,
 * stdout to <tag>.out and stderr to <tag>.err in the test directory (stdin from `in`, or
 * /dev/null). */
pid_t ct_spawn(fixture *f, const char *tag, const char *config, const char *in,
               const char *const *argv)
{
    const char *args[48];
    char prog[512], out[128], err[128], cfg[512];
    snprintf(prog, sizeof prog, "%s/%s", CAMERA_BIN_DIR, argv[0]);
    if (delivery_config(config, f->dir, cfg, sizeof cfg) != 0)
        fail_msg("cannot make the config %s for delivery %s (see stderr)", config,
                 delivery_wanted());
    int n = 0;
    args[n++] = prog;
    args[n++] = "--config";
    args[n++] = cfg;
    args[n++] = "--domain";
    args[n++] = f->dom;
    for (int i = 1; argv[i] && n < 46; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    snprintf(out, sizeof out, "%s/%s.out", f->dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", f->dir, tag);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, prog, &fa, NULL, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot start %s: %s", prog, strerror(rc));
    assert_true(f->nchild < MAX_CHILDREN);
    f->child[f->nchild] = pid;
    snprintf(f->tag[f->nchild], sizeof f->tag[0], "%s", tag);
    f->nchild++;
    return pid;
}

/* A whole file, NUL-terminated (caller frees); NULL if it cannot be read. */
char *ct_slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

char *ct_log(const fixture *f, const char *tag)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s.err", f->dir, tag);
    char *s = ct_slurp(p, NULL);
    return s ? s : strdup("(no log)");
}

/* Wait for child `tag` and require exit status want; show its stderr otherwise. */
void ct_expect_exit(fixture *f, pid_t pid, int want, int timeout_ms)
{
    int i = 0;
    while (i < f->nchild && f->child[i] != pid)
        i++;
    assert_true(i < f->nchild);
    int status, code = -1;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        usleep(10 * 1000);
    }
    f->child[i] = 0;
    if (code != want) {
        char *log = ct_log(f, f->tag[i]);
        fail_msg("%s exited %d (%s), expected %d; its stderr:\n%s", f->tag[i], code,
                 code < 0 ? "still running: killed" : "exit code", want, log);
    }
}

/* A number from a summary file: the value of "key". */
double ct_summary(const fixture *f, const char *file, const char *key)
{
    char p[128], k[64];
    ct_path(f, file, p, sizeof p);
    char *s = ct_slurp(p, NULL);
    if (!s)
        fail_msg("summary %s was not written", file);
    snprintf(k, sizeof k, "\"%s\":", key);
    char *at = strstr(s, k);
    if (!at) {
        free(s);
        fail_msg("summary %s has no %s", file, key);
    }
    double v = strtod(at + strlen(k), NULL);
    free(s);
    return v;
}
