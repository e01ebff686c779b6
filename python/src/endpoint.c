/* What publishers and subscribers share: closing, context management, their peers. */
#include "ext.h"

void endpoint_dealloc(EndpointObject *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->closing = true;
    endpoint_try_close(self); /* its messages hold references: none is left now */
    Py_XDECREF(self->topic);
    Py_XDECREF(self->domain);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int endpoint_usable(EndpointObject *self)
{
    if (self->closing || (!self->pub && !self->sub)) {
        PyErr_Format(PyExc_ValueError, "the %s is closed",
                     self->is_pub ? "publisher" : "subscriber");
        return -1;
    }
    return 0;
}

PyObject *endpoint_close(EndpointObject *self, PyObject *unused)
{
    (void)unused;
    self->closing = true;
    endpoint_try_close(self);
    Py_RETURN_NONE;
}

PyObject *endpoint_exit(EndpointObject *self, PyObject *args)
{
    (void)args;
    return endpoint_close(self, NULL);
}

PyObject *endpoint_peers(EndpointObject *self, PyObject *unused)
{
    (void)unused;
    if (endpoint_usable(self) < 0)
        return NULL;
    int n = self->is_pub ? shmbus_pub_subscribers(self->pub) : shmbus_sub_publishers(self->sub);
    return n < 0 ? raise_status(n, self->is_pub ? "subscribers" : "publishers")
                 : PyLong_FromLong(n);
}

PyObject *endpoint_wait_peers(EndpointObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"n", "timeout", NULL};
    int n = 1;
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|iO", kwlist, &n, &timeout) ||
        endpoint_usable(self) < 0)
        return NULL;
    long long ms = timeout_ms_of(timeout);
    if (ms == -2)
        return NULL;
    /* in slices, so that Ctrl-C works and close() from another thread is not held up long */
    for (;;) {
        int slice = ms < 0 || ms > 100 ? 100 : (int)ms;
        int rc;
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        rc = self->is_pub ? shmbus_pub_wait_subscribers(self->pub, n, slice)
                          : shmbus_sub_wait_publishers(self->sub, n, slice);
        Py_END_ALLOW_THREADS
        self->busy--;
        if (rc == 0 || (rc != SHMBUS_ETIMEDOUT && rc != SHMBUS_EINTR)) {
            endpoint_try_close(self);
            if (rc == 0)
                Py_RETURN_TRUE;
            return raise_status(rc, "wait for peers");
        }
        if (PyErr_CheckSignals() < 0 || self->closing) {
            endpoint_try_close(self);
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_FALSE;
        }
        if (ms >= 0) {
            ms -= slice;
            if (ms <= 0)
                Py_RETURN_FALSE;
        }
    }
}

static PyObject *endpoint_get_closed(EndpointObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->closing);
}

PyMemberDef endpoint_members[] = {
    {"topic", T_OBJECT, offsetof(EndpointObject, topic), READONLY, "the topic"},
    {"domain", T_OBJECT, offsetof(EndpointObject, domain), READONLY, "the domain"},
    {NULL, 0, 0, 0, NULL},
};

PyGetSetDef endpoint_getset[] = {
    {"closed", (getter)endpoint_get_closed, NULL, "close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
