/* shmbussink: each buffer becomes one camera frame on a topic (docs/gstreamer.md).
 *
 * Zero copy: the ALLOCATION query gets a pool (pool.c) whose buffers are loaned blocks with
 * the frame header already in place; render() finds such a block, stamps the frame number and
 * capture time into its header and publishes it. Any other buffer is copied once into a
 * loaned block (counted in "copied", with a debug line). */
#include "sink.h"

#include <gst/base/gstbasesink.h>
#include <gst/video/video.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "format.h"
#include "memory.h"
#include "pool.h"
#include "stats.h"

GST_DEBUG_CATEGORY_EXTERN(shmbus_gst_debug);
#define GST_CAT_DEFAULT shmbus_gst_debug

typedef struct {
    GstBaseSink parent;
    /* properties (object lock) */
    shmbus_where where;
    guint wait_subscribers, wait_timeout_ms, linger_ms;
    gboolean checksum;
    /* streaming state: set in start/set_caps, used by the streaming thread */
    shmbus_conn *conn;
    GstVideoInfo info;
    GstBufferPool *copy_pool; /* for buffers from elsewhere */
    gboolean waited;
    gint unlocked;
    shmbus_sink_counts counts; /* object lock */
} ShmbusSink;
typedef struct {
    GstBaseSinkClass parent_class;
} ShmbusSinkClass;

G_DEFINE_TYPE(ShmbusSink, shmbus_sink, GST_TYPE_BASE_SINK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(SHMBUS_GST_CAPS));

static GstStructure *stats_of(ShmbusSink *self)
{
    GST_OBJECT_LOCK(self);
    shmbus_sink_counts c = self->counts;
    GST_OBJECT_UNLOCK(self);
    return shmbus_stats_sink(&c);
}

/* ---- state ---------------------------------------------------------------------------- */

static gboolean sink_start(GstBaseSink *bs)
{
    ShmbusSink *self = (ShmbusSink *)bs;
    GST_OBJECT_LOCK(self);
    memset(&self->counts, 0, sizeof self->counts);
    GST_OBJECT_UNLOCK(self);
    self->conn = shmbus_conn_open(GST_ELEMENT(self), &self->where, TRUE, FALSE);
    self->waited = FALSE;
    return self->conn != NULL;
}

static void drop_copy_pool(ShmbusSink *self)
{
    if (self->copy_pool) {
        gst_buffer_pool_set_active(self->copy_pool, FALSE);
        gst_object_unref(self->copy_pool);
        self->copy_pool = NULL;
    }
}

static gboolean sink_stop(GstBaseSink *bs)
{
    ShmbusSink *self = (ShmbusSink *)bs;
    if (self->conn) {
        shmbus_stats_post(GST_ELEMENT(self), stats_of(self));
        GST_INFO_OBJECT(self, "published %" G_GUINT64_FORMAT " frames (%" G_GUINT64_FORMAT
                              " copied)", self->counts.published, self->counts.copied);
    }
    drop_copy_pool(self);
    shmbus_conn_unref(self->conn); /* buffers still out keep it open */
    self->conn = NULL;
    return TRUE;
}

static GstBufferPool *configured_pool(ShmbusSink *self, GstCaps *caps, const GstVideoInfo *info)
{
    GstBufferPool *pool = shmbus_pool_new(self->conn);
    GstStructure *config = gst_buffer_pool_get_config(pool);
    gst_buffer_pool_config_set_params(config, caps, (guint)GST_VIDEO_INFO_SIZE(info), 0, 0);
    gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
    if (!gst_buffer_pool_set_config(pool, config)) {
        gst_object_unref(pool);
        return NULL;
    }
    return pool;
}

static gboolean sink_set_caps(GstBaseSink *bs, GstCaps *caps)
{
    ShmbusSink *self = (ShmbusSink *)bs;
    GstVideoInfo info;
    shmbus_frame_hdr h;
    char why[160];
    if (!gst_video_info_from_caps(&info, caps))
        return FALSE;
    if (!shmbus_format_header(&info, &h, why, sizeof why)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Frames of %" GST_PTR_FORMAT " cannot be sent",
                                                 caps), ("%s", why));
        return FALSE;
    }
    if (!self->conn)
        return FALSE;
    drop_copy_pool(self);
    self->info = info;
    self->copy_pool = configured_pool(self, caps, &info);
    GST_INFO_OBJECT(self, "caps %" GST_PTR_FORMAT ": %" G_GUINT64_FORMAT "-byte messages",
                    caps, (guint64)shmbus_frame_message_size(&h));
    return self->copy_pool != NULL;
}

/* Offer upstream buffers that are loaned blocks. */
static gboolean sink_propose_allocation(GstBaseSink *bs, GstQuery *query)
{
    ShmbusSink *self = (ShmbusSink *)bs;
    GstCaps *caps;
    gboolean need_pool;
    GstVideoInfo info;
    gst_query_parse_allocation(query, &caps, &need_pool);
    if (!caps || !self->conn || !gst_video_info_from_caps(&info, caps))
        return FALSE;
    GstBufferPool *pool = configured_pool(self, caps, &info);
    if (!pool)
        return FALSE;
    gst_query_add_allocation_pool(query, pool, (guint)GST_VIDEO_INFO_SIZE(&info), 0, 0);
    gst_object_unref(pool);
    gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
    GST_DEBUG_OBJECT(self, "proposed a pool of loaned blocks for %" GST_PTR_FORMAT, caps);
    return TRUE;
}

static gboolean sink_unlock(GstBaseSink *bs)
{
    g_atomic_int_set(&((ShmbusSink *)bs)->unlocked, 1);
    return TRUE;
}

static gboolean sink_unlock_stop(GstBaseSink *bs)
{
    g_atomic_int_set(&((ShmbusSink *)bs)->unlocked, 0);
    return TRUE;
}

/* ---- frames --------------------------------------------------------------------------- */

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* When the frame was captured, on CLOCK_MONOTONIC: the buffer's timestamp on the pipeline's
 * clock when that clock is the monotonic system clock, never later than now; else now. */
static uint64_t capture_ns(ShmbusSink *self, GstBuffer *buf)
{
    uint64_t now = monotonic_ns();
    GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
    if (!clock)
        return now;
    uint64_t t = now;
    GstClockType type = GST_CLOCK_TYPE_REALTIME;
    if (GST_IS_SYSTEM_CLOCK(clock))
        g_object_get(clock, "clock-type", &type, NULL);
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (type == GST_CLOCK_TYPE_MONOTONIC && GST_CLOCK_TIME_IS_VALID(pts)) {
        GstBaseSink *bs = GST_BASE_SINK(self);
        GstClockTime rt = gst_segment_to_running_time(&bs->segment, GST_FORMAT_TIME, pts);
        GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
        if (GST_CLOCK_TIME_IS_VALID(rt) && base + rt < now)
            t = base + rt;
    }
    gst_object_unref(clock);
    return t;
}

/* wait-subscribers: before the first frame, until that many subscribers are connected. */
static void wait_for_subscribers(ShmbusSink *self)
{
    GST_OBJECT_LOCK(self);
    int want = (int)self->wait_subscribers;
    guint timeout = self->wait_timeout_ms;
    GST_OBJECT_UNLOCK(self);
    self->waited = TRUE;
    if (want <= 0)
        return;
    uint64_t deadline = monotonic_ns() + (uint64_t)timeout * 1000000u;
    while (shmbus_pub_wait_subscribers(self->conn->pub, want, 50) != 0) {
        if (g_atomic_int_get(&self->unlocked))
            return;
        if (monotonic_ns() >= deadline) {
            GST_ELEMENT_WARNING(self, RESOURCE, BUSY,
                                ("%d of %d subscribers connected after %u ms: publishing anyway",
                                 shmbus_pub_subscribers(self->conn->pub), want, timeout),
                                (NULL));
            return;
        }
    }
    GST_INFO_OBJECT(self, "%d subscribers connected", want);
}

/* Has every subscriber of the topic taken (or lost, counted) the frames published so far? */
static gboolean subscribers_caught_up(ShmbusSink *self, guint64 published)
{
    shmbus_snapshot *snap;
    if (shmbus_snapshot_take(self->conn->domain, &snap) != 0)
        return TRUE;
    gboolean done = TRUE;
    for (unsigned t = 0; t < snap->ntopics; t++) {
        const shmbus_topic_info *ti = &snap->topics[t];
        if (strcmp(ti->def.name, self->conn->topic) != 0)
            continue;
        for (unsigned i = 0; i < ti->nsubs; i++) {
            const shmbus_sub_info *si = &ti->subs[i];
            guint64 seen = si->received + si->expired + si->dropped + si->overflow + si->invalid;
            if (si->alive && seen < published)
                done = FALSE;
        }
    }
    shmbus_snapshot_free(snap);
    return done;
}

/* At EOS: keep the publisher, and with it the frames its history holds, until the
 * subscribers have taken them or linger-ms has passed (the pipeline's owner closes the
 * publisher when it stops the pipeline after EOS). */
static void linger(ShmbusSink *self)
{
    GST_OBJECT_LOCK(self);
    guint64 published = self->counts.published;
    guint ms = self->linger_ms;
    GST_OBJECT_UNLOCK(self);
    uint64_t deadline = monotonic_ns() + (uint64_t)ms * 1000000u;
    while (published > 0 && !g_atomic_int_get(&self->unlocked) &&
           !subscribers_caught_up(self, published)) {
        if (monotonic_ns() >= deadline) {
            GST_INFO_OBJECT(self, "EOS: subscribers still behind after %u ms", ms);
            return;
        }
        g_usleep(5000);
    }
}

static gboolean sink_event(GstBaseSink *bs, GstEvent *event)
{
    ShmbusSink *self = (ShmbusSink *)bs;
    if (GST_EVENT_TYPE(event) == GST_EVENT_EOS && self->conn)
        linger(self);
    return GST_BASE_SINK_CLASS(shmbus_sink_parent_class)->event(bs, event);
}

/* A block of this sink's publisher that upstream rendered into, with a header for the caps? */
static shmbus_memory *own_block(ShmbusSink *self, GstBuffer *buf)
{
    shmbus_memory *m = shmbus_memory_of(buf);
    if (!m || !m->loaned || m->conn != self->conn)
        return NULL;
    const shmbus_frame_hdr *h = shmbus_memory_header(m);
    GstMemory *mem = GST_MEMORY_CAST(m);
    if (mem->offset != h->payload_offset || mem->size != h->payload_size ||
        h->format != (uint32_t)shmbus_format_from_gst(GST_VIDEO_INFO_FORMAT(&self->info)) ||
        h->width != (uint32_t)GST_VIDEO_INFO_WIDTH(&self->info) ||
        h->height != (uint32_t)GST_VIDEO_INFO_HEIGHT(&self->info))
        return NULL;
    return m;
}

/* Copy buf into a new loaned block (a buffer of the copy pool). */
static GstFlowReturn copy_in(ShmbusSink *self, GstBuffer *buf, GstBuffer **out)
{
    if (!gst_buffer_pool_is_active(self->copy_pool) &&
        !gst_buffer_pool_set_active(self->copy_pool, TRUE))
        return GST_FLOW_ERROR;
    GstFlowReturn ret = gst_buffer_pool_acquire_buffer(self->copy_pool, out, NULL);
    if (ret != GST_FLOW_OK)
        return ret;
    GstVideoFrame src, dst;
    if (!gst_video_frame_map(&src, &self->info, buf, GST_MAP_READ)) {
        gst_buffer_unref(*out);
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot read an incoming buffer"), (NULL));
        return GST_FLOW_ERROR;
    }
    gboolean ok = gst_video_frame_map(&dst, &self->info, *out, GST_MAP_WRITE);
    if (ok) {
        ok = gst_video_frame_copy(&dst, &src);
        gst_video_frame_unmap(&dst);
    }
    gst_video_frame_unmap(&src);
    if (!ok) {
        gst_buffer_unref(*out);
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot copy a frame into shared memory"),
                          (NULL));
        return GST_FLOW_ERROR;
    }
    if (self->counts.copied == 0)
        GST_INFO_OBJECT(self, "upstream buffers are not blocks of this sink's pool: each frame "
                              "is copied once into a loaned block");
    GST_DEBUG_OBJECT(self, "copied a frame into a loaned block (%" G_GSIZE_FORMAT " bytes)",
                     gst_buffer_get_size(buf));
    return GST_FLOW_OK;
}

static GstFlowReturn sink_render(GstBaseSink *bs, GstBuffer *buf)
{
    ShmbusSink *self = (ShmbusSink *)bs;
    if (!self->waited)
        wait_for_subscribers(self);
    GstBuffer *copy = NULL;
    shmbus_memory *m = own_block(self, buf);
    if (!m) {
        GstFlowReturn ret = copy_in(self, buf, &copy);
        if (ret != GST_FLOW_OK)
            return ret;
        m = shmbus_memory_of(copy);
    }
    shmbus_frame_hdr *h = shmbus_memory_header(m);
    GST_OBJECT_LOCK(self);
    h->frame_number = self->counts.published;
    gboolean checksum = self->checksum;
    GST_OBJECT_UNLOCK(self);
    h->capture_ns = capture_ns(self, buf);
    int rc = shmbus_memory_publish(m, checksum);
    if (copy)
        gst_buffer_unref(copy);
    if (rc == SHMBUS_ETRANSPORT) {
        GST_WARNING_OBJECT(self, "publish: %s", shmbus_last_error());
    } else if (rc) {
        GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Cannot publish on %s: %s", self->conn->topic,
                                                  shmbus_strerror(rc)),
                          ("%s", shmbus_last_error()));
        return GST_FLOW_ERROR;
    }
    GST_OBJECT_LOCK(self);
    self->counts.published++;
    if (copy)
        self->counts.copied++;
    else
        self->counts.zero_copy++;
    self->counts.subscribers = shmbus_pub_subscribers(self->conn->pub);
    GST_OBJECT_UNLOCK(self);
    return GST_FLOW_OK;
}

/* ---- properties ----------------------------------------------------------------------- */

static GstStructure *stats_property(GObject *obj) { return stats_of((ShmbusSink *)obj); }

static const shmbus_setting own_settings[] = {
    {"wait-subscribers", "Wait for subscribers", "before the first frame, wait until this many "
     "subscribers are connected (frames published before a subscriber connects are not for it)",
     G_TYPE_UINT, G_STRUCT_OFFSET(ShmbusSink, wait_subscribers), 0, 48, 0},
    {"wait-timeout", "Wait timeout", "give up waiting for subscribers after this many ms (a "
     "warning)", G_TYPE_UINT, G_STRUCT_OFFSET(ShmbusSink, wait_timeout_ms), 0, G_MAXUINT, 10000},
    {"checksum", "Checksum", "hash every frame's pixels into its header (about 1 ms per 8 MB) "
     "so subscribers can verify them", G_TYPE_BOOLEAN, G_STRUCT_OFFSET(ShmbusSink, checksum), 0,
     1, FALSE},
    {"linger-ms", "Linger", "at EOS, wait up to this many ms until every subscriber has taken "
     "the frames published (the publisher's history holds them only while it is open)",
     G_TYPE_UINT, G_STRUCT_OFFSET(ShmbusSink, linger_ms), 0, G_MAXUINT, 2000},
};

static const shmbus_settings settings = {
    .topic_blurb = "shmbus topic the frames are published on",
    .where_offset = G_STRUCT_OFFSET(ShmbusSink, where),
    .own = own_settings,
    .n_own = G_N_ELEMENTS(own_settings),
    .stats_blurb = "shmbussink-stats: published, zero-copy, copied, subscribers",
    .stats = stats_property,
};

static void finalize(GObject *obj)
{
    shmbus_settings_clear(&settings, obj);
    G_OBJECT_CLASS(shmbus_sink_parent_class)->finalize(obj);
}

static void shmbus_sink_class_init(ShmbusSinkClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);
    oc->finalize = finalize;
    shmbus_settings_install(&settings, oc);
    gst_element_class_add_static_pad_template(ec, &sink_template);
    gst_element_class_set_static_metadata(ec, "shmbus video sink", "Sink/Video",
        "Publishes raw video frames on a shmbus topic, zero copy from upstream where possible",
        "shmbus");
    bc->start = sink_start;
    bc->stop = sink_stop;
    bc->set_caps = sink_set_caps;
    bc->propose_allocation = sink_propose_allocation;
    bc->unlock = sink_unlock;
    bc->unlock_stop = sink_unlock_stop;
    bc->render = sink_render;
    bc->event = sink_event;
}

static void shmbus_sink_init(ShmbusSink *self)
{
    shmbus_settings_init(&settings, G_OBJECT(self));
    gst_video_info_init(&self->info);
}
