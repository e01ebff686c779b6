/* shmbus-monitor: the model behind the screen and the one-shot outputs: the observer
 * connection, the last two snapshots, per-topic rates and the rate history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

const char *mon_sort_name(mon_sort s)
{
    switch (s) {
    case MON_SORT_RATE:
        return "rate";
    case MON_SORT_BW:
        return "bw";
    default:
        return "name";
    }
}

static void drop_snapshots(mon_model *m)
{
    shmbus_snapshot_free(m->prev);
    shmbus_snapshot_free(m->cur);
    m->prev = m->cur = NULL;
    free(m->rows);
    m->rows = NULL;
    m->nrows = 0;
}

static void disconnect(mon_model *m)
{
    drop_snapshots(m);
    if (m->d)
        shmbus_domain_close(m->d);
    m->d = NULL;
}

/* Keep the history of the topics cur has (in cur's order), add one sample each. */
static int push_history(mon_model *m)
{
    unsigned n = m->cur->ntopics;
    mon_hist *h = calloc(n ? n : 1, sizeof *h);
    if (!h)
        return SHMBUS_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        const char *name = m->cur->topics[i].def.name;
        for (unsigned k = 0; k < m->nhist; k++)
            if (strcmp(m->hist[k].name, name) == 0) {
                h[i] = m->hist[k];
                break;
            }
        snprintf(h[i].name, sizeof h[i].name, "%s", name);
        if (!m->prev)
            continue; /* no rate yet: first snapshot */
        if (h[i].n == MON_HISTORY) {
            memmove(h[i].v, h[i].v + 1, (MON_HISTORY - 1) * sizeof h[i].v[0]);
            h[i].n--;
        }
        h[i].v[h[i].n++] = m->rows[i].r.rate_hz;
    }
    free(m->hist);
    m->hist = h;
    m->nhist = n;
    for (unsigned i = 0; i < n; i++)
        m->rows[i].hist = &m->hist[i];
    return 0;
}

static int compute_rows(mon_model *m)
{
    free(m->rows);
    m->nrows = 0;
    m->rows = calloc(m->cur->ntopics ? m->cur->ntopics : 1, sizeof *m->rows);
    if (!m->rows)
        return SHMBUS_ENOMEM;
    for (unsigned i = 0; i < m->cur->ntopics; i++) {
        mon_row *r = &m->rows[m->nrows++];
        r->t = &m->cur->topics[i];
        sd_topic_rates(m->prev, m->cur, r->t, &r->r);
    }
    int rc = push_history(m);
    if (rc == 0)
        mon_model_sort(m);
    return rc;
}

/* Open the domain as an observer if it is not open. */
static int connect(mon_model *m)
{
    if (m->d)
        return 0;
    int rc = tool_observe(m->domain, &m->d);
    if (rc == SHMBUS_ENOENT)
        snprintf(m->status, sizeof m->status, "no domain \"%s\" is running: waiting for it",
                 m->domain);
    else if (rc)
        snprintf(m->status, sizeof m->status, "domain \"%s\": %s (%s)", m->domain,
                 shmbus_strerror(rc), shmbus_last_error());
    if (rc)
        m->d = NULL;
    return rc;
}

int mon_model_refresh(mon_model *m)
{
    m->status[0] = 0;
    int rc = connect(m);
    if (rc) {
        drop_snapshots(m);
        return rc;
    }
    shmbus_snapshot *s;
    rc = shmbus_snapshot_take(m->d, &s);
    if (rc) {
        snprintf(m->status, sizeof m->status, "snapshot of \"%s\": %s (%s)", m->domain,
                 shmbus_strerror(rc), shmbus_last_error());
        disconnect(m);
        return rc;
    }
    if (s->alive == 0 && m->cur) {
        /* Every process is gone: the files may be removed and a new instance started.
         * Look again with a fresh observer; keep showing what is left if that is all. */
        shmbus_domain *fresh;
        int r = tool_observe(m->domain, &fresh);
        if (r == SHMBUS_ENOENT) {
            shmbus_snapshot_free(s);
            disconnect(m);
            snprintf(m->status, sizeof m->status,
                     "domain \"%s\" ended: waiting for it to start again", m->domain);
            return SHMBUS_ENOENT;
        }
        if (r == 0) {
            shmbus_snapshot *s2 = NULL;
            if (shmbus_snapshot_take(fresh, &s2) == 0 && s2->alive > 0) {
                /* a new instance: start over with it */
                shmbus_snapshot_free(s);
                disconnect(m);
                m->d = fresh;
                s = s2;
            } else {
                if (s2)
                    shmbus_snapshot_free(s2);
                shmbus_domain_close(fresh);
            }
        }
    }
    shmbus_snapshot_free(m->prev);
    m->prev = m->cur;
    m->cur = s;
    if (s->alive == 0)
        snprintf(m->status, sizeof m->status,
                 "no live process in \"%s\": left behind by processes that died "
                 "('shmbus clean %s' removes it)", m->domain, m->domain);
    rc = compute_rows(m);
    if (rc)
        snprintf(m->status, sizeof m->status, "out of memory");
    return rc;
}

static int cmp_name(const mon_row *a, const mon_row *b)
{
    return strcmp(a->t->def.name, b->t->def.name);
}

static int cmp_rate(const void *x, const void *y)
{
    const mon_row *a = x, *b = y;
    if (a->r.rate_hz != b->r.rate_hz)
        return a->r.rate_hz < b->r.rate_hz ? 1 : -1;
    return cmp_name(a, b);
}

static int cmp_bw(const void *x, const void *y)
{
    const mon_row *a = x, *b = y;
    if (a->r.bandwidth_bps != b->r.bandwidth_bps)
        return a->r.bandwidth_bps < b->r.bandwidth_bps ? 1 : -1;
    return cmp_name(a, b);
}

static int cmp_by_name(const void *x, const void *y) { return cmp_name(x, y); }

void mon_model_sort(mon_model *m)
{
    int (*cmp)(const void *, const void *) = m->sort == MON_SORT_RATE ? cmp_rate
                                             : m->sort == MON_SORT_BW ? cmp_bw
                                                                      : cmp_by_name;
    if (m->nrows > 1)
        qsort(m->rows, m->nrows, sizeof m->rows[0], cmp);
}

void mon_model_free(mon_model *m)
{
    disconnect(m);
    free(m->hist);
    m->hist = NULL;
    m->nhist = 0;
}
