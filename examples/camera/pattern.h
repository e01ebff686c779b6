/* The built-in test pattern: colour bars scrolling left, a grey ramp scrolling right, a white
 * square bouncing around, and the frame number in large digits in the top-left corner, so a
 * viewer sees at a glance that frames move and which one is shown. Uses libc only. */
#ifndef CAM_PATTERN_H
#define CAM_PATTERN_H

#include <stdint.h>

#include "shmbus_frame.h"

typedef struct pattern {
    uint32_t width, height;
    uint8_t *bars, *ramp; /* this frame's background rows, RGB */
    uint8_t *row;         /* one RGB row being composed (formats other than rgb24) */
} pattern;

/* Scratch rows for frames of width x height. 0, or -1 if out of memory. */
int pattern_init(pattern *p, uint32_t width, uint32_t height);
void pattern_free(pattern *p);

/* Draw frame number n into the frame h (geometry set by shmbus_frame_init, same size as p), in
 * place: rgb24 rows are composed directly in the frame, other formats row by row through
 * p->row and converted as they are stored. */
void pattern_render(pattern *p, shmbus_frame_hdr *h, uint64_t n);

#endif
