/* Frames and GStreamer video: the public frame header (shmbus_frame.h) for a GstVideoInfo and
 * back. The pixel formats shmbus carries and their GStreamer names:
 *   rgb24 RGB, gray8 GRAY8, yuv420p I420, yuv422p Y42B, yuv444p Y444, yuyv422 YUY2. */
#ifndef GSTSHMBUS_FORMAT_H
#define GSTSHMBUS_FORMAT_H

#include <gst/video/video.h>
#include <shmbus_frame.h>

#define SHMBUS_GST_FORMATS "{ RGB, GRAY8, I420, Y42B, Y444, YUY2 }"
#define SHMBUS_GST_CAPS GST_VIDEO_CAPS_MAKE(SHMBUS_GST_FORMATS)

shmbus_pixfmt shmbus_format_from_gst(GstVideoFormat f);

/* The header of a frame laid out as info says (GStreamer's strides and plane offsets, which
 * may pad rows and leave a row between planes), with its rate, aspect and range. FALSE with
 * the reason in why if the frame format cannot carry it. */
gboolean shmbus_format_header(const GstVideoInfo *info, shmbus_frame_hdr *h, char *why,
                              size_t whylen);

/* The video info (caps) of a received frame's header (checked by shmbus_frame_check). FALSE
 * if GStreamer has no such format. */
gboolean shmbus_format_info(const shmbus_frame_hdr *h, GstVideoInfo *info);

/* Whether the frame's planes lie exactly where GStreamer's default layout for info puts them
 * (then downstream needs no GstVideoMeta to read them). */
gboolean shmbus_format_default_layout(const shmbus_frame_hdr *h, const GstVideoInfo *info);

#endif
