/* shmbus-bench latency and camera: what a run measured, looked up and printed (the losses
 * and the JSON array); the tables are each subcommand's own. See bench_fanout_defs.h. */
#include <stdio.h>

#include "bench_fanout_defs.h"
#include "jsonw.h"

bool fo_run_measured(const fo_run *r)
{
    bool any = false;
    for (int g = 0; g < FO_MAX_GROUPS; g++)
        any |= r->done[g] > 0;
    return any;
}

const fo_result *fo_find(const fo_run *r, int t, int g, int i)
{
    return i < r->done[g] && r->res[g][i][t].ran ? &r->res[g][i][t] : NULL;
}

uint64_t fo_lost(const fo_result *x)
{
    return x->missing + x->expired + x->dropped + x->other + x->stalls;
}

bool fo_print_losses(const fo_run *r, const char *heading, int width, fo_step_name name)
{
    bool any = false;
    for (int g = 0; g < FO_MAX_GROUPS; g++)
        for (int i = 0; i < r->done[g] * FO_NTRANSPORTS; i++) {
            const fo_result *x = &r->res[g][i / FO_NTRANSPORTS][i % FO_NTRANSPORTS];
            if (!x->ran || fo_lost(x) == 0)
                continue;
            char what[32];
            name(x, i / FO_NTRANSPORTS, what, sizeof what);
            if (!any)
                fputs(heading, stdout);
            any = true;
            printf("  %-13s %*s %d sub%s: missing %llu (expired %llu, dropped %llu, other %llu),"
                   " unacknowledged %llu\n", fo_transport_names[x->transport], width, what,
                   x->nsubs, x->nsubs > 1 ? "s" : " ", (unsigned long long)x->missing,
                   (unsigned long long)x->expired, (unsigned long long)x->dropped,
                   (unsigned long long)x->other, (unsigned long long)x->stalls);
        }
    return any;
}

static void json_row(jsonw *w, const fo_result *x, int step, char key[4][48],
                     void (*object)(jsonw *w, const fo_result *x, int step))
{
    jsonw_object(w, NULL);
    jsonw_str(w, "transport", fo_transport_names[x->transport]);
    jsonw_u64(w, "size", x->size);
    jsonw_i64(w, "subscribers", x->nsubs);
    object(w, x, step);
    jsonw_double(w, key[0], x->pub_cpu_ns / 1e3);
    jsonw_double(w, key[1], x->sub_cpu_ns / 1e3);
    jsonw_double(w, key[2], x->pub_faults);
    jsonw_double(w, key[3], x->sub_faults);
    jsonw_u64(w, "expired", x->expired);
    jsonw_u64(w, "dropped", x->dropped);
    jsonw_u64(w, "other_lost", x->other);
    jsonw_u64(w, "missing", x->missing);
    jsonw_u64(w, "unacknowledged", x->stalls);
    jsonw_end_object(w);
}

void fo_print_json(const fo_run *r, const char *unit,
                   void (*object)(jsonw *w, const fo_result *x, int step))
{
    jsonw w;
    jsonw_init(&w, stdout, true);
    jsonw_array(&w, NULL);
    char key[4][48];
    snprintf(key[0], sizeof key[0], "pub_cpu_us_per_%s", unit);
    snprintf(key[1], sizeof key[1], "sub_cpu_us_per_%s", unit);
    snprintf(key[2], sizeof key[2], "pub_faults_per_%s", unit);
    snprintf(key[3], sizeof key[3], "sub_faults_per_%s", unit);
    for (int g = 0; g < FO_MAX_GROUPS; g++)
        for (int i = 0; i < r->done[g] * FO_NTRANSPORTS; i++) {
            const fo_result *x = &r->res[g][i / FO_NTRANSPORTS][i % FO_NTRANSPORTS];
            if (x->ran)
                json_row(&w, x, i / FO_NTRANSPORTS, key, object);
        }
    jsonw_end_array(&w);
    jsonw_finish(&w);
}
