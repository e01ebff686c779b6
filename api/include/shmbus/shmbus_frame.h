/* shmbus_frame.h: the camera frame format, part of the public API.
 *
 * A camera frame as it travels on a shmbus topic: a fixed 256-byte header at the start of the
 * message, then the pixels at payload_offset (a multiple of 64 from the start of the message).
 *
 *   message:  [ shmbus_frame_hdr (256 bytes) | pad | plane 0 | plane 1 | plane 2 ]
 *                                               ^ payload_offset
 *
 * The publisher fills the header and writes the pixels in place in the loaned block; a
 * subscriber reads both in place. All fields are in host byte order: a frame never leaves the
 * host (shmbus is single-host), and every Linux target shmbus supports is little-endian.
 *
 * A subscriber must treat the message as input from another process: shmbus_frame_check()
 * validates every field against the message length before any pixel is touched
 * (shmbus_frame_get does it for a received message).
 *
 * The pixel checksum is optional per frame (SHMBUS_FRAME_FLAG_CHECKSUM): a test source sets
 * it so subscribers can prove frames arrive intact; a real camera path need not hash every
 * frame. Python, GStreamer and the DDS bridge read and write exactly this layout.
 *
 * Typical use:
 *   publisher:  shmbus_frame_hdr g; shmbus_frame_init(&g, SHMBUS_PIXFMT_RGB24, 1920, 1080);
 *               shmbus_frame_loan(pub, &g, &m, &h); ... write shmbus_frame_plane_mut(h, 0) ...
 *               h->frame_number = n; h->capture_ns = t; shmbus_frame_publish(pub, m, false);
 *   subscriber: shmbus_sub_recv(sub, -1, &m); if (shmbus_frame_get(m, &h) == 0) read planes.
 *
 * Everything here is thread-safe (no state); the message helpers follow the rules of the
 * calls they wrap (shmbus_pub_loan, shmbus_pub_publish).
 */
#ifndef SHMBUS_FRAME_H
#define SHMBUS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMBUS_FRAME_MAGIC       0x52464253u /* "SBFR" in memory */
#define SHMBUS_FRAME_VERSION     2           /* 2: the checksum became optional (flag) */
#define SHMBUS_FRAME_HEADER_SIZE 256
#define SHMBUS_FRAME_ALIGN       64
#define SHMBUS_FRAME_MAX_DIM     16384        /* widest and tallest frame accepted */
#define SHMBUS_FRAME_MAX_PAYLOAD (1ull << 30) /* 1 GiB of pixels at most */

/* Pixel formats. The values are part of the frame layout: never renumber. */
typedef enum shmbus_pixfmt {
    SHMBUS_PIXFMT_NONE = 0,
    SHMBUS_PIXFMT_RGB24 = 1,   /* packed R, G, B; 1 plane */
    SHMBUS_PIXFMT_GRAY8 = 2,   /* luma only (full range); 1 plane */
    SHMBUS_PIXFMT_YUV420P = 3, /* planar Y, U, V; chroma (w+1)/2 x (h+1)/2 */
    SHMBUS_PIXFMT_YUV422P = 4, /* planar Y, U, V; chroma (w+1)/2 x h */
    SHMBUS_PIXFMT_YUV444P = 5, /* planar Y, U, V; chroma w x h */
    SHMBUS_PIXFMT_YUYV422 = 6, /* packed Y0 U Y1 V (V4L2 "YUYV"); 1 plane, 2 bytes per pixel */
    SHMBUS_PIXFMT_COUNT
} shmbus_pixfmt;

/* flags */
#define SHMBUS_FRAME_FLAG_FULL_RANGE 0x1u /* YUV in full 0..255 range (else BT.601 16..235) */
#define SHMBUS_FRAME_FLAG_HAS_FPS    0x2u /* fps_num/fps_den are meaningful */
#define SHMBUS_FRAME_FLAG_HAS_SAR    0x4u /* sar_num/sar_den were given (0:0 means "unknown") */
#define SHMBUS_FRAME_FLAG_CHECKSUM   0x8u /* `checksum` = shmbus_frame_checksum(payload) */

#ifdef __cplusplus
#define SHMBUS_FRAME_ASSERT static_assert
#else
#define SHMBUS_FRAME_ASSERT _Static_assert
#endif

typedef struct shmbus_frame_hdr {
    uint32_t magic;            /*   0: SHMBUS_FRAME_MAGIC */
    uint16_t version;          /*   4: SHMBUS_FRAME_VERSION */
    uint16_t header_size;      /*   6: sizeof(shmbus_frame_hdr) */
    uint32_t format;           /*   8: shmbus_pixfmt */
    uint32_t flags;            /*  12: SHMBUS_FRAME_FLAG_* */
    uint32_t width, height;    /*  16, 20: pixels */
    uint32_t nplanes;          /*  24: 1 or 3 */
    uint32_t stride[3];        /*  28: bytes from one row of a plane to the next */
    uint64_t plane_offset[3];  /*  40: from the start of the payload */
    uint64_t plane_size[3];    /*  64: stride x rows of the plane */
    uint64_t frame_number;     /*  88: the source's frame counter, from 0 */
    uint64_t capture_ns;       /*  96: CLOCK_MONOTONIC when the frame was captured */
    uint64_t payload_offset;   /* 104: from the start of the message; multiple of 64 */
    uint64_t payload_size;     /* 112: bytes of pixels: the planes end to end */
    uint64_t checksum;         /* 120: shmbus_frame_checksum() of the payload (FLAG_CHECKSUM) */
    uint32_t fps_num, fps_den; /* 128: nominal frame rate (SHMBUS_FRAME_FLAG_HAS_FPS) */
    uint32_t sar_num, sar_den; /* 136: pixel aspect ratio (SHMBUS_FRAME_FLAG_HAS_SAR) */
    char interlace;            /* 144: Y4M 'p' 't' 'b' 'm' '?', or 0 if unknown */
    char colorspace[15];       /* 145: Y4M C tag as the source gave it ("420jpeg"), or "" */
    char extra[80];            /* 160: Y4M X parameters verbatim, space-separated, or "" */
    uint8_t reserved[16];      /* 240: zero */
} shmbus_frame_hdr;

SHMBUS_FRAME_ASSERT(sizeof(shmbus_frame_hdr) == SHMBUS_FRAME_HEADER_SIZE, "header is 256 bytes");
SHMBUS_FRAME_ASSERT(offsetof(shmbus_frame_hdr, plane_offset) == 40, "frame header layout");
SHMBUS_FRAME_ASSERT(offsetof(shmbus_frame_hdr, checksum) == 120, "frame header layout");
SHMBUS_FRAME_ASSERT(offsetof(shmbus_frame_hdr, extra) == 160, "frame header layout");
SHMBUS_FRAME_ASSERT(SHMBUS_FRAME_HEADER_SIZE % SHMBUS_FRAME_ALIGN == 0, "payload follows aligned");

/* "rgb24", "gray8", "yuv420p", ...; "?" for an unknown value. */
SHMBUS_API const char *shmbus_pixfmt_name(int fmt);
/* The format named s, or SHMBUS_PIXFMT_NONE. */
SHMBUS_API shmbus_pixfmt shmbus_pixfmt_parse(const char *s);
/* "rgb24|gray8|yuv420p|..." for help texts. */
SHMBUS_API const char *shmbus_pixfmt_list(void);

/* Fill the geometry fields of h (format, width, height, nplanes, strides, plane offsets and
 * sizes, payload_size) for a frame of that size with rows packed tightly (no padding), and
 * set magic, version, header_size and payload_offset = SHMBUS_FRAME_HEADER_SIZE. Other fields
 * are zeroed. Returns 0, or SHMBUS_EINVAL if the format is unknown or the size is 0 or too big. */
SHMBUS_API int shmbus_frame_init(shmbus_frame_hdr *h, shmbus_pixfmt fmt, uint32_t width,
                                 uint32_t height);

/* Like shmbus_frame_init, but with the luma (or packed) stride given, as a V4L2 driver reports
 * it (bytesperline); chroma planes get half of it (420/422) or all of it (444). */
SHMBUS_API int shmbus_frame_init_stride(shmbus_frame_hdr *h, shmbus_pixfmt fmt, uint32_t width,
                                        uint32_t height, uint32_t stride);

/* Bytes of one visible row of plane p (without stride padding), and the plane's rows. */
SHMBUS_API uint32_t shmbus_frame_row_bytes(const shmbus_frame_hdr *h, unsigned p);
SHMBUS_API uint32_t shmbus_frame_rows(const shmbus_frame_hdr *h, unsigned p);

/* Bytes the whole message needs: payload_offset + payload_size. */
static inline uint64_t shmbus_frame_message_size(const shmbus_frame_hdr *h)
{
    return h->payload_offset + h->payload_size;
}

/* Validate a received message of len bytes: magic, version, header size, a known format,
 * sane dimensions, strides that hold a row, planes inside the payload and the payload
 * inside the message. Returns 0 and sets *out to the header (= msg), or -1 with the reason
 * in why (if why is not NULL). Returns SHMBUS_EINVAL on failure. Never reads outside [msg, msg +
 * len). Checksums are not checked here. */
SHMBUS_API int shmbus_frame_check(const void *msg, uint64_t len, const shmbus_frame_hdr **out,
                                  char *why, size_t whylen);

/* The payload checksum: FNV-1a's offset basis and prime applied to 64-bit words in four
 * interleaved lanes, each step h = rotl64((h ^ word) * prime, 27), the tail bytes folded into
 * lane 0 one by one, then the lanes and the length folded together the same way. About 8
 * bytes per cycle, so a 1080p RGB frame (6.2 MB) costs well under a millisecond; it catches
 * torn or overwritten frames, it is not cryptographic. */
SHMBUS_API uint64_t shmbus_frame_checksum(const void *data, size_t len);

/* Pixels of plane p of the frame whose header is h (h sits at the start of the message). */
static inline const uint8_t *shmbus_frame_plane(const shmbus_frame_hdr *h, unsigned p)
{
    return (const uint8_t *)h + h->payload_offset + h->plane_offset[p];
}
static inline uint8_t *shmbus_frame_plane_mut(shmbus_frame_hdr *h, unsigned p)
{
    return (uint8_t *)h + h->payload_offset + h->plane_offset[p];
}

/* ---- frames in messages ----------------------------------------------------------------- */

/* Loan a message big enough for a frame of geometry g (from shmbus_frame_init*) from publisher
 * p, copy g into its start, and set *hdr to that header inside the block (writable). Other
 * fields (frame_number, capture_ns, fps, ...) are the caller's to set. Errors as
 * shmbus_pub_loan, or SHMBUS_EINVAL for a g that shmbus_frame_check would refuse. */
SHMBUS_API int shmbus_frame_loan(shmbus_pub *p, const shmbus_frame_hdr *g, shmbus_msg **m,
                                 shmbus_frame_hdr **hdr);

/* Publish a frame loaned with shmbus_frame_loan: with checksum, hash the payload and set
 * SHMBUS_FRAME_FLAG_CHECKSUM first (about 1 ms per 8 MB); publishes
 * shmbus_frame_message_size() bytes. Consumes m as shmbus_pub_publish does. */
SHMBUS_API int shmbus_frame_publish(shmbus_pub *p, shmbus_msg *m, bool checksum);

/* The frame in a received (or loaned) message, validated with shmbus_frame_check against the
 * message's length. SHMBUS_EINVAL with the reason in shmbus_last_error() if it is not a valid
 * frame. *out points into the message: valid until it is released. */
SHMBUS_API int shmbus_frame_get(const shmbus_msg *m, const shmbus_frame_hdr **out);

/* Whether the frame carries a checksum, and whether its payload matches it (true when it
 * carries none). Reads every pixel. */
static inline bool shmbus_frame_has_checksum(const shmbus_frame_hdr *h)
{
    return (h->flags & SHMBUS_FRAME_FLAG_CHECKSUM) != 0;
}
SHMBUS_API bool shmbus_frame_checksum_ok(const shmbus_frame_hdr *h);

#ifdef __cplusplus
}
#endif

#endif
