/* shmbus-bench latency and camera, the command's side: it runs the groups, each in a forked
 * leader (bench_fanout_leader.c), and holds what they measured. The processes and their
 * protocol: bench_fanout_defs.h and bench_fanout_proto.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_fanout_proto.h"
#include "shmbus.h"

/* ---- the command's side ------------------------------------------------------------------ */

int fo_run_group(const fo_group *g, fo_result (*out)[FO_NTRANSPORTS], int *done)
{
    *done = 0;
    if (g->nsubs < 1 || g->nsubs > FO_MAX_SUBS)
        return bench_error("subscriber count", SHMBUS_EINVAL);
    int up[2];
    if (pipe(up) != 0)
        return bench_error("pipe", SHMBUS_ESYS);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(up[0]);
        close(up[1]);
        return bench_error("fork", SHMBUS_ESYS);
    }
    if (pid == 0) {
        close(up[0]);
        fo_leader_main(g, up[1]);
    }
    close(up[1]);
    int status = SHMBUS_ECLOSED;
    struct up_msg m;
    for (;;) {
        int rc = bench_read_all(up[0], &m, sizeof m, true);
        if (rc == SHMBUS_EINTR) {
            /* Stopped by a signal, which reached this process only: pass it on to the
             * publisher (it stops its subscribers and closes its domain), wait for it. */
            kill(pid, SIGTERM);
            char drain[256];
            ssize_t n;
            while ((n = read(up[0], drain, sizeof drain)) > 0 || (n < 0 && errno == EINTR))
                ;
            status = SHMBUS_EINTR;
            break;
        }
        if (rc)
            break;
        if (m.kind == UP_END) {
            status = m.status;
            break;
        }
        if (*done < g->nsteps) {
            memcpy(out[*done], m.r, sizeof m.r);
            (*done)++;
        }
        if (g->progress)
            fprintf(stderr, "\r\033[K%s: %d/%d done", g->label, *done, g->nsteps);
    }
    close(up[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (g->progress)
        fprintf(stderr, "\r\033[K");
    if (WIFSIGNALED(ws)) {
        fprintf(stderr, "shmbus-bench: %s: publisher killed by signal %d\n", g->label,
                WTERMSIG(ws));
        status = status ? status : SHMBUS_ESYS;
    }
    /* The last participant out removes a domain: nothing may be left behind. */
    char names[64][32];
    int n = shmbus_domain_list(NULL, names, 64);
    for (int shm = 0; shm < 2; shm++) {
        char name[32];
        fo_domain_name(g->env, g->index, shm, name, sizeof name);
        for (int i = 0; i < n && i < 64; i++)
            if (strcmp(names[i], name) == 0) {
                fprintf(stderr, "shmbus-bench: %s: domain %s left segments in shared memory "
                                "after every process closed it; removing them\n", g->label,
                        name);
                int rc = shmbus_domain_remove(name, NULL);
                if (rc)
                    bench_error("shmbus_domain_remove", rc);
                status = status ? status : SHMBUS_EBUSY;
            }
    }
    if (status == SHMBUS_EINTR || tool_stop_requested()) {
        fprintf(stderr, "shmbus-bench: interrupted\n");
        return 1;
    }
    if (status) {
        fprintf(stderr, "shmbus-bench: %s: failed (%s)\n", g->label, shmbus_errname(status));
        return 1;
    }
    return 0;
}

int fo_run_all(fo_run *r, const char *what, const fo_step *steps, int nsteps,
               const int *subcounts, const unsigned *masks, int ngroups)
{
    memset(r, 0, sizeof *r);
    if (nsteps < 1 || nsteps > FO_MAX_STEPS || ngroups < 1 || ngroups > FO_MAX_GROUPS)
        return bench_error("steps or subscriber counts", SHMBUS_EINVAL);
    fo_env env;
    unsigned mask = 0;
    for (int g = 0; g < ngroups; g++)
        mask |= masks[g];
    int status = fo_env_create(&env, steps, nsteps, subcounts[ngroups - 1], mask);
    for (int g = 0; g < ngroups && status == 0; g++) {
        char label[64];
        snprintf(label, sizeof label, "%s: %d subscriber%s", what, subcounts[g],
                 subcounts[g] > 1 ? "s" : "");
        fo_group grp = {.env = &env, .nsubs = subcounts[g], .index = g,
                        .transports = masks[g], .steps = steps, .nsteps = nsteps,
                        .progress = isatty(STDERR_FILENO), .label = label};
        status = fo_run_group(&grp, r->res[g], &r->done[g]);
    }
    fo_env_destroy(&env);
    return status;
}
