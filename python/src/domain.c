/* shmbus.Domain: a joined domain (shmbus_domain_open), the factory of publishers and
 * subscribers. */
#include "ext.h"

static PyObject *Domain_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"domain", "config", "name", "runtime_dir", "shm_dir", "observe",
                             NULL};
    const char *domain = NULL, *config = NULL, *name = NULL, *runtime_dir = NULL,
               *shm_dir = NULL;
    int observe = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z$zzzzp:Domain", kwlist, &domain, &config,
                                     &name, &runtime_dir, &shm_dir, &observe))
        return NULL;
    DomainObject *self = (DomainObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = config;
    o.name = name;
    o.runtime_dir = runtime_dir;
    o.shm_dir = shm_dir;
    o.observe = observe;
    shmbus_domain *d = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_domain_open(domain, &o, &d);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        Py_DECREF(self);
        return raise_status(rc, "open domain");
    }
    self->d = d;
    self->observe = observe;
    self->name = PyUnicode_FromString(shmbus_domain_name(d));
    domain_link(self);
    if (!self->name) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void Domain_dealloc(DomainObject *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->closing = true;
    domain_try_close(self); /* its endpoints hold references: none is left now */
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int domain_usable(DomainObject *self)
{
    if (!self->d || self->closing) {
        PyErr_SetString(PyExc_ValueError, "the domain is closed");
        return -1;
    }
    if (self->observe) {
        PyErr_SetString(PyExc_ValueError, "an observing domain (observe=True) only takes "
                                          "snapshots");
        return -1;
    }
    return 0;
}

static EndpointObject *endpoint_new(DomainObject *self, PyTypeObject *type, PyObject *topic)
{
    EndpointObject *e = (EndpointObject *)type->tp_alloc(type, 0);
    if (!e)
        return NULL;
    Py_INCREF(self);
    e->domain = self;
    Py_INCREF(topic);
    e->topic = topic;
    return e;
}

static PyObject *Domain_publisher(DomainObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"topic", NULL};
    PyObject *topic;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "U:publisher", kwlist, &topic) ||
        domain_usable(self) < 0)
        return NULL;
    const char *t = PyUnicode_AsUTF8(topic);
    if (!t)
        return NULL;
    shmbus_pub *p;
    int rc = shmbus_pub_open(self->d, t, &p);
    if (rc < 0)
        return raise_status(rc, "open publisher");
    EndpointObject *e = endpoint_new(self, publisher_type, topic);
    if (!e) {
        shmbus_pub_close(p);
        return NULL;
    }
    e->is_pub = true;
    e->pub = p;
    LIST_PUSH(self->endpoints, e);
    return (PyObject *)e;
}

static PyObject *Domain_subscriber(DomainObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"topic", "history", NULL};
    PyObject *topic;
    int history = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|p:subscriber", kwlist, &topic, &history) ||
        domain_usable(self) < 0)
        return NULL;
    const char *t = PyUnicode_AsUTF8(topic);
    if (!t)
        return NULL;
    shmbus_sub_opts o = {.history = history};
    shmbus_sub *s;
    int rc = shmbus_sub_open(self->d, t, &o, &s);
    if (rc < 0)
        return raise_status(rc, "open subscriber");
    EndpointObject *e = endpoint_new(self, subscriber_type, topic);
    if (!e) {
        shmbus_sub_close(s);
        return NULL;
    }
    e->sub = s;
    LIST_PUSH(self->endpoints, e);
    return (PyObject *)e;
}

static PyObject *Domain_close(DomainObject *self, PyObject *unused)
{
    (void)unused;
    self->closing = true;
    for (EndpointObject *e = self->endpoints; e;) {
        EndpointObject *next = e->next; /* closing unlinks e */
        e->closing = true;
        endpoint_try_close(e);
        e = next;
    }
    domain_try_close(self);
    Py_RETURN_NONE;
}

static PyObject *Domain_exit(DomainObject *self, PyObject *args)
{
    (void)args;
    return Domain_close(self, NULL);
}

static PyObject *Domain_get_closed(DomainObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->closing);
}

static PyMethodDef Domain_methods[] = {
    {"publisher", (PyCFunction)(void (*)(void))Domain_publisher, METH_VARARGS | METH_KEYWORDS,
     "publisher(topic) -> Publisher"},
    {"subscriber", (PyCFunction)(void (*)(void))Domain_subscriber,
     METH_VARARGS | METH_KEYWORDS,
     "subscriber(topic, history=False) -> Subscriber; history: first the messages the "
     "topic's publishers still hold"},
    {"snapshot", (PyCFunction)domain_snapshot, METH_NOARGS,
     "snapshot() -> dict: topics (publishers, subscribers, counters), pools (per-class use), "
     "participants"},
    {"close", (PyCFunction)Domain_close, METH_NOARGS,
     "Close every publisher and subscriber, then leave the domain. Whatever still holds "
     "messages closes when the last of them is released."},
    {"__enter__", context_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Domain_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Domain_members[] = {
    {"name", T_OBJECT, offsetof(DomainObject, name), READONLY, "the domain's name"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Domain_getset[] = {
    {"closed", (getter)Domain_get_closed, NULL, "close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject Domain_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_shmbus.Domain",
    EXT_TYPE_SLOTS(DomainObject, Domain_dealloc),
    .tp_doc = "Domain(domain=None, *, config=None, name=None, runtime_dir=None, "
              "shm_dir=None, observe=False): join a shmbus domain",
    .tp_methods = Domain_methods,
    .tp_members = Domain_members,
    .tp_getset = Domain_getset,
    .tp_new = Domain_new,
};
