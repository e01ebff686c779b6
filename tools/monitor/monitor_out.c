/* shmbus-monitor: the one-shot outputs, --once (plain text) and --json (docs/monitor.md
 * documents the schema). Both show model.cur with rates against model.prev. */
#include <inttypes.h>
#include <stdio.h>

#include "jsonw.h"
#include "monitor.h"

/* ---- --json ------------------------------------------------------------------------------ */

static void json_latency(jsonw *w, const char *key, bool has, uint64_t ns)
{
    if (has)
        jsonw_double(w, key, (double)ns / 1e3);
    else
        jsonw_null(w, key);
}

static void json_rates(jsonw *w, const sd_rates *r)
{
    jsonw_double(w, "rate_hz", r->rate_hz);
    jsonw_double(w, "bandwidth_bps", r->bandwidth_bps);
}

static void json_latencies(jsonw *w, const sd_rates *r)
{
    json_latency(w, "latency_p50_us", r->has_latency, r->p50_ns);
    json_latency(w, "latency_p99_us", r->has_latency, r->p99_ns);
}

/* Opens the object of a publisher or subscriber with what both have: who it is. */
static void json_peer(jsonw *w, uint64_t id, int pid, const char *name, bool alive)
{
    jsonw_object(w, NULL);
    jsonw_u64(w, "id", id);
    jsonw_i64(w, "pid", pid);
    jsonw_str(w, "name", name);
    jsonw_bool(w, "alive", alive);
}

static void json_topic(jsonw *w, const mon_model *m, const mon_row *r)
{
    const shmbus_topic_info *t = r->t;
    jsonw_object(w, NULL);
    jsonw_str(w, "name", t->def.name);
    jsonw_str(w, "pool", t->def.pool);
    jsonw_u64(w, "history", t->def.history);
    jsonw_u64(w, "max_held", t->def.max_held);
    jsonw_u64(w, "queue_depth", t->def.queue_depth);
    jsonw_str(w, "delivery", tool_delivery_name(t->def.delivery));
    jsonw_u64(w, "max_message_size", t->def.max_message_size);
    jsonw_i64(w, "full_wait_ms", t->def.full_wait_ms);
    json_rates(w, &r->r);
    json_latencies(w, &r->r);
    jsonw_u64(w, "lost", r->r.lost);
    jsonw_array(w, "publishers");
    for (unsigned i = 0; i < t->npubs; i++) {
        const shmbus_pub_info *p = &t->pubs[i];
        sd_rates pr;
        sd_pub_rates(m->prev, m->cur, t, p, &pr);
        json_peer(w, p->id, p->pid, p->name, p->alive);
        jsonw_u64(w, "published", p->published);
        jsonw_u64(w, "bytes", p->bytes);
        jsonw_u64(w, "last_seq", p->last_seq);
        jsonw_u64(w, "loan_failures", p->loan_failures);
        json_rates(w, &pr);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_array(w, "subscribers");
    for (unsigned i = 0; i < t->nsubs; i++) {
        const shmbus_sub_info *s = &t->subs[i];
        sd_rates sr;
        sd_sub_rates(m->prev, m->cur, t, s, &sr);
        json_peer(w, s->id, s->pid, s->name, s->alive);
        jsonw_u64(w, "received", s->received);
        jsonw_u64(w, "bytes", s->bytes);
        jsonw_u64(w, "expired", s->expired);
        jsonw_u64(w, "dropped", s->dropped);
        jsonw_u64(w, "overflow", s->overflow);
        jsonw_u64(w, "invalid", s->invalid);
        jsonw_u64(w, "held", s->held);
        jsonw_u64(w, "max_held", s->max_held);
        jsonw_double(w, "last_latency_us", (double)s->last_latency_ns / 1e3);
        json_rates(w, &sr);
        json_latencies(w, &sr);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_end_object(w);
}

static void json_pool(jsonw *w, const shmbus_snapshot *s, const shmbus_pool_info *p)
{
    jsonw_object(w, NULL);
    jsonw_str(w, "name", p->name);
    jsonw_array(w, "classes");
    for (unsigned c = 0; c < p->nclasses; c++) {
        const shmbus_class_stats *k = &p->classes[c];
        jsonw_object(w, NULL);
        jsonw_u64(w, "block_size", k->block_size);
        jsonw_u64(w, "total", k->total);
        jsonw_u64(w, "used", k->used);
        jsonw_u64(w, "high_water", k->high_water);
        jsonw_u64(w, "loans", k->loans);
        jsonw_u64(w, "frees", k->frees);
        jsonw_u64(w, "failed_loans", k->failed_loans);
        jsonw_u64(w, "reclaims", k->reclaims);
        jsonw_double(w, "oldest_hold_us", (double)k->oldest_hold_ns / 1e3);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    sd_holder h[64];
    unsigned n = sd_pool_holders(s, p, h, 64);
    jsonw_array(w, "holders");
    for (unsigned i = 0; i < n && i < 64; i++) {
        jsonw_object(w, NULL);
        jsonw_u64(w, "slot", h[i].slot);
        jsonw_i64(w, "pid", h[i].pid);
        jsonw_str(w, "name", h[i].name);
        jsonw_bool(w, "alive", h[i].alive);
        jsonw_u64(w, "blocks", h[i].blocks);
        jsonw_double(w, "oldest_hold_us", (double)h[i].oldest_ns / 1e3);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_array(w, "held_blocks");
    for (unsigned i = 0; i < p->nheld; i++) {
        const shmbus_block_state *b = &p->held[i];
        jsonw_object(w, NULL);
        jsonw_u64(w, "class", b->cls);
        jsonw_u64(w, "index", b->index);
        jsonw_u64(w, "generation", b->gen);
        jsonw_u64(w, "seq", b->seq);
        jsonw_double(w, "age_us", (double)b->age_ns / 1e3);
        jsonw_array(w, "holders");
        for (unsigned slot = 0; slot < 64; slot++)
            if (b->holders & (1ull << slot))
                jsonw_u64(w, NULL, slot);
        jsonw_end_array(w);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_end_object(w);
}

void mon_print_json(const mon_model *m, const mon_opts *o)
{
    const shmbus_snapshot *s = m->cur;
    jsonw w;
    jsonw_init(&w, stdout, true);
    jsonw_object(&w, NULL);
    jsonw_str(&w, "domain", s->domain);
    jsonw_u64(&w, "interval_ms", o->interval_ms);
    jsonw_double(&w, "measured_s", sd_interval_s(m->prev, m->cur));
    jsonw_u64(&w, "participants_alive", s->alive);
    jsonw_array(&w, "topics");
    for (unsigned i = 0; i < m->nrows; i++)
        json_topic(&w, m, &m->rows[i]);
    jsonw_end_array(&w);
    jsonw_array(&w, "pools");
    for (unsigned i = 0; i < s->npools; i++)
        json_pool(&w, s, &s->pools[i]);
    jsonw_end_array(&w);
    jsonw_array(&w, "participants");
    for (unsigned i = 0; i < s->nparticipants; i++) {
        const shmbus_participant_info *p = &s->participants[i];
        jsonw_object(&w, NULL);
        jsonw_u64(&w, "slot", p->slot);
        jsonw_i64(&w, "pid", p->pid);
        jsonw_str(&w, "name", p->name);
        jsonw_bool(&w, "alive", p->alive);
        jsonw_u64(&w, "held_blocks", p->held_blocks);
        jsonw_u64(&w, "start_time", p->start_time);
        jsonw_end_object(&w);
    }
    jsonw_end_array(&w);
    jsonw_end_object(&w);
    jsonw_finish(&w);
    fflush(stdout);
}

/* ---- --once --------------------------------------------------------------------------------- */

void mon_print_text(const mon_model *m, const mon_opts *o)
{
    const shmbus_snapshot *s = m->cur;
    mon_layout l;
    mon_layout_init(&l, 120, false);
    l.spark = 0; /* two snapshots make no history */
    char line[1024];
    printf("shmbus-monitor: domain \"%s\", %u topics, %u pools, %u participants (%u alive), "
           "rates over %.2f s (--interval %u ms)\n",
           s->domain, s->ntopics, s->npools, s->nparticipants, s->alive,
           sd_interval_s(m->prev, m->cur), o->interval_ms);
    printf("\n");
    mon_fmt_topic_header(&l, line, sizeof line);
    printf("%s\n", line);
    for (unsigned i = 0; i < m->nrows; i++) {
        const mon_row *r = &m->rows[i];
        mon_fmt_topic(&l, r, line, sizeof line);
        printf("%s\n", line);
        if (r->t->npubs) {
            mon_fmt_pub_header(&l, line, sizeof line);
            printf("    publishers:\n    %s\n", line);
        }
        for (unsigned k = 0; k < r->t->npubs; k++) {
            mon_fmt_pub(&l, m, r->t, &r->t->pubs[k], line, sizeof line);
            printf("    %s\n", line);
        }
        if (r->t->nsubs) {
            mon_fmt_sub_header(&l, line, sizeof line);
            printf("    subscribers:\n    %s\n", line);
        }
        for (unsigned k = 0; k < r->t->nsubs; k++) {
            mon_fmt_sub(&l, m, r->t, &r->t->subs[k], line, sizeof line);
            printf("    %s\n", line);
        }
    }
    printf("\n");
    mon_fmt_pool_header(&l, line, sizeof line);
    printf("%s\n", line);
    for (unsigned i = 0; i < s->npools; i++) {
        for (unsigned c = 0; c < s->pools[i].nclasses; c++) {
            mon_fmt_pool_class(&l, &s->pools[i], c, line, sizeof line);
            printf("%s\n", line);
        }
        if (mon_fmt_holders(&l, s, &s->pools[i], line, sizeof line))
            printf("%s\n", line);
    }
    printf("\n");
    mon_fmt_part_header(&l, line, sizeof line);
    printf("%s\n", line);
    for (unsigned i = 0; i < s->nparticipants; i++) {
        mon_fmt_part(&l, &s->participants[i], line, sizeof line);
        printf("%s\n", line);
    }
    fflush(stdout);
}
