/* shmbussrc: pushes each frame received on a topic as a buffer whose memory is the block
 * itself (memory.c), with GstVideoMeta for its strides and plane offsets. Caps come from the
 * frame header and are renegotiated when the size or format changes. A downstream that takes
 * no GstVideoMeta gets a copy in GStreamer's default layout when the frame's layout differs
 * (counted in "copied"). */
#include "src.h"

#include <gst/base/gstpushsrc.h>
#include <gst/video/video.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "format.h"
#include "memory.h"
#include "stats.h"

GST_DEBUG_CATEGORY_EXTERN(shmbus_gst_debug);
#define GST_CAT_DEFAULT shmbus_gst_debug

typedef struct {
    GstPushSrc parent;
    /* properties (object lock) */
    shmbus_where where;
    gboolean history, eos_on_idle;
    guint stats_interval_ms;
    /* streaming state */
    shmbus_conn *conn;
    GstPoll *poll;
    GstPollFD pfd;
    GstCaps *caps; /* of the last frame (object lock) */
    GstVideoInfo info;
    gboolean downstream_meta; /* downstream reads GstVideoMeta */
    gboolean seen_pub;
    guint64 last_post_ns, lost_posted;
    shmbus_src_counts counts; /* object lock */
} ShmbusSrc;
typedef struct {
    GstPushSrcClass parent_class;
} ShmbusSrcClass;

G_DEFINE_TYPE(ShmbusSrc, shmbus_src, GST_TYPE_PUSH_SRC)

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(SHMBUS_GST_CAPS));

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- counters ----------------------------------------------------------------------------- */

/* From any thread (the "stats" property): the connection may be closing meanwhile. */
static void refresh_counts(ShmbusSrc *self)
{
    GST_OBJECT_LOCK(self);
    shmbus_conn *conn = self->conn ? shmbus_conn_ref(self->conn) : NULL;
    GST_OBJECT_UNLOCK(self);
    shmbus_sub_counters c;
    if (conn && shmbus_sub_stats(conn->sub, &c) == 0) {
        GST_OBJECT_LOCK(self);
        self->counts.sub = c;
        GST_OBJECT_UNLOCK(self);
    }
    shmbus_conn_unref(conn);
}

static GstStructure *stats_of(ShmbusSrc *self)
{
    refresh_counts(self);
    GST_OBJECT_LOCK(self);
    shmbus_src_counts c = self->counts;
    GST_OBJECT_UNLOCK(self);
    return shmbus_stats_src(&c);
}

/* A "shmbussrc-stats" message when frames were lost since the last one, at most once per
 * stats-interval. */
static void maybe_post_stats(ShmbusSrc *self)
{
    GST_OBJECT_LOCK(self);
    guint interval = self->stats_interval_ms;
    GST_OBJECT_UNLOCK(self);
    uint64_t now = monotonic_ns();
    if (interval == 0 || now - self->last_post_ns < (uint64_t)interval * 1000000u)
        return;
    GstStructure *s = stats_of(self);
    guint64 lost = shmbus_stats_lost(&self->counts.sub);
    if (lost == self->lost_posted) {
        gst_structure_free(s);
        return;
    }
    GST_INFO_OBJECT(self, "%" G_GUINT64_FORMAT " frames lost so far", lost);
    self->lost_posted = lost;
    self->last_post_ns = now;
    shmbus_stats_post(GST_ELEMENT(self), s);
}

/* ---- state ------------------------------------------------------------------------------ */

static gboolean src_start(GstBaseSrc *bs)
{
    ShmbusSrc *self = (ShmbusSrc *)bs;
    GST_OBJECT_LOCK(self);
    gboolean history = self->history;
    memset(&self->counts, 0, sizeof self->counts);
    gst_caps_replace(&self->caps, NULL);
    GST_OBJECT_UNLOCK(self);
    shmbus_conn *conn = shmbus_conn_open(GST_ELEMENT(self), &self->where, FALSE, history);
    if (!conn)
        return FALSE;
    int fd;
    int rc = shmbus_sub_fd(conn->sub, &fd);
    if (rc) {
        GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("shmbus: %s", shmbus_strerror(rc)),
                          ("%s", shmbus_last_error()));
        shmbus_conn_unref(conn);
        return FALSE;
    }
    GST_OBJECT_LOCK(self);
    self->conn = conn;
    GST_OBJECT_UNLOCK(self);
    gst_poll_fd_init(&self->pfd);
    self->pfd.fd = fd;
    gst_poll_add_fd(self->poll, &self->pfd);
    gst_poll_fd_ctl_read(self->poll, &self->pfd, TRUE);
    self->seen_pub = FALSE;
    self->downstream_meta = FALSE;
    self->last_post_ns = 0;
    self->lost_posted = 0;
    gst_video_info_init(&self->info);
    return TRUE;
}

static gboolean src_stop(GstBaseSrc *bs)
{
    ShmbusSrc *self = (ShmbusSrc *)bs;
    if (self->conn) {
        shmbus_stats_post(GST_ELEMENT(self), stats_of(self));
        gst_poll_remove_fd(self->poll, &self->pfd);
    }
    GST_OBJECT_LOCK(self);
    shmbus_conn *conn = self->conn;
    self->conn = NULL;
    GST_OBJECT_UNLOCK(self);
    shmbus_conn_unref(conn); /* buffers still downstream keep it open */
    return TRUE;
}

static gboolean src_unlock(GstBaseSrc *bs)
{
    gst_poll_set_flushing(((ShmbusSrc *)bs)->poll, TRUE);
    return TRUE;
}

static gboolean src_unlock_stop(GstBaseSrc *bs)
{
    gst_poll_set_flushing(((ShmbusSrc *)bs)->poll, FALSE);
    return TRUE;
}

/* ---- caps --------------------------------------------------------------------------------- */

static GstCaps *src_get_caps(GstBaseSrc *bs, GstCaps *filter)
{
    ShmbusSrc *self = (ShmbusSrc *)bs;
    GST_OBJECT_LOCK(self);
    GstCaps *caps = self->caps ? gst_caps_ref(self->caps)
                               : gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(bs));
    GST_OBJECT_UNLOCK(self);
    if (filter) {
        GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(caps);
        caps = both;
    }
    return caps;
}

/* The caps are the last frame's; until one came there is nothing to negotiate. */
static gboolean src_negotiate(GstBaseSrc *bs)
{
    ShmbusSrc *self = (ShmbusSrc *)bs;
    GST_OBJECT_LOCK(self);
    GstCaps *caps = self->caps ? gst_caps_ref(self->caps) : NULL;
    GST_OBJECT_UNLOCK(self);
    if (!caps)
        return TRUE;
    gboolean ok = gst_pad_peer_query_accept_caps(GST_BASE_SRC_PAD(bs), caps) &&
                  gst_base_src_set_caps(bs, caps);
    gst_caps_unref(caps);
    return ok;
}

static gboolean src_decide_allocation(GstBaseSrc *bs, GstQuery *query)
{
    ShmbusSrc *self = (ShmbusSrc *)bs;
    self->downstream_meta = gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
    GST_DEBUG_OBJECT(self, "downstream %s GstVideoMeta",
                     self->downstream_meta ? "reads" : "does not read");
    return GST_BASE_SRC_CLASS(shmbus_src_parent_class)->decide_allocation(bs, query);
}

/* New caps for a frame of another size or format than the last. */
static GstFlowReturn renegotiate(ShmbusSrc *self, const GstVideoInfo *info)
{
    GstCaps *caps = gst_video_info_to_caps(info);
    GST_INFO_OBJECT(self, "frames are now %" GST_PTR_FORMAT, caps);
    GST_OBJECT_LOCK(self);
    gst_caps_take(&self->caps, caps);
    GST_OBJECT_UNLOCK(self);
    self->info = *info;
    if (!gst_base_src_negotiate(GST_BASE_SRC(self))) {
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Downstream does not accept the frames of "
                                                    "topic %s", self->conn->topic),
                          ("caps %" GST_PTR_FORMAT, caps));
        return GST_FLOW_NOT_NEGOTIATED;
    }
    return GST_FLOW_OK;
}

/* ---- frames ------------------------------------------------------------------------------- */

/* Wait for the next message; EOS when eos-on-idle and the publishers have left. */
static GstFlowReturn next_message(ShmbusSrc *self, shmbus_msg **m)
{
    GST_OBJECT_LOCK(self);
    gboolean eos_on_idle = self->eos_on_idle;
    GST_OBJECT_UNLOCK(self);
    for (;;) {
        int rc = shmbus_sub_recv(self->conn->sub, 0, m);
        if (rc == 0) {
            self->seen_pub = TRUE;
            return GST_FLOW_OK;
        }
        if (rc != SHMBUS_EAGAIN) {
            GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Receiving on %s: %s", self->conn->topic,
                                                     shmbus_strerror(rc)),
                              ("%s", shmbus_last_error()));
            return GST_FLOW_ERROR;
        }
        refresh_counts(self); /* frames lost also show that a publisher was there */
        int pubs = shmbus_sub_publishers(self->conn->sub);
        if (pubs > 0 || shmbus_stats_lost(&self->counts.sub) > 0)
            self->seen_pub = TRUE;
        if (pubs <= 0 && self->seen_pub && eos_on_idle) {
            GST_INFO_OBJECT(self, "the publishers of %s have left: EOS", self->conn->topic);
            return GST_FLOW_EOS;
        }
        maybe_post_stats(self);
        /* 100 ms: also how often the publishers are counted */
        if (gst_poll_wait(self->poll, 100 * GST_MSECOND) < 0 && errno == EBUSY)
            return GST_FLOW_FLUSHING;
    }
}

/* The pipeline's running time of the frame's capture (CLOCK_MONOTONIC, as the monotonic
 * system clock counts), or of now on another clock. */
static GstClockTime capture_pts(ShmbusSrc *self, const shmbus_frame_hdr *h)
{
    GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
    if (!clock)
        return GST_CLOCK_TIME_NONE;
    GstClockType type = GST_CLOCK_TYPE_REALTIME;
    if (GST_IS_SYSTEM_CLOCK(clock))
        g_object_get(clock, "clock-type", &type, NULL);
    uint64_t now = gst_clock_get_time(clock);
    gst_object_unref(clock);
    uint64_t t = type == GST_CLOCK_TYPE_MONOTONIC && h->capture_ns && h->capture_ns <= now
                     ? h->capture_ns
                     : now;
    GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
    return t > base ? t - base : 0;
}

/* The frame as a buffer: the block itself, or a copy in GStreamer's layout for a downstream
 * that would ignore the GstVideoMeta. */
static GstBuffer *frame_buffer(ShmbusSrc *self, shmbus_msg *m, const shmbus_frame_hdr *h)
{
    GstBuffer *buf = gst_buffer_new();
    gst_buffer_append_memory(buf, shmbus_memory_wrap(self->conn, m, h->payload_offset,
                                                     h->payload_size, FALSE));
    gsize offset[GST_VIDEO_MAX_PLANES] = {0};
    gint stride[GST_VIDEO_MAX_PLANES] = {0};
    for (unsigned p = 0; p < h->nplanes; p++) {
        offset[p] = h->plane_offset[p];
        stride[p] = (gint)h->stride[p];
    }
    gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE,
                                   GST_VIDEO_INFO_FORMAT(&self->info), h->width, h->height,
                                   h->nplanes, offset, stride);
    if (self->downstream_meta || shmbus_format_default_layout(h, &self->info))
        return buf;
    GstBuffer *copy = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&self->info), NULL);
    GstVideoFrame src, dst;
    gboolean ok = FALSE;
    if (gst_video_frame_map(&src, &self->info, buf, GST_MAP_READ)) {
        if (gst_video_frame_map(&dst, &self->info, copy, GST_MAP_WRITE)) {
            ok = gst_video_frame_copy(&dst, &src);
            gst_video_frame_unmap(&dst);
        }
        gst_video_frame_unmap(&src);
    }
    gst_buffer_unref(buf);
    if (!ok) {
        gst_buffer_unref(copy);
        return NULL;
    }
    GST_DEBUG_OBJECT(self, "copied frame %" G_GUINT64_FORMAT " into GStreamer's layout: "
                           "downstream takes no GstVideoMeta", h->frame_number);
    GST_OBJECT_LOCK(self);
    self->counts.copied++;
    GST_OBJECT_UNLOCK(self);
    return copy;
}

static GstFlowReturn src_create(GstPushSrc *ps, GstBuffer **out)
{
    ShmbusSrc *self = (ShmbusSrc *)ps;
    shmbus_msg *m;
    GstFlowReturn ret = next_message(self, &m);
    if (ret != GST_FLOW_OK)
        return ret;
    const shmbus_frame_hdr *h;
    GstVideoInfo info;
    if (shmbus_frame_get(m, &h) != 0) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Topic %s carries a message that is not a "
                                                 "frame GStreamer can take", self->conn->topic),
                          ("%s", shmbus_last_error()));
        shmbus_msg_release(m);
        return GST_FLOW_ERROR;
    }
    if (!shmbus_format_info(h, &info)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Topic %s carries %ux%u frames of pixel format "
                                                 "%s, which GStreamer does not have",
                                                 self->conn->topic, h->width, h->height,
                                                 shmbus_pixfmt_name((int)h->format)),
                          (NULL));
        shmbus_msg_release(m);
        return GST_FLOW_ERROR;
    }
    if (!self->caps || !gst_video_info_is_equal(&info, &self->info) ||
        gst_pad_check_reconfigure(GST_BASE_SRC_PAD(self))) {
        if ((ret = renegotiate(self, &info)) != GST_FLOW_OK) {
            shmbus_msg_release(m);
            return ret;
        }
    }
    GstClockTime pts = capture_pts(self, h);
    guint64 number = h->frame_number;
    GstClockTime duration =
        GST_VIDEO_INFO_FPS_N(&info) > 0
            ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&info),
                                        GST_VIDEO_INFO_FPS_N(&info))
            : GST_CLOCK_TIME_NONE;
    GstBuffer *buf = frame_buffer(self, m, h); /* m belongs to the buffer now */
    if (!buf) {
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot copy a frame"), (NULL));
        return GST_FLOW_ERROR;
    }
    GST_BUFFER_PTS(buf) = pts;
    GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION(buf) = duration;
    GST_BUFFER_OFFSET(buf) = number;
    GST_OBJECT_LOCK(self);
    self->counts.pushed++;
    GST_OBJECT_UNLOCK(self);
    maybe_post_stats(self);
    *out = buf;
    return GST_FLOW_OK;
}

/* ---- properties --------------------------------------------------------------------------- */

static GstStructure *stats_property(GObject *obj) { return stats_of((ShmbusSrc *)obj); }

static const shmbus_setting own_settings[] = {
    {"history", "History", "start with the frames the publishers still hold (a late joiner's "
     "first frames)", G_TYPE_BOOLEAN, G_STRUCT_OFFSET(ShmbusSrc, history), 0, 1, FALSE},
    {"eos-on-idle", "EOS on idle", "end the stream (EOS) once the topic's publishers have left "
     "and every frame they sent has been pushed", G_TYPE_BOOLEAN,
     G_STRUCT_OFFSET(ShmbusSrc, eos_on_idle), 0, 1, FALSE},
    {"stats-interval", "Stats interval", "post a shmbussrc-stats element message when frames "
     "were lost, at most once per this many ms (0: only when stopping)", G_TYPE_UINT,
     G_STRUCT_OFFSET(ShmbusSrc, stats_interval_ms), 0, G_MAXUINT, 1000},
};

static const shmbus_settings settings = {
    .topic_blurb = "shmbus topic to receive camera frames from",
    .where_offset = G_STRUCT_OFFSET(ShmbusSrc, where),
    .own = own_settings,
    .n_own = G_N_ELEMENTS(own_settings),
    .stats_blurb = "shmbussrc-stats: received, expired, dropped, overflow, invalid, lost, "
                   "pushed, copied, held",
    .stats = stats_property,
};

static void finalize(GObject *obj)
{
    ShmbusSrc *self = (ShmbusSrc *)obj;
    shmbus_settings_clear(&settings, obj);
    gst_caps_replace(&self->caps, NULL);
    gst_poll_free(self->poll);
    G_OBJECT_CLASS(shmbus_src_parent_class)->finalize(obj);
}

static void shmbus_src_class_init(ShmbusSrcClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
    oc->finalize = finalize;
    shmbus_settings_install(&settings, oc);
    gst_element_class_add_static_pad_template(ec, &src_template);
    gst_element_class_set_static_metadata(ec, "shmbus video source", "Source/Video",
        "Receives camera frames from a shmbus topic; buffers are the shared-memory blocks",
        "shmbus");
    bc->start = src_start;
    bc->stop = src_stop;
    bc->unlock = src_unlock;
    bc->unlock_stop = src_unlock_stop;
    bc->get_caps = src_get_caps;
    bc->negotiate = src_negotiate;
    bc->decide_allocation = src_decide_allocation;
    GST_PUSH_SRC_CLASS(klass)->create = src_create;
}

static void shmbus_src_init(ShmbusSrc *self)
{
    shmbus_settings_init(&settings, G_OBJECT(self));
    self->poll = gst_poll_new(TRUE);
    gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
