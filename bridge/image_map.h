/* Camera frames as ROS 2 images: pixel format <-> sensor_msgs image encoding, capture time
 * <-> header.stamp, and the checks an incoming Image must pass before any pixel is copied.
 *
 * Mapping (docs/bridge.md):
 *   rgb24   <-> "rgb8"          gray8 <-> "mono8"          yuyv422 <-> "yuv422_yuy2"
 *   in only:  "bgr8" -> rgb24 (channels swapped while copying), "yuyv" -> yuyv422
 *   refused:  yuv420p, yuv422p, yuv444p out (ROS 2 names no planar YUV format); any other
 *             encoding in. Refusals are counted per route, never forwarded. */
#ifndef BRIDGE_IMAGE_MAP_H
#define BRIDGE_IMAGE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus_frame.h"

/* The ROS 2 encoding for a frame format, or NULL (why says what, if not NULL). */
const char *image_encoding_of(int fmt, char *why, size_t whylen);

/* Check an incoming image's fields against its data length: dimensions 1..16384, a known
 * encoding, is_bigendian 0 (8-bit formats only), step holding a row, step * height equal to
 * the data's length. Returns the frame format, or SHMBUS_PIXFMT_NONE with the reason in why;
 * *refused tells an unknown encoding (refused) from malformed fields (invalid). */
shmbus_pixfmt image_check(uint32_t width, uint32_t height, const char *encoding, uint32_t step,
                          uint64_t data_len, bool *swap_rb, bool *refused, char *why,
                          size_t whylen);

/* CLOCK_MONOTONIC nanoseconds (capture_ns) as a CLOCK_REALTIME stamp, and back. */
void image_stamp_of(uint64_t mono_ns, int32_t *sec, uint32_t *nanosec);
uint64_t image_mono_of(int32_t sec, uint32_t nanosec);

/* Copy rows of width * 3 bytes, step apart, exchanging the first and third byte of each
 * pixel (bgr8 <-> rgb24). */
void image_copy_swap_rb(uint8_t *dst, const uint8_t *src, uint32_t width, uint32_t height,
                        uint32_t step);

#endif
