/* shmbus.Subscriber: receive messages (blocking with the GIL released, or via fileno()). */
#include "ext.h"

/* The next message, None when timeout_ms (-1: forever) passed or the subscriber was closed
 * meanwhile, or NULL with an exception. Waits in slices so that signals (Ctrl-C) are seen. */
static PyObject *recv_ms(EndpointObject *self, long long ms)
{
    if (endpoint_usable(self) < 0)
        return NULL;
    /* a message already waiting is taken without letting go of the GIL (cheaper, and no
     * other thread gets in between); only a wait releases it */
    shmbus_msg *ready = NULL;
    int rc0 = shmbus_sub_recv(self->sub, 0, &ready);
    if (rc0 == 0)
        return (PyObject *)message_wrap(self, ready, shmbus_msg_length(ready), false);
    if (rc0 != SHMBUS_EAGAIN && rc0 != SHMBUS_EINTR)
        return raise_status(rc0, "recv");
    if (ms == 0)
        Py_RETURN_NONE;
    for (;;) {
        int slice = ms < 0 || ms > 100 ? 100 : (int)ms;
        shmbus_msg *m = NULL;
        int rc;
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        rc = shmbus_sub_recv(self->sub, slice, &m);
        Py_END_ALLOW_THREADS
        self->busy--;
        if (rc == 0)
            return (PyObject *)message_wrap(self, m, shmbus_msg_length(m), false);
        if (rc != SHMBUS_ETIMEDOUT && rc != SHMBUS_EAGAIN && rc != SHMBUS_EINTR) {
            raise_status(rc, "recv");
            endpoint_try_close(self);
            return NULL;
        }
        if (PyErr_CheckSignals() < 0)
            return NULL;
        if (self->closing) {
            endpoint_try_close(self);
            Py_RETURN_NONE;
        }
        if (ms >= 0) {
            ms -= slice;
            if (ms <= 0)
                Py_RETURN_NONE;
        }
    }
}

static PyObject *Subscriber_recv(EndpointObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:recv", kwlist, &timeout))
        return NULL;
    long long ms = timeout_ms_of(timeout);
    return ms == -2 ? NULL : recv_ms(self, ms);
}

static PyObject *Subscriber_next(EndpointObject *self)
{
    if (self->closing)
        return NULL; /* StopIteration */
    PyObject *m = recv_ms(self, -1);
    if (m == Py_None) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

static PyObject *Subscriber_fileno(EndpointObject *self, PyObject *unused)
{
    (void)unused;
    if (endpoint_usable(self) < 0)
        return NULL;
    int fd;
    int rc = shmbus_sub_fd(self->sub, &fd);
    return rc < 0 ? raise_status(rc, "fileno") : PyLong_FromLong(fd);
}

static PyObject *Subscriber_stats(EndpointObject *self, PyObject *unused)
{
    (void)unused;
    if (endpoint_usable(self) < 0)
        return NULL;
    shmbus_sub_counters c;
    int rc = shmbus_sub_stats(self->sub, &c);
    if (rc < 0)
        return raise_status(rc, "stats");
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "received", c.received,
                         "expired", c.expired, "dropped", c.dropped, "overflow", c.overflow,
                         "invalid", c.invalid, "bytes", c.bytes, "held", c.held,
                         "last_latency_ns", c.last_latency_ns);
}

/* The C subscriber loop of the benchmark, in C without Python per message: receive a frame,
 * read one pixel, release, for `seconds` (after the first frame), storing the count of frames
 * taken so far into the first 8 bytes of `counter` (a writable buffer the publisher reads to
 * keep a fixed number in flight). Returns (frames, elapsed seconds, pixel sum) so that the
 * Python subscriber's rate can be set against it. */
static PyObject *Subscriber_c_loop(EndpointObject *self, PyObject *args)
{
    double seconds;
    Py_buffer counter;
    if (!PyArg_ParseTuple(args, "dw*:_c_loop", &seconds, &counter))
        return NULL;
    if (counter.len < 8 || (uintptr_t)counter.buf % 8 || endpoint_usable(self) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "_c_loop: counter must be 8 aligned bytes");
        PyBuffer_Release(&counter);
        return NULL;
    }
    uint64_t *count = counter.buf;
    unsigned long long frames = 0, sum = 0;
    double elapsed = 0;
    int rc = 0;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    struct timespec t0, t;
    for (;;) {
        shmbus_msg *m;
        rc = shmbus_sub_recv(self->sub, 2000, &m);
        if (rc < 0)
            break;
        const shmbus_frame_hdr *h;
        if (shmbus_frame_get(m, &h) == 0)
            sum += shmbus_frame_plane(h, 0)[0];
        shmbus_msg_release(m);
        __atomic_store_n(count, frames + 1, __ATOMIC_RELEASE);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (frames++ == 0)
            t0 = t;
        elapsed = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (elapsed >= seconds)
            break;
    }
    Py_END_ALLOW_THREADS
    self->busy--;
    PyBuffer_Release(&counter);
    endpoint_try_close(self);
    if (rc < 0 && rc != SHMBUS_ETIMEDOUT)
        return raise_status(rc, "recv");
    return Py_BuildValue("(KdK)", frames ? frames - 1 : 0, elapsed, sum);
}

static PyMethodDef Subscriber_methods[] = {
    {"recv", (PyCFunction)(void (*)(void))Subscriber_recv, METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None) -> the next Message (read-only), or None after timeout seconds "
     "(0: do not wait; None: wait forever). The GIL is released while waiting."},
    {"fileno", (PyCFunction)Subscriber_fileno, METH_NOARGS,
     "a descriptor that polls readable when a message waits (selectors, asyncio "
     "add_reader); then recv(timeout=0) until it returns None"},
    {"stats", (PyCFunction)Subscriber_stats, METH_NOARGS,
     "counters: received, expired, dropped, overflow, invalid, bytes, held, last_latency_ns"},
    {"_c_loop", (PyCFunction)Subscriber_c_loop, METH_VARARGS, NULL},
    ENDPOINT_METHODS_END("publishers", "close; messages received and not yet released keep "
                                       "it open until they go"),
};

PyTypeObject Subscriber_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_shmbus.Subscriber",
    .tp_doc = "A subscriber: Domain.subscriber(topic, history=False); iterate it to receive",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Subscriber_next,
    ENDPOINT_TYPE_SLOTS,
    .tp_methods = Subscriber_methods,
};
