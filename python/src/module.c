/* The _shmbus module: errors, argument helpers, module-level functions and the types. */
#include <math.h>

#include "ext.h"

PyObject *error_factory;
PyTypeObject *publisher_type = &Publisher_Type;
PyTypeObject *subscriber_type = &Subscriber_Type;
PyTypeObject *message_type = &Message_Type;

PyObject *raise_status(int rc, const char *what)
{
    const char *detail = shmbus_last_error();
    if (!error_factory) {
        PyErr_Format(PyExc_RuntimeError, "%s: %s%s%s", what, shmbus_strerror(rc),
                     *detail ? ": " : "", detail);
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(error_factory, "isss", rc, shmbus_errname(rc),
                                          shmbus_strerror(rc), detail);
    if (!exc)
        return NULL;
    PyObject *w = PyUnicode_FromString(what);
    if (w && PyObject_SetAttrString(exc, "operation", w) == 0)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(w);
    Py_DECREF(exc);
    return NULL;
}

PyObject *context_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    Py_INCREF(self);
    return self;
}

long long timeout_ms_of(PyObject *timeout)
{
    if (!timeout || timeout == Py_None)
        return -1;
    double s = PyFloat_AsDouble(timeout);
    if (s == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not %s",
                     Py_TYPE(timeout)->tp_name);
        return -2;
    }
    if (isnan(s) || s < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 seconds (None: wait forever)");
        return -2;
    }
    if (s > 1e9)
        return -1;
    return (long long)ceil(s * 1000.0);
}

long long size_of(PyObject *o, const char *what)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %lld", what, v);
        return -1;
    }
    return v;
}

static PyObject *mod_set_error_factory(PyObject *mod, PyObject *f)
{
    (void)mod;
    Py_XINCREF(f);
    Py_XSETREF(error_factory, f);
    Py_RETURN_NONE;
}

/* _set_types(publisher, subscriber, message): the package's subclasses the factories make */
static PyObject *mod_set_types(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyTypeObject *p, *s, *m;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &p, &PyType_Type, &s, &PyType_Type,
                          &m))
        return NULL;
    if (!PyType_IsSubtype(p, &Publisher_Type) || !PyType_IsSubtype(s, &Subscriber_Type) ||
        !PyType_IsSubtype(m, &Message_Type)) {
        PyErr_SetString(PyExc_TypeError, "_set_types: subclasses of the base types expected");
        return NULL;
    }
    Py_INCREF(p);
    Py_INCREF(s);
    Py_INCREF(m);
    publisher_type = p;
    subscriber_type = s;
    message_type = m;
    Py_RETURN_NONE;
}

static PyObject *mod_domains(PyObject *mod, PyObject *args, PyObject *kw)
{
    (void)mod;
    static char *kwlist[] = {"shm_dir", NULL};
    const char *shm_dir = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|z:domains", kwlist, &shm_dir))
        return NULL;
    char names[256][32];
    int n = shmbus_domain_list(shm_dir, names, 256);
    if (n < 0)
        return raise_status(n, "domains");
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n && i < 256; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s || PyList_Append(list, s) < 0)
            Py_CLEAR(list);
        Py_XDECREF(s);
    }
    return list;
}

static PyObject *mod_checksum(PyObject *mod, PyObject *arg)
{
    (void)mod;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    uint64_t h;
    Py_BEGIN_ALLOW_THREADS
    h = shmbus_frame_checksum(b.buf, (size_t)b.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *mod_check_config(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *path = NULL;
    if (!PyArg_ParseTuple(args, "z:check_config", &path))
        return NULL;
    shmbus_config_summary *sum = PyMem_Calloc(1, sizeof *sum);
    if (!sum)
        return PyErr_NoMemory();
    int rc = shmbus_config_load(path, sum);
    PyObject *out = NULL;
    if (rc < 0)
        raise_status(rc, "config");
    else
        out = Py_BuildValue("{s:s,s:I,s:I,s:K}", "domain", sum->domain, "pools", sum->npools,
                            "topics", sum->ntopics, "bytes",
                            (unsigned long long)sum->total_bytes);
    PyMem_Free(sum);
    return out;
}

static PyObject *mod_pixfmt_names(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    PyObject *t = PyTuple_New(SHMBUS_PIXFMT_COUNT - 1);
    for (int f = 1; t && f < SHMBUS_PIXFMT_COUNT; f++)
        PyTuple_SET_ITEM(t, f - 1, PyUnicode_FromString(shmbus_pixfmt_name(f)));
    return t;
}

static PyMethodDef module_methods[] = {
    {"_set_error_factory", mod_set_error_factory, METH_O, NULL},
    {"_set_types", mod_set_types, METH_VARARGS, NULL},
    {"_shutdown", shutdown_all, METH_NOARGS,
     "Release every message without live views and close every endpoint and domain that "
     "can be closed (registered with atexit by the package)."},
    {"domains", (PyCFunction)(void (*)(void))mod_domains, METH_VARARGS | METH_KEYWORDS,
     "domains(shm_dir=None) -> names of the domains with a segment in the shm directory"},
    {"checksum", mod_checksum, METH_O,
     "checksum(buffer) -> the frame payload checksum (shmbus_frame_checksum) of the bytes"},
    {"check_config", mod_check_config, METH_VARARGS,
     "check_config(path) -> summary dict; raises ConfigError naming file, JSON path, reason"},
    {"pixel_formats", mod_pixfmt_names, METH_NOARGS, "names of the frame pixel formats"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_shmbus", "libshmbus for Python (use the shmbus package)", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__shmbus(void)
{
    PyTypeObject *types[] = {&Domain_Type, &Publisher_Type, &Subscriber_Type, &Message_Type};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    const char *names[] = {"Domain", "Publisher", "Subscriber", "Message"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(m);
            return NULL;
        }
    }
    PyModule_AddIntConstant(m, "FRAME_HEADER_SIZE", SHMBUS_FRAME_HEADER_SIZE);
    PyModule_AddIntConstant(m, "FRAME_FLAG_CHECKSUM", SHMBUS_FRAME_FLAG_CHECKSUM);
#define ADD_CODE(name, value, msg) PyModule_AddIntConstant(m, #name, value);
    SHMBUS_ERRORS(ADD_CODE)
#undef ADD_CODE
    return m;
}
