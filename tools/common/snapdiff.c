/* Rates from two snapshots of a domain (see snapdiff.h). */
#include "snapdiff.h"

#include <stdlib.h>
#include <string.h>

double sd_interval_s(const shmbus_snapshot *prev, const shmbus_snapshot *cur)
{
    if (!prev || !cur || cur->taken_ns <= prev->taken_ns)
        return 0;
    return (double)(cur->taken_ns - prev->taken_ns) / 1e9;
}

const shmbus_topic_info *sd_find_topic(const shmbus_snapshot *s, const char *name)
{
    if (!s)
        return NULL;
    for (unsigned i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].def.name, name) == 0)
            return &s->topics[i];
    return NULL;
}

static const shmbus_participant_info *sd_find_slot(const shmbus_snapshot *s, unsigned slot)
{
    for (unsigned i = 0; i < s->nparticipants; i++)
        if (s->participants[i].slot == slot)
            return &s->participants[i];
    return NULL;
}

static const shmbus_sub_info *find_sub(const shmbus_topic_info *t, uint64_t id)
{
    for (unsigned i = 0; t && i < t->nsubs; i++)
        if (t->subs[i].id == id)
            return &t->subs[i];
    return NULL;
}

static const shmbus_pub_info *find_pub(const shmbus_topic_info *t, uint64_t id)
{
    for (unsigned i = 0; t && i < t->npubs; i++)
        if (t->pubs[i].id == id)
            return &t->pubs[i];
    return NULL;
}

/* Counters only grow; a smaller value would mean a reused id, counted from zero. */
static uint64_t delta(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

/* Subscriber s's counters since prev: message, byte and loss counts, histogram. */
static void sub_delta(const shmbus_topic_info *pt, const shmbus_sub_info *s, uint64_t *msgs,
                      uint64_t *bytes, uint64_t *lost, uint64_t hist[SHMBUS_LAT_BUCKETS])
{
    const shmbus_sub_info *p = find_sub(pt, s->id);
    shmbus_sub_info zero;
    if (!p) {
        memset(&zero, 0, sizeof zero);
        p = &zero;
    }
    *msgs += delta(s->received, p->received);
    *bytes += delta(s->bytes, p->bytes);
    *lost += delta(s->expired, p->expired) + delta(s->dropped, p->dropped) +
             delta(s->overflow, p->overflow);
    bool reset = s->received < p->received;
    for (unsigned b = 0; b < SHMBUS_LAT_BUCKETS; b++)
        hist[b] += reset ? s->latency[b] : delta(s->latency[b], p->latency[b]);
}

static void finish_latency(const uint64_t hist[SHMBUS_LAT_BUCKETS], sd_rates *out)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < SHMBUS_LAT_BUCKETS; b++)
        n += hist[b];
    out->has_latency = n > 0;
    if (n) {
        out->p50_ns = shmbus_latency_percentile_ns(hist, 50);
        out->p99_ns = shmbus_latency_percentile_ns(hist, 99);
    }
}

void sd_topic_rates(const shmbus_snapshot *prev, const shmbus_snapshot *cur,
                    const shmbus_topic_info *t, sd_rates *out)
{
    memset(out, 0, sizeof *out);
    const shmbus_topic_info *pt = sd_find_topic(prev, t->def.name);
    double dt = sd_interval_s(prev, cur);
    uint64_t hist[SHMBUS_LAT_BUCKETS] = {0};
    uint64_t rmsgs = 0, rbytes = 0;
    for (unsigned i = 0; i < t->nsubs; i++)
        sub_delta(pt, &t->subs[i], &rmsgs, &rbytes, &out->lost, hist);
    out->received = rmsgs;
    finish_latency(hist, out);
    if (dt <= 0)
        return;
    uint64_t pmsgs = 0, pbytes = 0;
    for (unsigned i = 0; i < t->npubs; i++) {
        const shmbus_pub_info *p = find_pub(pt, t->pubs[i].id);
        pmsgs += delta(t->pubs[i].published, p ? p->published : 0);
        pbytes += delta(t->pubs[i].bytes, p ? p->bytes : 0);
    }
    if (t->npubs == 0 && t->nsubs > 0) {
        /* publishers gone: what the subscribers got, per subscriber */
        pmsgs = rmsgs / t->nsubs;
        pbytes = rbytes / t->nsubs;
    }
    out->rate_hz = (double)pmsgs / dt;
    out->bandwidth_bps = (double)pbytes / dt;
}

void sd_sub_rates(const shmbus_snapshot *prev, const shmbus_snapshot *cur,
                  const shmbus_topic_info *t, const shmbus_sub_info *s, sd_rates *out)
{
    memset(out, 0, sizeof *out);
    uint64_t hist[SHMBUS_LAT_BUCKETS] = {0};
    uint64_t msgs = 0, bytes = 0;
    sub_delta(sd_find_topic(prev, t->def.name), s, &msgs, &bytes, &out->lost, hist);
    out->received = msgs;
    finish_latency(hist, out);
    double dt = sd_interval_s(prev, cur);
    if (dt > 0) {
        out->rate_hz = (double)msgs / dt;
        out->bandwidth_bps = (double)bytes / dt;
    }
}

void sd_pub_rates(const shmbus_snapshot *prev, const shmbus_snapshot *cur,
                  const shmbus_topic_info *t, const shmbus_pub_info *p, sd_rates *out)
{
    memset(out, 0, sizeof *out);
    double dt = sd_interval_s(prev, cur);
    if (dt <= 0)
        return;
    const shmbus_pub_info *q = find_pub(sd_find_topic(prev, t->def.name), p->id);
    out->rate_hz = (double)delta(p->published, q ? q->published : 0) / dt;
    out->bandwidth_bps = (double)delta(p->bytes, q ? q->bytes : 0) / dt;
}

static int by_blocks(const void *a, const void *b)
{
    const sd_holder *x = a, *y = b;
    if (x->blocks != y->blocks)
        return x->blocks < y->blocks ? 1 : -1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

unsigned sd_pool_holders(const shmbus_snapshot *s, const shmbus_pool_info *p, sd_holder *out,
                         unsigned max)
{
    sd_holder all[64];
    unsigned n = 0;
    for (unsigned k = 0; k < p->nheld; k++) {
        const shmbus_block_state *b = &p->held[k];
        for (unsigned slot = 0; slot < 64; slot++) {
            if (!(b->holders & (1ull << slot)))
                continue;
            unsigned i = 0;
            while (i < n && all[i].slot != slot)
                i++;
            if (i == n) {
                memset(&all[n], 0, sizeof all[n]);
                all[n].slot = slot;
                const shmbus_participant_info *pi = sd_find_slot(s, slot);
                if (pi) {
                    all[n].pid = pi->pid;
                    all[n].alive = pi->alive;
                    memcpy(all[n].name, pi->name, sizeof all[n].name);
                    all[n].name[sizeof all[n].name - 1] = 0;
                }
                n++;
            }
            all[i].blocks++;
            if (b->age_ns > all[i].oldest_ns)
                all[i].oldest_ns = b->age_ns;
        }
    }
    qsort(all, n, sizeof all[0], by_blocks);
    for (unsigned i = 0; i < n && i < max; i++)
        out[i] = all[i];
    return n;
}
