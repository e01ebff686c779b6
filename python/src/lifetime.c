/* When the C handles of messages, endpoints and domains are released and closed (ext.h
 * explains the order), and the exit-time cleanup. */
#include "ext.h"

static DomainObject *all_domains; /* open domains of this process; raw links */
static bool exiting;              /* shutdown_all(): close once every handle is released */

void domain_link(DomainObject *d) { LIST_PUSH(all_domains, d); }

void domain_try_close(DomainObject *d)
{
    if (!d->closing || !d->d || d->endpoints || (d->live && !exiting))
        return;
    /* EBUSY cannot happen here (every endpoint and message is gone); EFORKED in a forked
     * child leaves the parent's domain alone, which is right. Either way the handle is done. */
    shmbus_domain_close(d->d);
    d->d = NULL;
    LIST_UNLINK(all_domains, d);
}

void endpoint_try_close(EndpointObject *e)
{
    if (!e->closing || e->busy || e->held)
        return;
    if (e->pub) {
        shmbus_pub_close(e->pub);
        e->pub = NULL;
    } else if (e->sub) {
        shmbus_sub_close(e->sub);
        e->sub = NULL;
    } else {
        return;
    }
    LIST_UNLINK(e->domain->endpoints, e);
    domain_try_close(e->domain);
}

MessageObject *message_wrap(EndpointObject *e, shmbus_msg *m, uint64_t size, bool writable)
{
    MessageObject *msg = (MessageObject *)message_type->tp_alloc(message_type, 0);
    if (!msg) {
        shmbus_msg_release(m);
        return NULL;
    }
    Py_INCREF(e);
    msg->owner = e;
    msg->m = m;
    msg->size = size;
    msg->writable = writable;
    LIST_PUSH(e->msgs, msg);
    e->held++;
    e->domain->live++;
    return msg;
}

int message_drop_handle(MessageObject *msg)
{
    if (!msg->m)
        return 0;
    int rc = shmbus_msg_release(msg->m);
    message_forget(msg);
    return rc == SHMBUS_EFORKED ? 0 : rc;
}

void message_forget(MessageObject *msg)
{
    msg->m = NULL;
    msg->writable = false;
    msg->owner->held--;
    endpoint_try_close(msg->owner);
}

void message_unlink(MessageObject *msg)
{
    EndpointObject *e = msg->owner;
    LIST_UNLINK(e->msgs, msg);
    e->domain->live--;
    domain_try_close(e->domain);
}

PyObject *shutdown_all(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    exiting = true;
    DomainObject *d = all_domains;
    while (d) {
        DomainObject *next_d = d->next;
        Py_INCREF(d); /* closing may unlink it; keep it alive while we walk */
        d->closing = true;
        EndpointObject *e = d->endpoints;
        while (e) {
            EndpointObject *next_e = e->next;
            Py_INCREF(e);
            e->closing = true;
            MessageObject *m = e->msgs;
            while (m) {
                MessageObject *next_m = m->next;
                if (m->exports == 0)
                    message_drop_handle(m); /* Python code may still hold it: now released */
                m = next_m;
            }
            endpoint_try_close(e);
            Py_DECREF(e);
            e = next_e;
        }
        domain_try_close(d);
        next_d = d->next ? d->next : next_d;
        Py_DECREF(d);
        d = next_d;
    }
    Py_RETURN_NONE;
}
