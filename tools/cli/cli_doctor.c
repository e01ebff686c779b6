/* shmbus doctor: preflight checks of the host, one line per finding, each problem with a
 * one-line fix. Reads only; changes nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cli.h"

static const char doctor_usage[] =
    "usage: shmbus doctor [--domain NAME] [--config FILE]\n"
    "\n"
    "Check the host before running a domain: free space in the shm directory against what\n"
    "the configuration needs, systemd-logind's RemoveIPC, the open-file limit, segments\n"
    "left behind by domains whose processes died, the runtime directory, and\n"
    "net.core.rmem_max (large frames over shmbus-bridge). One line per\n"
    "finding; each problem comes with a one-line fix. Exit code 0: all ok, 1: a problem.\n"
    "\n" CLI_COMMON_HELP;

static const struct option doctor_opts[] = {CLI_COMMON_LONGOPTS, {0}};

typedef struct doctor {
    unsigned problems;
    const char *shm_dir;
    char domain[TOOL_NAME_MAX];
    shmbus_config_summary cfg;
} doctor;

static void finding(doctor *dr, bool ok, const char *what, const char *fix, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

static void finding(doctor *dr, bool ok, const char *what, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-8s %-13s ", ok ? "ok" : "PROBLEM", what);
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok) {
        printf("; fix: %s", fix);
        dr->problems++;
    }
    printf("\n");
}

/* Bytes the files "shmbus.<domain>.*" occupy in the shm directory; *files counts them. */
static uint64_t domain_files(const doctor *dr, const char *domain, unsigned *files)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "shmbus.%s.", domain);
    *files = 0;
    uint64_t bytes = 0;
    DIR *dir = opendir(dr->shm_dir);
    if (!dir)
        return 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            bytes += (uint64_t)st.st_blocks * 512;
        (*files)++;
    }
    closedir(dir);
    return bytes;
}

static bool domain_exists(const doctor *dr, const char *name)
{
    char names[64][32];
    int n = shmbus_domain_list(dr->shm_dir, names, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void check_shm(doctor *dr)
{
    char a[32], b[32];
    struct statvfs vs;
    if (statvfs(dr->shm_dir, &vs) != 0) {
        finding(dr, false, "shm", "mount a tmpfs there, or set SHMBUS_SHM_DIR",
                "%s: %s", dr->shm_dir, strerror(errno));
        return;
    }
    if (access(dr->shm_dir, W_OK | X_OK) != 0) {
        finding(dr, false, "shm", "run as a user that may write there, or set SHMBUS_SHM_DIR",
                "%s is not writable for uid %d", dr->shm_dir, (int)geteuid());
        return;
    }
    struct statfs fs;
    if (statfs(dr->shm_dir, &fs) == 0 && fs.f_type != 0x01021994 /* TMPFS_MAGIC */)
        finding(dr, false, "shm", "use a tmpfs (mount -t tmpfs tmpfs DIR) or SHMBUS_SHM_DIR",
                "%s is not a tmpfs: blocks would be written back to a disk", dr->shm_dir);
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
    uint64_t need = dr->cfg.total_bytes;
    if (domain_exists(dr, dr->domain)) {
        unsigned files;
        uint64_t have = domain_files(dr, dr->domain, &files);
        finding(dr, true, "shm space", "", "domain \"%s\" exists, its %u segments hold %s; %s free",
                dr->domain, files, tool_fmt_size(a, sizeof a, have),
                tool_fmt_size(b, sizeof b, avail));
        return;
    }
    uint64_t used = (uint64_t)(vs.f_blocks - vs.f_bfree) * vs.f_frsize;
    char fix[192];
    snprintf(fix, sizeof fix, "free space in %s or grow it: mount -o remount,size=%lluM %s",
             dr->shm_dir, (unsigned long long)((used + need) >> 20) + 64, dr->shm_dir);
    finding(dr, avail >= need, "shm space", fix, "%s has %s free; domain \"%s\" needs %s",
            dr->shm_dir, tool_fmt_size(a, sizeof a, avail), dr->domain,
            tool_fmt_size(b, sizeof b, need));
}

/* ---- systemd-logind RemoveIPC ---------------------------------------------------------- */

/* Apply the RemoveIPC= lines of one logind.conf file (section [Login]) to *value. */
static void read_logind(const char *path, int *value, char *where, size_t wlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    bool login = false;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        char *end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = 0;
        if (*p == '#' || *p == ';' || !*p)
            continue;
        if (*p == '[') {
            login = strcmp(p, "[Login]") == 0;
            continue;
        }
        if (!login || strncmp(p, "RemoveIPC", 9) != 0)
            continue;
        p += 9;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != '=')
            continue;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!strcasecmp(p, "yes") || !strcasecmp(p, "true") || !strcmp(p, "1") ||
            !strcasecmp(p, "on"))
            *value = 1;
        else if (!strcasecmp(p, "no") || !strcasecmp(p, "false") || !strcmp(p, "0") ||
                 !strcasecmp(p, "off"))
            *value = 0;
        else
            continue;
        snprintf(where, wlen, "%s", path);
    }
    fclose(f);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int conf_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 5 && strcmp(e->d_name + n - 5, ".conf") == 0;
}

/* Highest uid of a system user: SYS_UID_MAX of /etc/login.defs, default 999. */
static long sys_uid_max(void)
{
    long max = 999;
    FILE *f = fopen("/etc/login.defs", "r");
    if (!f)
        return max;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long v;
        if (sscanf(line, " SYS_UID_MAX %ld", &v) == 1)
            max = v;
    }
    fclose(f);
    return max;
}

static void check_removeipc(doctor *dr)
{
    /* SHMBUS_SYSTEMD_DIR: another /etc/systemd, for tests (docs/cli.md) */
    const char *base = getenv("SHMBUS_SYSTEMD_DIR");
    if (!base || !*base)
        base = "/etc/systemd";
    char path[4096], where[4096] = "";
    int value = 1; /* systemd's default: yes */
    snprintf(path, sizeof path, "%s/logind.conf", base);
    bool have_conf = access(path, F_OK) == 0;
    read_logind(path, &value, where, sizeof where);
    snprintf(path, sizeof path, "%s/logind.conf.d", base);
    struct dirent **list;
    int n = scandir(path, &list, conf_file, by_name);
    for (int i = 0; i < n; i++) {
        char file[8192];
        snprintf(file, sizeof file, "%s/%s", path, list[i]->d_name);
        read_logind(file, &value, where, sizeof where);
        free(list[i]);
    }
    if (n > 0)
        free(list);
    if (!have_conf && n <= 0 && access("/run/systemd/system", F_OK) != 0) {
        finding(dr, true, "RemoveIPC", "", "no systemd-logind configuration: nothing removes "
                                           "shared memory at logout");
        return;
    }
    const char *src = where[0] ? where : "systemd's default";
    uid_t uid = geteuid();
    long max = sys_uid_max();
    if (!value) {
        finding(dr, true, "RemoveIPC", "", "RemoveIPC=no (%s)", src);
    } else if ((long)uid <= max) {
        finding(dr, true, "RemoveIPC", "", "RemoveIPC=yes (%s), but uid %d is a system user "
                "(<= %ld), which it spares", src, (int)uid, max);
    } else {
        finding(dr, false, "RemoveIPC",
                "put \"[Login]\\nRemoveIPC=no\" in /etc/systemd/logind.conf.d/shmbus.conf and "
                "restart systemd-logind, or run the domain as a system user",
                "RemoveIPC=yes (%s): logind deletes the shared memory of uid %d when its last "
                "session ends", src, (int)uid);
    }
}

/* ---- limits, leftovers, runtime directory ---------------------------------------------- */

#define NOFILE_WANTED 1024 /* ctl, registry, pools, nng sockets and pipes of a busy process */

static void check_nofile(doctor *dr)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        finding(dr, false, "open files", "check the process limits", "getrlimit: %s",
                strerror(errno));
        return;
    }
    char hard[32];
    if (rl.rlim_max == RLIM_INFINITY)
        snprintf(hard, sizeof hard, "unlimited");
    else
        snprintf(hard, sizeof hard, "%llu", (unsigned long long)rl.rlim_max);
    char fix[160];
    snprintf(fix, sizeof fix, "raise it: ulimit -n %d (shell) or LimitNOFILE=%d (systemd unit)",
             4 * NOFILE_WANTED, 4 * NOFILE_WANTED);
    finding(dr, rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= NOFILE_WANTED, "open files", fix,
            "RLIMIT_NOFILE soft %llu, hard %s (want >= %d)", (unsigned long long)rl.rlim_cur,
            hard, NOFILE_WANTED);
}

static void check_leftovers(doctor *dr)
{
    char names[64][32], a[32];
    int n = shmbus_domain_list(dr->shm_dir, names, 64);
    if (n < 0) {
        finding(dr, false, "leftovers", "check the shm directory", "cannot list %s: %s",
                dr->shm_dir, shmbus_strerror(n));
        return;
    }
    if (n == 0)
        finding(dr, true, "leftovers", "", "no domain in %s", dr->shm_dir);
    for (int i = 0; i < n && i < 64; i++) {
        char fix[96];
        snprintf(fix, sizeof fix, "shmbus clean %.31s", names[i]);
        unsigned files;
        uint64_t bytes = domain_files(dr, names[i], &files);
        shmbus_domain *d;
        int rc = tool_observe(names[i], &d);
        if (rc) {
            char detail[256];
            snprintf(detail, sizeof detail, "%s", shmbus_last_error());
            finding(dr, false, "leftovers", rc == SHMBUS_EACCES ? "run as its owner" : fix,
                    "domain \"%s\" (%u files, %s) cannot be read: %s%s%s%s", names[i], files,
                    tool_fmt_size(a, sizeof a, bytes), shmbus_strerror(rc),
                    detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
            continue;
        }
        shmbus_snapshot *s;
        rc = shmbus_snapshot_take(d, &s);
        if (rc == 0) {
            if (s->alive)
                finding(dr, true, "leftovers", "", "domain \"%s\" is running (%u live "
                        "processes, %s)", names[i], s->alive, tool_fmt_size(a, sizeof a, bytes));
            else
                finding(dr, false, "leftovers", fix, "domain \"%s\": %u files (%s) left by "
                        "processes that died", names[i], files, tool_fmt_size(a, sizeof a, bytes));
            shmbus_snapshot_free(s);
        } else {
            finding(dr, false, "leftovers", fix, "domain \"%s\": snapshot failed: %s",
                    names[i], shmbus_strerror(rc));
        }
        shmbus_domain_close(d);
    }
}

/* shmbus-bridge over DDS: a best-effort reader loses any frame larger than its UDP socket
 * receive buffer, which net.core.rmem_max caps (the kernel gives twice the value). 16 MiB
 * holds a 4K rgb24 frame (24.9 MB). SHMBUS_SYSCTL_DIR replaces /proc/sys (the tests). */
#define RMEM_WANTED (16u << 20)

static void check_rmem(doctor *dr)
{
    const char *base = getenv("SHMBUS_SYSCTL_DIR");
    char path[300];
    snprintf(path, sizeof path, "%s/net/core/rmem_max", base && *base ? base : "/proc/sys");
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    bool ok = f && fscanf(f, "%llu", &v) == 1;
    if (f) fclose(f);
    if (!ok) {
        finding(dr, true, "rmem_max", "", "%s cannot be read (only matters for shmbus-bridge)",
                path);
        return;
    }
    char fix[160];
    snprintf(fix, sizeof fix, "sysctl -w net.core.rmem_max=%u (and in /etc/sysctl.d/ to keep it)",
             2 * RMEM_WANTED);
    finding(dr, v >= RMEM_WANTED, "rmem_max", fix,
            "net.core.rmem_max %llu (want >= %u: shmbus-bridge's best-effort DDS readers lose "
            "frames larger than twice it, e.g. 4K rgb24)", v, RMEM_WANTED);
}

static void check_rundir(doctor *dr)
{
    const char *env = getenv("SHMBUS_RUNTIME_DIR");
    const char *base = dr->cfg.runtime_dir[0] ? dr->cfg.runtime_dir
                       : env && *env          ? env
                                              : "/tmp";
    const char *src = dr->cfg.runtime_dir[0] ? "config" : env && *env ? "$SHMBUS_RUNTIME_DIR"
                                                                      : "default";
    struct stat st;
    errno = 0;
    if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) {
        finding(dr, false, "runtime dir", "create it (mkdir -p) or set SHMBUS_RUNTIME_DIR",
                "%s (%s) is not a directory%s%s", base, src, errno ? ": " : "",
                errno ? strerror(errno) : "");
        return;
    }
    if (access(base, W_OK | X_OK) != 0) {
        finding(dr, false, "runtime dir", "chmod it, or set SHMBUS_RUNTIME_DIR to a writable "
                "directory", "%s (%s) is not writable for uid %d", base, src, (int)geteuid());
        return;
    }
    /* endpoints: <base>/shmbus.<domain>/p<20 digits>.ipc must fit sun_path (108) */
    size_t len = strlen(base) + strlen("/shmbus.") + strlen(dr->domain) + 26;
    finding(dr, len < 108, "runtime dir", "use a shorter SHMBUS_RUNTIME_DIR",
            "%s (%s) is writable%s", base, src,
            len < 108 ? "" : ", but too long for ipc socket paths");
}

int cli_doctor(int argc, char **argv)
{
    cli_common c = {.prog = "shmbus doctor"};
    int ec;
    if (!cli_parse(&c, argc, argv, "h", doctor_opts, doctor_usage, NULL, NULL, &ec))
        return ec;
    if (optind < argc)
        return cli_usage_error(&c, "unexpected argument \"%s\"", argv[optind]);
    doctor dr = {0};
    if ((ec = cli_domain_name(&c, dr.domain, &dr.cfg)) != CLI_OK)
        return ec;
    const char *env = getenv("SHMBUS_SHM_DIR");
    dr.shm_dir = env && *env ? env : "/dev/shm";
    check_shm(&dr);
    check_removeipc(&dr);
    check_nofile(&dr);
    check_leftovers(&dr);
    check_rundir(&dr);
    check_rmem(&dr);
    if (dr.problems)
        printf("%u problem(s) found\n", dr.problems);
    else
        printf("all checks passed\n");
    return dr.problems ? CLI_ERROR : CLI_OK;
}
