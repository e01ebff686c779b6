/* The _shmbus extension module: CPython objects over libshmbus (api/shmbus.h).
 *
 * Objects and who keeps whom alive (strong references point up only, so no cycles):
 *   Message  -> its Publisher or Subscriber (an "endpoint") -> Domain
 * The C handles close in the same order, each as late as it must:
 *   - a Message's block is released by release(), `with` exit or garbage collection, never
 *     while a buffer view (memoryview, NumPy array) of it is exported: release() then raises
 *     BufferError and the block stays held until the message object itself goes;
 *   - an endpoint closes its C handle once close() was asked (or it is collected), no
 *     message it produced is still held and no call of it is waiting with the GIL released;
 *   - a Domain closes its C handle (and unmaps the pools) once close() was asked (or it is
 *     collected), all its endpoints are closed and no message object of it exists any more,
 *     released or not: NumPy's ndarray(buffer=msg) and frombuffer(msg) keep the message
 *     object but not a view, so the mapping stays while the object does.
 * So a view can never outlive the mapping it points into: Python code cannot reach freed
 * memory whatever order it closes things in.
 *
 * All state here is guarded by the GIL. Calls that block (recv, loan, waits) release the GIL
 * and count themselves in `busy` so that a close() from another thread waits for them.
 */
#ifndef SHMBUS_PY_EXT_H
#define SHMBUS_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdbool.h>

#include <shmbus.h>

#include "shmbus_frame.h"

typedef struct DomainObject DomainObject;
typedef struct EndpointObject EndpointObject;
typedef struct MessageObject MessageObject;

struct DomainObject {
    PyObject_HEAD
    shmbus_domain *d;          /* NULL once closed */
    bool closing;              /* close() asked: no new endpoints */
    bool observe;
    EndpointObject *endpoints; /* not yet closed in C; raw links, no references */
    Py_ssize_t live;           /* message objects of the domain not yet deallocated */
    DomainObject *next, *prev; /* every domain of the process, for shutdown() */
    PyObject *name;
    PyObject *weakrefs;
};

struct EndpointObject {
    PyObject_HEAD
    DomainObject *domain;      /* strong reference */
    bool is_pub;
    shmbus_pub *pub;           /* one of the two, NULL once closed */
    shmbus_sub *sub;
    bool closing;              /* close() asked */
    int busy;                  /* calls waiting with the GIL released */
    Py_ssize_t held;           /* messages from this endpoint whose handle is not released */
    MessageObject *msgs;       /* its message objects not yet deallocated; raw links */
    EndpointObject *next, *prev; /* in domain->endpoints */
    PyObject *topic;
    PyObject *weakrefs;
};

struct MessageObject {
    PyObject_HEAD
    EndpointObject *owner;     /* strong reference */
    shmbus_msg *m;             /* NULL once released */
    uint64_t size;             /* bytes the buffer shows */
    Py_ssize_t exports;        /* buffer views alive */
    bool writable;             /* a loan not yet published */
    bool frame;                /* loaned with loan_frame: publish checks the header */
    MessageObject *next, *prev; /* in owner->msgs */
    PyObject *weakrefs;
};

/* types (module.c fills the *_type pointers the factories instantiate: the package's
 * subclasses once it registered them, else the base types) */
extern PyTypeObject Domain_Type, Publisher_Type, Subscriber_Type, Message_Type;
extern PyTypeObject *publisher_type, *subscriber_type, *message_type;

/* errors (module.c): set a Python exception for status rc (< 0) with shmbus_last_error() as
 * its detail, prefixed by `what`; returns NULL. Call right after the failing call. */
PyObject *raise_status(int rc, const char *what);
/* the package's factory, or NULL */
extern PyObject *error_factory;

/* __enter__ of the context managers (Domain, endpoints, Message): returns self */
PyObject *context_enter(PyObject *self, PyObject *unused);

/* The type slots every object type here shares: subclassable (the package subclasses them),
 * weak references, instances of struct T freed by dealloc. */
#define EXT_TYPE_SLOTS(T, dealloc)                                                        \
    .tp_basicsize = sizeof(T), .tp_dealloc = (destructor)(dealloc),                       \
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,                                 \
    .tp_weaklistoffset = offsetof(T, weakrefs)

/* timeouts in seconds (None: forever) to milliseconds; -1 forever. Returns -2 on error. */
long long timeout_ms_of(PyObject *timeout);
/* a byte count >= 0 from an int; -1 on error (exception set) */
long long size_of(PyObject *o, const char *what);

/* intrusive doubly linked lists of raw pointers (next/prev members, head pointer) */
#define LIST_PUSH(head, node)                                                             \
    do {                                                                                  \
        (node)->prev = NULL;                                                              \
        (node)->next = (head);                                                            \
        if (head)                                                                         \
            (head)->prev = (node);                                                        \
        (head) = (node);                                                                  \
    } while (0)
#define LIST_UNLINK(head, node)                                                           \
    do {                                                                                  \
        if ((node)->prev)                                                                 \
            (node)->prev->next = (node)->next;                                            \
        else if ((head) == (node))                                                        \
            (head) = (node)->next;                                                        \
        if ((node)->next)                                                                 \
            (node)->next->prev = (node)->prev;                                            \
        (node)->next = (node)->prev = NULL;                                               \
    } while (0)

/* lifetimes (lifetime.c) */
void domain_link(DomainObject *d);
void domain_try_close(DomainObject *d);   /* closes in C if asked and nothing is left */
void endpoint_try_close(EndpointObject *e);
/* a new Message holding handle m of endpoint e (takes m: released on failure) */
MessageObject *message_wrap(EndpointObject *e, shmbus_msg *m, uint64_t size, bool writable);
/* release the C handle of a message (not its views: callers check exports) */
int message_drop_handle(MessageObject *msg);
/* forget a handle that is gone (released, or consumed by publish) */
void message_forget(MessageObject *msg);
/* the object goes: unlink it from its owner, let the owner close */
void message_unlink(MessageObject *msg);
/* release every message without live views, close everything that can be: at exit */
PyObject *shutdown_all(PyObject *mod, PyObject *unused);

/* endpoint.c: what publishers and subscribers share */
void endpoint_dealloc(EndpointObject *self);
int endpoint_usable(EndpointObject *self);
PyObject *endpoint_close(EndpointObject *self, PyObject *unused);
PyObject *endpoint_exit(EndpointObject *self, PyObject *args);
extern PyMemberDef endpoint_members[];
/* the end of a publisher's or subscriber's method table: its peers ("subscribers" or
 * "publishers") connected now, waiting for them, close and the context manager */
#define ENDPOINT_METHODS_END(peers, close_doc)                                            \
    {peers, (PyCFunction)endpoint_peers, METH_NOARGS, peers " connected now"},            \
        {"wait_" peers, (PyCFunction)(void (*)(void))endpoint_wait_peers,                 \
         METH_VARARGS | METH_KEYWORDS,                                                    \
         "wait_" peers "(n=1, timeout=None) -> whether n " peers " are connected"},       \
        {"close", (PyCFunction)endpoint_close, METH_NOARGS, close_doc},                   \
        {"__enter__", context_enter, METH_NOARGS, NULL},                                  \
        {"__exit__", (PyCFunction)endpoint_exit, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}
extern PyGetSetDef endpoint_getset[];
/* the slots of the Publisher and Subscriber types */
#define ENDPOINT_TYPE_SLOTS                                                               \
    EXT_TYPE_SLOTS(EndpointObject, endpoint_dealloc), .tp_members = endpoint_members,     \
    .tp_getset = endpoint_getset
/* peers connected now (subscribers of a publisher, publishers of a subscriber) */
PyObject *endpoint_peers(EndpointObject *self, PyObject *unused);
/* wait for peers (subscribers of a publisher, publishers of a subscriber) with the GIL
 * released: returns True/False, or NULL */
PyObject *endpoint_wait_peers(EndpointObject *self, PyObject *args, PyObject *kw);

/* snapshot.c */
PyObject *domain_snapshot(DomainObject *self, PyObject *unused);

#endif
