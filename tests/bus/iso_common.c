/* Helpers shared by test_isolation.c and test_faults_resources.c: see iso_common.h. */
#include "iso_common.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

unsigned iso_last_domain;

int iso_setup(void **state)
{
    int rc = ps_setup(state);
    if (rc == 0) {
        ps_env *e = *state;
        snprintf(e->dom, sizeof e->dom, "iso%dx%u", (int)getpid(), ++iso_last_domain);
        remove_leftovers(e->dom); /* an earlier run with this pid may have crashed */
    }
    return rc;
}

const char *shm_dir(void)
{
    const char *s = getenv("SHMBUS_SHM_DIR");
    return s && *s ? s : "/dev/shm";
}

int entries_matching(const char *dir, const char *prefix, const char *suffix, char *names,
                     size_t len)
{
    if (names && len)
        names[0] = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            strncmp(de->d_name, prefix, strlen(prefix)) != 0 || l < sl ||
            strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        if (names && strlen(names) + strlen(de->d_name) + 2 < len)
            strcat(strcat(names, " "), de->d_name);
        n++;
    }
    closedir(dp);
    return n;
}

int entries(const char *dir, const char *prefix, char *names, size_t len)
{
    return entries_matching(dir, prefix, "", names, len);
}

int leftovers(const char *dom, char *names, size_t len)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", dom);
    int n = entries(shm_dir(), prefix, names, len);
    return n < 0 ? 0 : n;
}

void remove_leftovers(const char *dom)
{
    char prefix[64], path[512];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", dom);
    DIR *dp = opendir(shm_dir());
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(path, sizeof path, "%s/%s", shm_dir(), de->d_name);
            unlink(path);
        }
    closedir(dp);
}

void rundir_of(const ps_env *e, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shmbus.%s", e->tmpdir, e->dom);
}

void note(char *buf, size_t len, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n && n + 2 < len) {
        strcpy(buf + n, "; ");
        n += 2;
    }
    if (n + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - n, fmt, ap);
    va_end(ap);
}

void require_root(const char *why)
{
    if (geteuid() != 0) {
        print_message("    skipped: needs root to %s (running as uid %d)\n", why, (int)geteuid());
        skip();
    }
}

int iso_wait_or_skip(pid_t pid, const char *skip_reason)
{
    int rc = proc_wait(pid, PS_CHILD_MS);
    if (rc == CHILD_SKIP) {
        print_message("    skipped: %s\n", skip_reason);
        skip();
    }
    return rc;
}

void iso_mount_private_tmpfs(const char *dir, const char *options)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, options) != 0) {
        fprintf(stderr, "child: cannot mount a private tmpfs: %s\n", strerror(errno));
        _exit(CHILD_SKIP);
    }
}

int iso_open_with(const ps_env *e, const char *config, const char *runtime_dir,
                  const char *shmdir, shmbus_domain **out)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = config;
    o.runtime_dir = runtime_dir;
    o.shm_dir = shmdir;
    *out = NULL;
    return shmbus_domain_open(e->dom, &o, out);
}

void iso_become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
    if (setgroups(ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        fprintf(stderr, "child %d: cannot become uid %d gid %d: %s\n", (int)getpid(), (int)uid,
                (int)gid, strerror(errno));
        _exit(CHILD_SKIP);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    PS_CHECK(geteuid() == uid && getegid() == gid, "still uid %d gid %d", (int)geteuid(),
             (int)getegid());
}

/* In a child: close every channel but chans[mine], and keep the child's ends of that one. */
static void child_chans(ps_chan *chans, unsigned n, unsigned mine)
{
    for (unsigned i = 0; i < n; i++)
        if (i == mine)
            ps_chan_child(&chans[i]);
        else
            ps_chan_close(&chans[i]);
}

void iso_fork_children(const ps_env *e, ps_chan *ch, pid_t *pid, unsigned n,
                       const iso_child_fn *run, void *arg)
{
    for (unsigned i = 0; i < n; i++)
        ps_chan_make(&ch[i]);
    for (unsigned i = 0; i < n; i++) {
        if ((pid[i] = proc_fork()) == 0) {
            child_chans(ch, n, i);
            _exit(run[i](e, &ch[i], arg));
        }
    }
    for (unsigned i = 0; i < n; i++)
        ps_chan_parent(&ch[i]);
}

void child_hear(ps_chan *c, char token)
{
    PS_CHECK(proc_hear(c->down[0], token, PS_SAFETY_MS) == 0, "no '%c' from the test process",
             token);
}

void child_tell(ps_chan *c, char token)
{
    PS_CHECK(proc_tell(c->up[1], token) == 0, "cannot tell the test process '%c'", token);
}
