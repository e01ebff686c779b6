/* YUV4MPEG2 (Y4M): the uncompressed stream ffmpeg writes with `-f yuv4mpegpipe`.
 *
 *   stream := header frame*
 *   header := "YUV4MPEG2" (" " param)* "\n"       param := letter value, e.g. W1920 H1080
 *   frame  := "FRAME" (" " param)* "\n" pixels    pixels: the Y plane, then U, then V
 *
 * Parameters: W width, H height (both required), F fps num:den, I interlacing (p t b m ?),
 * A pixel aspect num:den (0:0 unknown), C colorspace, X extensions (kept verbatim). Planes are
 * packed rows with no padding; chroma of 4:2:0 is (W+1)/2 x (H+1)/2, of 4:2:2 (W+1)/2 x H.
 *
 * Supported colorspaces and the pixel format they map to:
 *   420jpeg 420paldv 420mpeg2 420 -> yuv420p (the four differ in chroma siting only)
 *   422 -> yuv422p, 444 -> yuv444p, mono -> gray8; no C at all means 420jpeg.
 * High bit depths (420p10, ...), 411, 444alpha and the rest are refused (Y4M_ECOLOR).
 *
 * Parsing works on a buffer and never reads past it, allocates nothing and keeps no state,
 * so it can be driven by a fuzzer (y4m_parse_header, y4m_parse_frame_marker). Reading works
 * on a file descriptor with read() straight into the caller's memory (y4m_reader): the
 * camera publisher reads each frame directly into a loaned shared-memory block.
 *
 * Uses libc only.
 */
#ifndef CAM_Y4M_H
#define CAM_Y4M_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus_frame.h"

#define Y4M_MAX_HEADER 1024  /* longest header line accepted, newline included */
#define Y4M_MAX_MARKER 256   /* longest FRAME line accepted */

enum y4m_status {
    Y4M_OK = 0,
    Y4M_EOF = 1,       /* clean end: the stream ended where a frame would start */
    Y4M_ETRUNC = -1,   /* header or FRAME line cut short (no newline before the end) */
    Y4M_EMAGIC = -2,   /* does not start with "YUV4MPEG2" */
    Y4M_ENOSIZE = -3,  /* W or H missing */
    Y4M_ESIZE = -4,    /* width or height 0 or over 16384, or a frame over 1 GiB */
    Y4M_EPARAM = -5,   /* a malformed, duplicated or garbage parameter */
    Y4M_ECOLOR = -6,   /* colorspace not supported */
    Y4M_ELONG = -7,    /* header line longer than Y4M_MAX_HEADER */
    Y4M_EFRAME = -8,   /* no "FRAME" marker where one must be: wrong frame size or garbage */
    Y4M_ESHORT = -9,   /* the stream ended inside a frame */
    Y4M_EIO = -10,     /* read() failed; errno kept */
    Y4M_EINTR = -11,   /* the cancel descriptor became readable */
};

/* A sentence for a status ("truncated header"). */
const char *y4m_strerror(int status);

typedef struct y4m_info {
    uint32_t width, height;
    uint32_t fps_num, fps_den;  /* 0:0 if F was absent */
    uint32_t sar_num, sar_den;  /* as given; has_sar says whether A was present */
    bool has_fps, has_sar;
    char interlace;             /* 0 if I was absent */
    char colorspace[15];        /* the C tag as given ("420jpeg"), "" if absent */
    char extra[80];             /* X parameters verbatim ("XYSCSS=420JPEG"), space-separated */
    bool extra_truncated;       /* X parameters did not fit in extra: some were dropped */
    unsigned ignored;           /* unknown parameters skipped (the format says ignore them) */
    shmbus_pixfmt format;
    uint64_t frame_size;        /* bytes of pixels per frame */
} y4m_info;

/* Parse a header line at the start of buf (len bytes). On success returns Y4M_OK, fills *out
 * and sets *consumed to the line's length including its newline. On error returns a Y4M_E*
 * status with a one-line reason in err (if errlen > 0), e.g.
 * "W0: width must be 1..16384". Y4M_ETRUNC means no newline within len bytes (more input
 * may complete it); Y4M_ELONG means none within Y4M_MAX_HEADER. */
int y4m_parse_header(const char *buf, size_t len, y4m_info *out, size_t *consumed, char *err,
                     size_t errlen);

/* Parse a FRAME line at the start of buf. Returns Y4M_OK with *consumed = its length
 * (parameters are skipped), Y4M_ETRUNC if no newline within len, Y4M_EFRAME otherwise. */
int y4m_parse_frame_marker(const char *buf, size_t len, size_t *consumed);

/* The stream parameters of y4m_info from a frame header (the inverse of y4m_to_frame):
 * formats without a Y4M colorspace (rgb24, yuyv422) give Y4M_ECOLOR. */
int y4m_from_frame(const shmbus_frame_hdr *h, y4m_info *out);
/* Copy the stream parameters into a frame header made by shmbus_frame_init(). */
void y4m_to_frame(const y4m_info *in, shmbus_frame_hdr *h);

/* Write the header line for info into buf: "YUV4MPEG2 W.. H.. [F..] [I.] [A..] [C..] [X..]\n"
 * in that order (the order ffmpeg writes, so its streams round-trip byte for byte). Returns
 * its length, or -1 if it does not fit in len. */
int y4m_format_header(const y4m_info *info, char *buf, size_t len);

/* ---- reading from a file descriptor --------------------------------------------------------- */

typedef struct y4m_reader {
    int fd;
    int cancel_fd;      /* -1, or polled with fd: readable means stop (Y4M_EINTR) */
    y4m_info info;
    uint64_t frames;    /* complete frames read */
    uint64_t offset;    /* bytes consumed from fd */
    uint64_t data_start; /* offset of the first FRAME line */
    char err[256];      /* reason of the last error */
} y4m_reader;

/* Read and parse the header from fd (byte by byte up to its newline: nothing past it is
 * consumed, so the frames can be read straight into place). */
int y4m_reader_open(y4m_reader *r, int fd, int cancel_fd);

/* Read the next FRAME line and info.frame_size bytes of pixels into dst (cap >= frame_size).
 * Y4M_EOF at a clean end of stream; Y4M_ESHORT if it ends inside the frame, Y4M_EFRAME if the
 * marker is not there (r->err says what was found). */
int y4m_reader_next(y4m_reader *r, void *dst, size_t cap);

#endif
