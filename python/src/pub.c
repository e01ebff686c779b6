/* shmbus.Publisher: loan messages (plain or camera frames), publish them. */
#include <time.h>

#include "ext.h"

static PyObject *loan_wait(EndpointObject *self, uint64_t size, shmbus_msg **m)
{
    int rc;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    rc = shmbus_pub_loan(self->pub, size, m);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (rc < 0) {
        raise_status(rc, "loan");
        endpoint_try_close(self);
        return NULL;
    }
    return Py_None;
}

static PyObject *Publisher_loan(EndpointObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", NULL};
    PyObject *size_o;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:loan", kwlist, &size_o))
        return NULL;
    long long size = size_of(size_o, "size");
    if (size < 0 || endpoint_usable(self) < 0)
        return NULL;
    shmbus_msg *m;
    if (!loan_wait(self, (uint64_t)size, &m))
        return NULL;
    return (PyObject *)message_wrap(self, m, (uint64_t)size, true);
}

static PyObject *Publisher_loan_frame(EndpointObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"width", "height", "format", "stride", NULL};
    PyObject *w_o, *h_o, *s_o = NULL;
    const char *format = "rgb24";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|sO:loan_frame", kwlist, &w_o, &h_o, &format,
                                     &s_o))
        return NULL;
    long long w = size_of(w_o, "width"), h = w < 0 ? -1 : size_of(h_o, "height");
    long long stride = h < 0 ? -1 : s_o && s_o != Py_None ? size_of(s_o, "stride") : 0;
    if (stride < 0 || endpoint_usable(self) < 0)
        return NULL;
    shmbus_pixfmt fmt = shmbus_pixfmt_parse(format);
    if (fmt == SHMBUS_PIXFMT_NONE)
        return PyErr_Format(PyExc_ValueError, "pixel format '%s': expected one of %s", format,
                            shmbus_pixfmt_list());
    shmbus_frame_hdr g;
    if (w > SHMBUS_FRAME_MAX_DIM || h > SHMBUS_FRAME_MAX_DIM || stride > UINT32_MAX ||
        shmbus_frame_init_stride(&g, fmt, (uint32_t)w, (uint32_t)h, (uint32_t)stride) < 0)
        return PyErr_Format(PyExc_ValueError,
                            "frame %lldx%lld %s (stride %lld): sizes must be 1..%d and the "
                            "stride at least a row",
                            w, h, format, stride, SHMBUS_FRAME_MAX_DIM);
    shmbus_msg *m;
    if (!loan_wait(self, shmbus_frame_message_size(&g), &m))
        return NULL;
    shmbus_frame_hdr *hdr = shmbus_msg_data(m);
    memcpy(hdr, &g, sizeof g);
    MessageObject *msg = message_wrap(self, m, shmbus_frame_message_size(&g), true);
    if (msg)
        msg->frame = true;
    return (PyObject *)msg;
}

static PyObject *Publisher_publish(EndpointObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"message", "length", "checksum", NULL};
    PyObject *msg_o, *len_o = Py_None;
    int checksum = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$p:publish", kwlist, &msg_o, &len_o,
                                     &checksum))
        return NULL;
    if (!PyObject_TypeCheck(msg_o, &Message_Type))
        return PyErr_Format(PyExc_TypeError, "publish() takes a Message from loan(), not %s",
                            Py_TYPE(msg_o)->tp_name);
    MessageObject *msg = (MessageObject *)msg_o;
    if (endpoint_usable(self) < 0)
        return NULL;
    if (msg->owner != self || !msg->m || !msg->writable)
        return PyErr_Format(PyExc_ValueError, "publish(): the message is %s",
                            msg->owner != self ? "not a loan of this publisher"
                            : !msg->m          ? "released"
                                               : "already published");
    uint64_t length = msg->size;
    if (len_o != Py_None) {
        long long l = size_of(len_o, "length");
        if (l < 0)
            return NULL;
        if ((uint64_t)l > msg->size)
            return PyErr_Format(PyExc_ValueError, "length %lld is over the loan's %llu bytes", l,
                                (unsigned long long)msg->size);
        length = (uint64_t)l;
    }
    /* Views of the loan still exported keep pointing at the block: keep a hold on it so that
     * it is not reused while they live (publishing consumes the loan's own handle). */
    shmbus_msg *keep = msg->exports ? shmbus_msg_clone(msg->m) : NULL;
    int rc = msg->frame ? shmbus_frame_publish(self->pub, msg->m, checksum)
                        : shmbus_pub_publish(self->pub, msg->m, length);
    if (rc < 0 && rc != SHMBUS_ETRANSPORT) {
        if (keep)
            shmbus_msg_release(keep); /* the caller (the message) still owns its handle */
        return raise_status(rc, "publish");
    }
    msg->writable = false;
    if (keep)
        msg->m = keep; /* a plain hold now, released with the message */
    else
        message_forget(msg); /* its handle was consumed */
    if (rc < 0)
        return raise_status(rc, "publish");
    Py_RETURN_NONE;
}

/* The benchmark's publisher, in C so that the subscriber is what is measured: loan a frame of
 * width x height rgb24, write its first pixel, publish; keep at most `window` frames ahead of
 * the count the subscriber stores in counters[0]; stop when counters[1] is non-zero.
 * counters: a writable buffer of two aligned uint64. Returns the frames published. */
static PyObject *Publisher_c_loop(EndpointObject *self, PyObject *args)
{
    unsigned w, h, window;
    Py_buffer counters;
    if (!PyArg_ParseTuple(args, "IIIw*:_c_loop", &w, &h, &window, &counters))
        return NULL;
    shmbus_frame_hdr g;
    if (counters.len < 16 || (uintptr_t)counters.buf % 8 || endpoint_usable(self) < 0 ||
        shmbus_frame_init(&g, SHMBUS_PIXFMT_RGB24, w, h) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "_c_loop: bad frame size or counters");
        PyBuffer_Release(&counters);
        return NULL;
    }
    uint64_t *c = counters.buf, n = 0;
    int rc = 0;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    while (!__atomic_load_n(&c[1], __ATOMIC_ACQUIRE)) {
        if (n - __atomic_load_n(&c[0], __ATOMIC_ACQUIRE) >= window) {
            /* sleep, not spin: on a small machine a spinning publisher takes the CPU the
             * subscriber under test needs */
            nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
            continue;
        }
        shmbus_msg *m;
        shmbus_frame_hdr *hdr;
        rc = shmbus_frame_loan(self->pub, &g, &m, &hdr);
        if (rc == SHMBUS_EFULL || rc == SHMBUS_ETIMEDOUT)
            continue;
        if (rc < 0)
            break;
        shmbus_frame_plane_mut(hdr, 0)[0] = (uint8_t)n;
        hdr->frame_number = n++;
        if ((rc = shmbus_frame_publish(self->pub, m, false)) < 0)
            break;
    }
    Py_END_ALLOW_THREADS
    self->busy--;
    PyBuffer_Release(&counters);
    endpoint_try_close(self);
    return rc < 0 ? raise_status(rc, "publish") : PyLong_FromUnsignedLongLong(n);
}

static PyMethodDef Publisher_methods[] = {
    {"loan", (PyCFunction)(void (*)(void))Publisher_loan, METH_VARARGS | METH_KEYWORDS,
     "loan(size) -> a writable Message of size bytes in shared memory (waits for a free "
     "block per the topic's policy, GIL released; Full or Timeout when there is none)"},
    {"_loan_frame", (PyCFunction)(void (*)(void))Publisher_loan_frame,
     METH_VARARGS | METH_KEYWORDS,
     "_loan_frame(width, height, format='rgb24', stride=None) -> a writable Message holding "
     "a frame header for that geometry"},
    {"publish", (PyCFunction)(void (*)(void))Publisher_publish, METH_VARARGS | METH_KEYWORDS,
     "publish(message, length=None, *, checksum=False): send a loan (all of it, or its first "
     "length bytes); frames get their checksum first if asked"},
    {"_c_loop", (PyCFunction)Publisher_c_loop, METH_VARARGS, NULL},
    ENDPOINT_METHODS_END("subscribers", "close; loans not yet published or released keep it "
                                        "open until they go"),
};

PyTypeObject Publisher_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_shmbus.Publisher",
    ENDPOINT_TYPE_SLOTS,
    .tp_doc = "A publisher: Domain.publisher(topic)",
    .tp_methods = Publisher_methods,
};
