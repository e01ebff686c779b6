/* Pixel conversion, one row at a time, between RGB and the frame formats (BT.601: limited
 * range 16..235 for YUV unless the frame says SHMBUS_FRAME_FLAG_FULL_RANGE; gray8 is full range).
 *
 * Conversions are only for what must change format on the way out (PPM snapshots are RGB;
 * Y4M has no RGB) and for drawing the test pattern; frames are never converted on the bus.
 * Subsampled chroma is point-sampled (no filtering): fine for a test pattern and previews.
 * Uses libc only. */
#ifndef CAM_CONVERT_H
#define CAM_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "shmbus_frame.h"

void conv_rgb_to_yuv(const uint8_t rgb[3], bool full, uint8_t *y, uint8_t *u, uint8_t *v);
void conv_yuv_to_rgb(uint8_t y, uint8_t u, uint8_t v, bool full, uint8_t rgb[3]);

/* Store rgb (width x 3 bytes) as row `row` of the frame h (any format; written in place
 * at its planes). Chroma of 4:2:0 is written on even rows only, so write the rows in order
 * or at least every even one. */
void conv_put_rgb_row(shmbus_frame_hdr *h, uint32_t row, const uint8_t *rgb);

/* Load row `row` of the frame h (any format) as RGB into rgb (width x 3 bytes). */
void conv_get_rgb_row(const shmbus_frame_hdr *h, uint32_t row, uint8_t *rgb);

/* For formats Y4M cannot carry: the Y4M format they are written as (rgb24 -> yuv444p,
 * yuyv422 -> yuv422p), or the frame's own format. */
shmbus_pixfmt conv_y4m_format(shmbus_pixfmt fmt);

/* Row `row` of plane `plane` of the frame h converted to conv_y4m_format(h->format), into
 * out (shmbus_frame_row_bytes of that format). Only for rgb24 and yuyv422 frames. */
void conv_y4m_row(const shmbus_frame_hdr *h, unsigned plane, uint32_t row, uint8_t *out);

#endif
