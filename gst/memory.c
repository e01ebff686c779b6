/* GstMemory over shmbus blocks (memory.h). */
#include "memory.h"

GST_DEBUG_CATEGORY_EXTERN(shmbus_gst_debug);
#define GST_CAT_DEFAULT shmbus_gst_debug

typedef struct {
    GstAllocator parent;
} ShmbusAllocator;
typedef struct {
    GstAllocatorClass parent_class;
} ShmbusAllocatorClass;

GType shmbus_allocator_get_type(void);
G_DEFINE_TYPE(ShmbusAllocator, shmbus_allocator, GST_TYPE_ALLOCATOR)

/* Blocks come from a publisher's loan or a subscriber's receive, never from gst_allocator_alloc. */
static GstMemory *alloc_none(GstAllocator *a, gsize size, GstAllocationParams *params)
{
    (void)a, (void)size, (void)params;
    return NULL;
}

static void mem_free(GstAllocator *a, GstMemory *mem)
{
    (void)a;
    shmbus_memory *m = (shmbus_memory *)mem;
    int rc = shmbus_msg_release(m->msg);
    if (rc)
        GST_WARNING("releasing a block of topic %s: %s", m->conn->topic, shmbus_strerror(rc));
    shmbus_conn_unref(m->conn);
    g_free(m);
}

static gpointer mem_map(GstMemory *mem, gsize maxsize, GstMapFlags flags)
{
    (void)maxsize;
    shmbus_memory *m = (shmbus_memory *)mem;
    if ((flags & GST_MAP_WRITE) && !m->loaned)
        return NULL; /* published or received: other processes read it */
    return shmbus_msg_data(m->msg);
}

static void mem_unmap(GstMemory *mem) { (void)mem; }

static GstMemory *memory_new(GstAllocator *a, GstMemory *parent, shmbus_conn *conn,
                             shmbus_msg *msg, gsize maxsize, gsize offset, gsize size,
                             gboolean loaned)
{
    shmbus_memory *m = g_new0(shmbus_memory, 1);
    GstMemoryFlags flags = loaned ? 0 : GST_MEMORY_FLAG_READONLY;
    gst_memory_init(GST_MEMORY_CAST(m), flags, a, parent, maxsize, 0, offset, size);
    m->conn = shmbus_conn_ref(conn);
    m->msg = msg;
    m->loaned = loaned;
    return GST_MEMORY_CAST(m);
}

static GstMemory *mem_share(GstMemory *mem, gssize offset, gssize size)
{
    shmbus_memory *m = (shmbus_memory *)mem;
    GstMemory *parent = mem->parent ? mem->parent : mem;
    if (size == -1)
        size = (gssize)mem->size - offset;
    /* a share is a read-only view: the loan stays with the original */
    return memory_new(mem->allocator, parent, m->conn, shmbus_msg_clone(m->msg), mem->maxsize,
                      mem->offset + (gsize)offset, (gsize)size, FALSE);
}

static void shmbus_allocator_class_init(ShmbusAllocatorClass *klass)
{
    GstAllocatorClass *ac = GST_ALLOCATOR_CLASS(klass);
    ac->alloc = alloc_none;
    ac->free = mem_free;
}

static void shmbus_allocator_init(ShmbusAllocator *self)
{
    GstAllocator *a = GST_ALLOCATOR_CAST(self);
    a->mem_type = SHMBUS_MEMORY_TYPE;
    a->mem_map = mem_map;
    a->mem_unmap = mem_unmap;
    a->mem_share = mem_share;
    GST_OBJECT_FLAG_SET(self, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

static GstAllocator *allocator(void)
{
    static GstAllocator *the;
    if (g_once_init_enter(&the)) {
        GstAllocator *a = g_object_new(shmbus_allocator_get_type(), NULL);
        gst_object_ref_sink(a);
        GST_OBJECT_FLAG_SET(a, GST_OBJECT_FLAG_MAY_BE_LEAKED);
        g_once_init_leave(&the, a);
    }
    return the;
}

GstMemory *shmbus_memory_wrap(shmbus_conn *conn, shmbus_msg *m, gsize offset, gsize size,
                              gboolean loaned)
{
    gsize maxsize = loaned ? shmbus_msg_capacity(m) : shmbus_msg_length(m);
    return memory_new(allocator(), NULL, conn, m, maxsize, offset, size, loaned);
}

shmbus_memory *shmbus_memory_of(GstBuffer *buf)
{
    if (gst_buffer_n_memory(buf) != 1)
        return NULL;
    GstMemory *mem = gst_buffer_peek_memory(buf, 0);
    return gst_memory_is_type(mem, SHMBUS_MEMORY_TYPE) ? (shmbus_memory *)mem : NULL;
}

int shmbus_memory_publish(shmbus_memory *m, gboolean checksum)
{
    if (!m->loaned || !m->conn->pub)
        return SHMBUS_EINVAL;
    shmbus_msg *keep = shmbus_msg_clone(m->msg);
    int rc = shmbus_frame_publish(m->conn->pub, m->msg, checksum != FALSE);
    if (rc != 0 && rc != SHMBUS_ETRANSPORT) {
        shmbus_msg_release(keep); /* m->msg is still ours */
        return rc;
    }
    m->msg = keep;
    m->loaned = FALSE;
    GST_MINI_OBJECT_FLAG_SET(m, GST_MEMORY_FLAG_READONLY);
    return rc;
}
