/* shmbus.Message: one held block, seen through the buffer protocol without a copy. */
#include "ext.h"

static void Message_dealloc(MessageObject *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    message_drop_handle(self); /* views hold references: none is left now */
    if (self->owner)
        message_unlink(self);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int message_live(MessageObject *self)
{
    if (!self->m) {
        PyErr_SetString(PyExc_ValueError, "the message is released");
        return -1;
    }
    return 0;
}

/* ---- buffer protocol ----------------------------------------------------------------------- */

static int Message_getbuffer(MessageObject *self, Py_buffer *view, int flags)
{
    if (!self->m) {
        PyErr_SetString(PyExc_BufferError, "the message is released");
        view->obj = NULL;
        return -1;
    }
    if ((flags & PyBUF_WRITABLE) && !self->writable) {
        PyErr_SetString(PyExc_BufferError,
                        self->owner->is_pub ? "the message is published: it is read-only now"
                                            : "a received message is read-only");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, shmbus_msg_data(self->m),
                          (Py_ssize_t)self->size, !self->writable, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void Message_releasebuffer(MessageObject *self, Py_buffer *view)
{
    (void)view;
    self->exports--;
}

static PyBufferProcs Message_as_buffer = {
    .bf_getbuffer = (getbufferproc)Message_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Message_releasebuffer,
};

/* ---- pins: buffer exporters that NumPy keeps ------------------------------------------------- */

/* np.ndarray(buffer=x) keeps x (following a memoryview to its object) and lets go of x's
 * buffer at once. A Pin holds one export of its message for as long as it lives and passes
 * the same memory on, so arrays built over a pin keep the message's views counted. */
typedef struct {
    PyObject_HEAD
    Py_buffer view; /* an export of the message */
} PinObject;

static void Pin_dealloc(PinObject *self)
{
    PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Pin_getbuffer(PinObject *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)self, self->view.buf, self->view.len,
                             self->view.readonly, flags);
}

static PyBufferProcs Pin_as_buffer = {.bf_getbuffer = (getbufferproc)Pin_getbuffer};

static PyTypeObject Pin_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_shmbus.Pin",
    .tp_basicsize = sizeof(PinObject),
    .tp_dealloc = (destructor)Pin_dealloc,
    .tp_as_buffer = &Pin_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "one counted view of a message, for NumPy arrays to keep as their base",
};

static PyObject *Message_pin(MessageObject *self, PyObject *unused)
{
    (void)unused;
    if (PyType_Ready(&Pin_Type) < 0)
        return NULL;
    PinObject *pin = PyObject_New(PinObject, &Pin_Type);
    if (!pin)
        return NULL;
    int flags = self->writable ? PyBUF_WRITABLE : PyBUF_SIMPLE;
    if (Message_getbuffer(self, &pin->view, flags) < 0) {
        pin->view.obj = NULL;
        PyObject_Free(pin);
        return NULL;
    }
    return (PyObject *)pin;
}

/* ---- methods ------------------------------------------------------------------------------- */

static PyObject *Message_release(MessageObject *self, PyObject *unused)
{
    (void)unused;
    if (self->exports)
        return PyErr_Format(PyExc_BufferError,
                            "cannot release a message while %zd view(s) of it (memoryview, "
                            "NumPy array) exist: delete them first",
                            self->exports);
    int rc = message_drop_handle(self);
    if (rc < 0)
        return raise_status(rc, "release");
    Py_RETURN_NONE;
}

static PyObject *Message_exit(MessageObject *self, PyObject *args)
{
    (void)args;
    return Message_release(self, NULL);
}

/* The frame header of a message as a dict. */
static PyObject *frame_header_dict(const shmbus_frame_hdr *h)
{
    return Py_BuildValue(
        "{s:s,s:I,s:I,s:I,s:I,s:(III),s:(KKK),s:(KKK),s:K,s:K,s:K,s:K,s:K,s:(II),s:(II),s:s#,"
        "s:s,s:s}",
        "format", shmbus_pixfmt_name((int)h->format), "flags", h->flags, "width", h->width,
        "height", h->height, "nplanes", h->nplanes, "stride", h->stride[0], h->stride[1],
        h->stride[2], "plane_offset", h->plane_offset[0], h->plane_offset[1],
        h->plane_offset[2], "plane_size", h->plane_size[0], h->plane_size[1], h->plane_size[2],
        "frame_number", h->frame_number, "capture_ns", h->capture_ns, "payload_offset",
        h->payload_offset, "payload_size", h->payload_size, "checksum", h->checksum, "fps",
        h->fps_num, h->fps_den, "sar", h->sar_num, h->sar_den, "interlace", &h->interlace,
        (Py_ssize_t)(h->interlace ? 1 : 0), "colorspace", h->colorspace, "extra", h->extra);
}

/* The message's frame header, validated against its length (shmbus_frame_check), as a
 * dict; shmbus.Error (SHMBUS_EINVAL, with the reason) if it is not a valid frame. */
static PyObject *Message_frame_header(MessageObject *self, PyObject *unused)
{
    (void)unused;
    if (message_live(self) < 0)
        return NULL;
    const shmbus_frame_hdr *h;
    int rc;
    if (self->owner->is_pub) { /* a loan: its length is the loan's size until published */
        char why[160];
        rc = shmbus_frame_check(shmbus_msg_data(self->m), self->size, &h, why, sizeof why);
        if (rc < 0)
            return PyErr_Format(PyExc_ValueError, "not a valid frame: %s", why);
    } else {
        rc = shmbus_frame_get(self->m, &h);
        if (rc < 0)
            return raise_status(rc, "frame");
    }
    return frame_header_dict(h);
}

static PyObject *Message_checksum_ok(MessageObject *self, PyObject *unused)
{
    (void)unused;
    const shmbus_frame_hdr *h;
    if (message_live(self) < 0)
        return NULL;
    int rc = shmbus_frame_get(self->m, &h);
    if (rc < 0)
        return raise_status(rc, "frame");
    bool ok;
    Py_BEGIN_ALLOW_THREADS
    ok = shmbus_frame_checksum_ok(h);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

static Py_ssize_t Message_len(MessageObject *self)
{
    return self->m ? (Py_ssize_t)self->size : 0;
}

static PySequenceMethods Message_as_sequence = {.sq_length = (lenfunc)Message_len};

/* ---- attributes ---------------------------------------------------------------------------- */

#define META_GETTER(field)                                                                  \
    static PyObject *Message_get_##field(MessageObject *self, void *c)                      \
    {                                                                                       \
        (void)c;                                                                            \
        return message_live(self) < 0 ? NULL                                                \
                                      : PyLong_FromUnsignedLongLong(shmbus_msg_##field(self->m)); \
    }
META_GETTER(seq)
META_GETTER(timestamp_ns)
META_GETTER(publisher)
META_GETTER(capacity)

static PyObject *Message_get_released(MessageObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->m == NULL);
}

static PyObject *Message_get_writable(MessageObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->writable);
}

static PyObject *Message_get_views(MessageObject *self, void *c)
{
    (void)c;
    return PyLong_FromSsize_t(self->exports);
}

static PyObject *Message_get_topic(MessageObject *self, void *c)
{
    (void)c;
    if (!self->owner)
        Py_RETURN_NONE;
    Py_INCREF(self->owner->topic);
    return self->owner->topic;
}

static PyMethodDef Message_methods[] = {
    {"release", (PyCFunction)Message_release, METH_NOARGS,
     "give the block back (idempotent); BufferError while views of it exist"},
    {"_frame_header", (PyCFunction)Message_frame_header, METH_NOARGS, NULL},
    {"_pin", (PyCFunction)Message_pin, METH_NOARGS,
     "_pin() -> an object holding one view of the message, to give NumPy as buffer="},
    {"checksum_ok", (PyCFunction)Message_checksum_ok, METH_NOARGS,
     "whether a frame's pixels match its checksum (True when it carries none)"},
    {"__enter__", context_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Message_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Message_getset[] = {
    {"seq", (getter)Message_get_seq, NULL, "1, 2, ... per publisher (0 before publishing)", NULL},
    {"timestamp_ns", (getter)Message_get_timestamp_ns, NULL,
     "CLOCK_MONOTONIC when published", NULL},
    {"publisher", (getter)Message_get_publisher, NULL, "the publisher's id", NULL},
    {"capacity", (getter)Message_get_capacity, NULL, "bytes of the block", NULL},
    {"released", (getter)Message_get_released, NULL, "whether the block was given back", NULL},
    {"writable", (getter)Message_get_writable, NULL, "a loan not yet published", NULL},
    {"views", (getter)Message_get_views, NULL, "buffer views exported now", NULL},
    {"topic", (getter)Message_get_topic, NULL, "the topic", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject Message_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_shmbus.Message",
    EXT_TYPE_SLOTS(MessageObject, Message_dealloc),
    .tp_as_sequence = &Message_as_sequence,
    .tp_as_buffer = &Message_as_buffer,
    .tp_doc = "A message in shared memory: memoryview(msg) / numpy.asarray(msg) view it in "
              "place (read-only when received, writable when loaned)",
    .tp_methods = Message_methods,
    .tp_getset = Message_getset,
};
