/* Frame header <-> GstVideoInfo (format.h). */
#include "format.h"

#include <string.h>

static const struct {
    shmbus_pixfmt shm;
    GstVideoFormat gst;
} formats[] = {
    {SHMBUS_PIXFMT_RGB24, GST_VIDEO_FORMAT_RGB},    {SHMBUS_PIXFMT_GRAY8, GST_VIDEO_FORMAT_GRAY8},
    {SHMBUS_PIXFMT_YUV420P, GST_VIDEO_FORMAT_I420}, {SHMBUS_PIXFMT_YUV422P, GST_VIDEO_FORMAT_Y42B},
    {SHMBUS_PIXFMT_YUV444P, GST_VIDEO_FORMAT_Y444}, {SHMBUS_PIXFMT_YUYV422, GST_VIDEO_FORMAT_YUY2},
};

/* GST_VIDEO_FORMAT_UNKNOWN for a format GStreamer lacks. */
static GstVideoFormat shmbus_format_to_gst(uint32_t pixfmt)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
        if ((uint32_t)formats[i].shm == pixfmt)
            return formats[i].gst;
    return GST_VIDEO_FORMAT_UNKNOWN;
}

shmbus_pixfmt shmbus_format_from_gst(GstVideoFormat f)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
        if (formats[i].gst == f)
            return formats[i].shm;
    return SHMBUS_PIXFMT_NONE;
}

gboolean shmbus_format_header(const GstVideoInfo *info, shmbus_frame_hdr *h, char *why,
                              size_t whylen)
{
    shmbus_pixfmt fmt = shmbus_format_from_gst(GST_VIDEO_INFO_FORMAT(info));
    int rc = shmbus_frame_init(h, fmt, GST_VIDEO_INFO_WIDTH(info), GST_VIDEO_INFO_HEIGHT(info));
    if (rc) {
        g_snprintf(why, whylen, "%s %dx%d cannot be a shmbus frame",
                   gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(info)),
                   GST_VIDEO_INFO_WIDTH(info), GST_VIDEO_INFO_HEIGHT(info));
        return FALSE;
    }
    /* GStreamer's layout, not the packed one: strides rounded up, and for odd heights of
     * I420 a spare luma row before the chroma planes. */
    for (unsigned p = 0; p < h->nplanes; p++) {
        h->stride[p] = (uint32_t)GST_VIDEO_INFO_PLANE_STRIDE(info, p);
        h->plane_offset[p] = GST_VIDEO_INFO_PLANE_OFFSET(info, p);
        h->plane_size[p] = (uint64_t)h->stride[p] * shmbus_frame_rows(h, p);
    }
    h->payload_size = GST_VIDEO_INFO_SIZE(info);
    if (GST_VIDEO_INFO_FPS_N(info) > 0 && GST_VIDEO_INFO_FPS_D(info) > 0) {
        h->flags |= SHMBUS_FRAME_FLAG_HAS_FPS;
        h->fps_num = (uint32_t)GST_VIDEO_INFO_FPS_N(info);
        h->fps_den = (uint32_t)GST_VIDEO_INFO_FPS_D(info);
    }
    if (GST_VIDEO_INFO_PAR_N(info) > 0 && GST_VIDEO_INFO_PAR_D(info) > 0) {
        h->flags |= SHMBUS_FRAME_FLAG_HAS_SAR;
        h->sar_num = (uint32_t)GST_VIDEO_INFO_PAR_N(info);
        h->sar_den = (uint32_t)GST_VIDEO_INFO_PAR_D(info);
    }
    if (info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255 || fmt == SHMBUS_PIXFMT_GRAY8)
        h->flags |= SHMBUS_FRAME_FLAG_FULL_RANGE;
    h->interlace = GST_VIDEO_INFO_IS_INTERLACED(info) ? '?' : 'p';
    const shmbus_frame_hdr *ok;
    if (shmbus_frame_check(h, shmbus_frame_message_size(h), &ok, why, whylen) != 0)
        return FALSE;
    return TRUE;
}

gboolean shmbus_format_info(const shmbus_frame_hdr *h, GstVideoInfo *info)
{
    GstVideoFormat f = shmbus_format_to_gst(h->format);
    if (f == GST_VIDEO_FORMAT_UNKNOWN || !gst_video_info_set_format(info, f, h->width, h->height))
        return FALSE;
    if (h->flags & SHMBUS_FRAME_FLAG_HAS_FPS && h->fps_num > 0 && h->fps_den > 0 &&
        h->fps_num <= G_MAXINT && h->fps_den <= G_MAXINT) {
        GST_VIDEO_INFO_FPS_N(info) = (gint)h->fps_num;
        GST_VIDEO_INFO_FPS_D(info) = (gint)h->fps_den;
    } else {
        GST_VIDEO_INFO_FPS_N(info) = 0; /* variable rate */
        GST_VIDEO_INFO_FPS_D(info) = 1;
    }
    if (h->flags & SHMBUS_FRAME_FLAG_HAS_SAR && h->sar_num > 0 && h->sar_den > 0 &&
        h->sar_num <= G_MAXINT && h->sar_den <= G_MAXINT) {
        GST_VIDEO_INFO_PAR_N(info) = (gint)h->sar_num;
        GST_VIDEO_INFO_PAR_D(info) = (gint)h->sar_den;
    }
    if (GST_VIDEO_INFO_IS_YUV(info))
        info->colorimetry.range = h->flags & SHMBUS_FRAME_FLAG_FULL_RANGE
                                      ? GST_VIDEO_COLOR_RANGE_0_255
                                      : GST_VIDEO_COLOR_RANGE_16_235;
    return TRUE;
}

gboolean shmbus_format_default_layout(const shmbus_frame_hdr *h, const GstVideoInfo *info)
{
    if (h->payload_size < GST_VIDEO_INFO_SIZE(info))
        return FALSE;
    for (unsigned p = 0; p < h->nplanes; p++)
        if (h->stride[p] != (uint32_t)GST_VIDEO_INFO_PLANE_STRIDE(info, p) ||
            h->plane_offset[p] != GST_VIDEO_INFO_PLANE_OFFSET(info, p))
            return FALSE;
    return TRUE;
}
