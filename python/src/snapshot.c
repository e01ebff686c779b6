/* Domain.snapshot(): a running domain's topics, pools and participants as plain dicts. */
#include "ext.h"

/* append v (stolen) to list; on failure clear the list */
static void append(PyObject **list, PyObject *v)
{
    if (*list && (!v || PyList_Append(*list, v) < 0))
        Py_CLEAR(*list);
    Py_XDECREF(v);
}

static PyObject *topic_dict(const shmbus_topic_info *t)
{
    PyObject *pubs = PyList_New(0), *subs = PyList_New(0);
    for (unsigned i = 0; i < t->npubs; i++) {
        const shmbus_pub_info *p = &t->pubs[i];
        append(&pubs, Py_BuildValue("{s:K,s:i,s:s,s:O,s:K,s:K,s:K,s:K}", "id", p->id, "pid",
                                    p->pid, "name", p->name, "alive",
                                    p->alive ? Py_True : Py_False, "published", p->published,
                                    "bytes", p->bytes, "last_seq", p->last_seq,
                                    "loan_failures", p->loan_failures));
    }
    for (unsigned i = 0; i < t->nsubs; i++) {
        const shmbus_sub_info *s = &t->subs[i];
        append(&subs, Py_BuildValue("{s:K,s:i,s:s,s:O,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}",
                                    "id", s->id, "pid", s->pid, "name", s->name, "alive",
                                    s->alive ? Py_True : Py_False, "received", s->received,
                                    "expired", s->expired, "dropped", s->dropped, "overflow",
                                    s->overflow, "invalid", s->invalid, "bytes", s->bytes,
                                    "held", s->held, "max_held", s->max_held,
                                    "last_latency_ns", s->last_latency_ns));
    }
    if (!pubs || !subs) {
        Py_XDECREF(pubs);
        Py_XDECREF(subs);
        return NULL;
    }
    const shmbus_topic_def *d = &t->def;
    return Py_BuildValue("{s:s,s:s,s:I,s:I,s:I,s:s,s:i,s:K,s:N,s:N}", "name", d->name, "pool",
                         d->pool, "history", d->history, "max_held", d->max_held,
                         "queue_depth", d->queue_depth, "delivery",
                         d->delivery == SHMBUS_DELIVERY_SHM ? "shm" : "nng",
                         "wait_ms", d->full_wait_ms,
                         "max_message_size", d->max_message_size, "publishers", pubs,
                         "subscribers", subs);
}

static PyObject *pool_dict(const shmbus_pool_info *p)
{
    PyObject *classes = PyList_New(0);
    unsigned long long used = 0;
    for (unsigned i = 0; i < p->nclasses; i++) {
        const shmbus_class_stats *c = &p->classes[i];
        used += c->used;
        append(&classes, Py_BuildValue("{s:K,s:I,s:I,s:I,s:K,s:K,s:K,s:K}", "block_size",
                                       c->block_size, "total", c->total, "used", c->used,
                                       "high_water", c->high_water, "loans", c->loans, "frees",
                                       c->frees, "failed_loans", c->failed_loans, "reclaims",
                                       c->reclaims));
    }
    if (!classes)
        return NULL;
    return Py_BuildValue("{s:s,s:K,s:N}", "name", p->name, "used", used, "classes", classes);
}

static PyObject *snapshot_to_dict(const shmbus_snapshot *s)
{
    PyObject *topics = PyList_New(0), *pools = PyList_New(0), *parts = PyList_New(0);
    for (unsigned i = 0; i < s->ntopics; i++)
        append(&topics, topic_dict(&s->topics[i]));
    for (unsigned i = 0; i < s->npools; i++)
        append(&pools, pool_dict(&s->pools[i]));
    for (unsigned i = 0; i < s->nparticipants; i++) {
        const shmbus_participant_info *p = &s->participants[i];
        append(&parts, Py_BuildValue("{s:I,s:i,s:s,s:O,s:K}", "slot", p->slot, "pid", p->pid,
                                     "name", p->name, "alive", p->alive ? Py_True : Py_False,
                                     "held_blocks", p->held_blocks));
    }
    if (!topics || !pools || !parts) {
        Py_XDECREF(topics);
        Py_XDECREF(pools);
        Py_XDECREF(parts);
        return NULL;
    }
    return Py_BuildValue("{s:s,s:K,s:N,s:N,s:N,s:I}", "domain", s->domain, "taken_ns",
                         s->taken_ns, "topics", topics, "pools", pools, "participants", parts,
                         "alive", s->alive);
}

PyObject *domain_snapshot(DomainObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->d) {
        PyErr_SetString(PyExc_ValueError, "the domain is closed");
        return NULL;
    }
    shmbus_snapshot *s;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_snapshot_take(self->d, &s);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return raise_status(rc, "snapshot");
    PyObject *out = snapshot_to_dict(s);
    shmbus_snapshot_free(s);
    return out;
}
