/* shmbussink's buffer pool of loaned blocks (pool.h). */
#include "pool.h"

#include <gst/video/gstvideopool.h>

#include "format.h"
#include "memory.h"

GST_DEBUG_CATEGORY_EXTERN(shmbus_gst_debug);
#define GST_CAT_DEFAULT shmbus_gst_debug

typedef struct {
    GstBufferPool parent;
    shmbus_conn *conn;
    GstVideoInfo info;
    shmbus_frame_hdr hdr; /* geometry of the configured caps */
} ShmbusPool;
typedef struct {
    GstBufferPoolClass parent_class;
} ShmbusPoolClass;

GType shmbus_pool_get_type(void);
G_DEFINE_TYPE(ShmbusPool, shmbus_pool, GST_TYPE_BUFFER_POOL)

static const gchar **get_options(GstBufferPool *pool)
{
    (void)pool;
    static const gchar *options[] = {GST_BUFFER_POOL_OPTION_VIDEO_META, NULL};
    return options;
}

static gboolean set_config(GstBufferPool *pool, GstStructure *config)
{
    ShmbusPool *self = (ShmbusPool *)pool;
    GstCaps *caps;
    guint size, min, max;
    if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max) || !caps ||
        !gst_video_info_from_caps(&self->info, caps)) {
        GST_WARNING_OBJECT(pool, "no usable video caps in the configuration");
        return FALSE;
    }
    char why[160];
    if (!shmbus_format_header(&self->info, &self->hdr, why, sizeof why)) {
        GST_WARNING_OBJECT(pool, "%" GST_PTR_FORMAT ": %s", caps, why);
        return FALSE;
    }
    /* every buffer is a new loan: nothing is allocated ahead */
    gst_buffer_pool_config_set_params(config, caps, (guint)GST_VIDEO_INFO_SIZE(&self->info), 0,
                                      0);
    return GST_BUFFER_POOL_CLASS(shmbus_pool_parent_class)->set_config(pool, config);
}

/* Loan a block, waiting while the topic's pool is full (every block held by the publisher's
 * history, subscribers or buffers on their way) unless the pool is flushing. */
static GstFlowReturn alloc_buffer(GstBufferPool *pool, GstBuffer **out,
                                  GstBufferPoolAcquireParams *params)
{
    ShmbusPool *self = (ShmbusPool *)pool;
    shmbus_msg *m = NULL;
    shmbus_frame_hdr *h;
    for (;;) {
        int rc = shmbus_frame_loan(self->conn->pub, &self->hdr, &m, &h);
        if (rc == 0)
            break;
        if (rc != SHMBUS_EFULL && rc != SHMBUS_ETIMEDOUT) {
            GST_ERROR_OBJECT(pool, "loaning a block on %s: %s (%s)", self->conn->topic,
                             shmbus_strerror(rc), shmbus_last_error());
            return GST_FLOW_ERROR;
        }
        if (GST_BUFFER_POOL_IS_FLUSHING(pool))
            return GST_FLOW_FLUSHING;
        if (params && (params->flags & GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT))
            return GST_FLOW_EOS;
        GST_DEBUG_OBJECT(pool, "pool of %s full, waiting", self->conn->topic);
        if (rc == SHMBUS_EFULL)
            g_usleep(1000); /* the topic does not wait: poll gently */
    }
    GstBuffer *buf = gst_buffer_new();
    gst_buffer_append_memory(buf, shmbus_memory_wrap(self->conn, m, h->payload_offset,
                                                     GST_VIDEO_INFO_SIZE(&self->info), TRUE));
    /* always: the layout is GStreamer's default, so an element that ignores the meta reads
     * the same planes */
    const GstVideoInfo *i = &self->info;
    gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(i),
                                   GST_VIDEO_INFO_WIDTH(i), GST_VIDEO_INFO_HEIGHT(i),
                                   GST_VIDEO_INFO_N_PLANES(i), (gsize *)i->offset,
                                   (gint *)i->stride);
    *out = buf;
    return GST_FLOW_OK;
}

/* No recycling: see pool.h. */
static GstFlowReturn acquire_buffer(GstBufferPool *pool, GstBuffer **out,
                                    GstBufferPoolAcquireParams *params)
{
    if (GST_BUFFER_POOL_IS_FLUSHING(pool))
        return GST_FLOW_FLUSHING;
    return alloc_buffer(pool, out, params);
}

static void release_buffer(GstBufferPool *pool, GstBuffer *buf)
{
    (void)pool;
    gst_buffer_unref(buf); /* frees the memory: releases the block */
}

static gboolean start(GstBufferPool *pool)
{
    (void)pool;
    return TRUE; /* nothing to allocate ahead */
}

static void finalize(GObject *obj)
{
    ShmbusPool *self = (ShmbusPool *)obj;
    shmbus_conn_unref(self->conn);
    G_OBJECT_CLASS(shmbus_pool_parent_class)->finalize(obj);
}

static void shmbus_pool_class_init(ShmbusPoolClass *klass)
{
    GstBufferPoolClass *pc = GST_BUFFER_POOL_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = finalize;
    pc->get_options = get_options;
    pc->set_config = set_config;
    pc->start = start;
    pc->alloc_buffer = alloc_buffer;
    pc->acquire_buffer = acquire_buffer;
    pc->release_buffer = release_buffer;
}

static void shmbus_pool_init(ShmbusPool *self) { gst_video_info_init(&self->info); }

GstBufferPool *shmbus_pool_new(shmbus_conn *conn)
{
    ShmbusPool *self = g_object_new(shmbus_pool_get_type(), NULL);
    gst_object_ref_sink(self);
    self->conn = shmbus_conn_ref(conn);
    return GST_BUFFER_POOL_CAST(self);
}
