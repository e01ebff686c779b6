/* Where camera-pub's frames come from. Each source writes a frame straight into the block
 * loaned for it:
 *   pattern  the test pattern is drawn in place (pattern.h);
 *   Y4M      each frame is read() from the stream into place (y4m.h), no copy;
 *   V4L2     mmap streaming copies the driver's buffer in (the one copy of this path), or
 *            --v4l2-read reads the frame into place (v4l2.h).
 * Waits poll app_stop_fd() (app.h), so a stop signal ends a blocked read at once. */
#ifndef CAM_SOURCE_H
#define CAM_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "shmbus_frame.h"
#include "pattern.h"
#include "v4l2.h"
#include "y4m.h"

typedef enum source_kind { SRC_PATTERN, SRC_Y4M, SRC_V4L2 } source_kind;

typedef struct source_opts {
    const char *prog;       /* for messages */
    source_kind kind;
    const char *input;      /* Y4M file ("-": stdin) or V4L2 device */
    uint32_t width, height; /* pattern size; V4L2: asked for */
    shmbus_pixfmt format;   /* pattern (NONE: rgb24); V4L2 (NONE: the device's choice) */
    uint32_t fps_num, fps_den;
    bool fps_given;
    bool loop;              /* Y4M: start a regular file over at its end */
    bool v4l2_read;         /* V4L2: read() instead of mmap streaming */
} source_opts;

typedef struct source {
    source_opts o;
    shmbus_frame_hdr geom; /* every frame's header but its per-frame fields */
    pattern pat;
    y4m_reader y4m;
    int fd;
    cam_v4l2 v4l;
} source;

/* Open the source and describe its frames in s->geom (and, for Y4M and V4L2, their rate in
 * geom.fps_* when known). Returns 0, or 3 with the reason printed (bad input, no device). A
 * stop signal during a Y4M header read returns 0 with app_stopping() set. */
int source_open(source *s, const source_opts *o);

enum { FILL_OK = 0, FILL_END = 1, FILL_STOP = 2, FILL_BAD_INPUT = 3 };

/* Write frame n into the block h (whose header the caller set from s->geom): its pixels,
 * and *capture_ns (0: the caller stamps it when it publishes). FILL_END at the end of the
 * input, FILL_STOP on a stop signal, FILL_BAD_INPUT (printed) on an input error. */
int source_fill(source *s, shmbus_frame_hdr *h, uint64_t n, uint64_t *capture_ns);

void source_close(source *s);

#endif
