/* A camera frame as it travels on a shmbus topic: a fixed 256-byte header at the start of the
 * message, then the pixels at payload_offset (a multiple of 64 from the start of the message).
 *
 *   message:  [ cam_frame_hdr (256 bytes) | pad | plane 0 | plane 1 | plane 2 ]
 *                                               ^ payload_offset
 *
 * The publisher fills the header and writes the pixels in place in the loaned block; a
 * subscriber reads both in place. All fields are in host byte order: a frame never leaves the
 * host (shmbus is single-host), and every Linux target shmbus supports is little-endian.
 *
 * A subscriber must treat the message as input from another process: cam_frame_check()
 * validates every field against the message length before any pixel is touched.
 *
 * Uses libc only (no shmbus), so the tests and fuzz harnesses can use it alone.
 */
#ifndef CAM_FRAME_H
#define CAM_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAM_FRAME_MAGIC 0x52464253u /* "SBFR" in memory */
#define CAM_FRAME_VERSION 1
#define CAM_FRAME_HEADER_SIZE 256
#define CAM_PAYLOAD_ALIGN 64
#define CAM_MAX_DIM 16384               /* widest and tallest frame accepted */
#define CAM_MAX_PAYLOAD (1ull << 30)    /* 1 GiB of pixels at most */

/* Pixel formats. The values are part of the frame layout: never renumber. */
typedef enum cam_pixfmt {
    CAM_FMT_NONE = 0,
    CAM_FMT_RGB24 = 1,   /* packed R, G, B; 1 plane */
    CAM_FMT_GRAY8 = 2,   /* luma only (full range); 1 plane */
    CAM_FMT_YUV420P = 3, /* planar Y, U, V; chroma (w+1)/2 x (h+1)/2 */
    CAM_FMT_YUV422P = 4, /* planar Y, U, V; chroma (w+1)/2 x h */
    CAM_FMT_YUV444P = 5, /* planar Y, U, V; chroma w x h */
    CAM_FMT_YUYV422 = 6, /* packed Y0 U Y1 V (V4L2 "YUYV"); 1 plane, 2 bytes per pixel */
    CAM_FMT_COUNT
} cam_pixfmt;

/* flags */
#define CAM_FLAG_FULL_RANGE 0x1u /* YUV uses the full 0..255 range (else BT.601 16..235) */
#define CAM_FLAG_HAS_FPS 0x2u    /* fps_num/fps_den are meaningful */
#define CAM_FLAG_HAS_SAR 0x4u    /* sar_num/sar_den were given (0:0 means "unknown") */

typedef struct cam_frame_hdr {
    uint32_t magic;            /*   0: CAM_FRAME_MAGIC */
    uint16_t version;          /*   4: CAM_FRAME_VERSION */
    uint16_t header_size;      /*   6: sizeof(cam_frame_hdr) */
    uint32_t format;           /*   8: cam_pixfmt */
    uint32_t flags;            /*  12: CAM_FLAG_* */
    uint32_t width, height;    /*  16, 20: pixels */
    uint32_t nplanes;          /*  24: 1 or 3 */
    uint32_t stride[3];        /*  28: bytes from one row of a plane to the next */
    uint64_t plane_offset[3];  /*  40: from the start of the payload */
    uint64_t plane_size[3];    /*  64: stride x rows of the plane */
    uint64_t frame_number;     /*  88: the source's frame counter, from 0 */
    uint64_t capture_ns;       /*  96: CLOCK_MONOTONIC when the frame was captured */
    uint64_t payload_offset;   /* 104: from the start of the message; multiple of 64 */
    uint64_t payload_size;     /* 112: bytes of pixels: the planes end to end */
    uint64_t checksum;         /* 120: cam_checksum() of the payload_size bytes */
    uint32_t fps_num, fps_den; /* 128: nominal frame rate (CAM_FLAG_HAS_FPS) */
    uint32_t sar_num, sar_den; /* 136: pixel aspect ratio (CAM_FLAG_HAS_SAR) */
    char interlace;            /* 144: Y4M 'p' 't' 'b' 'm' '?', or 0 if unknown */
    char colorspace[15];       /* 145: Y4M C tag as the source gave it ("420jpeg"), or "" */
    char extra[80];            /* 160: Y4M X parameters verbatim, space-separated, or "" */
    uint8_t reserved[16];      /* 240: zero */
} cam_frame_hdr;

_Static_assert(sizeof(cam_frame_hdr) == CAM_FRAME_HEADER_SIZE, "frame header is 256 bytes");
_Static_assert(offsetof(cam_frame_hdr, plane_offset) == 40, "frame header layout");
_Static_assert(offsetof(cam_frame_hdr, checksum) == 120, "frame header layout");
_Static_assert(offsetof(cam_frame_hdr, extra) == 160, "frame header layout");
_Static_assert(CAM_FRAME_HEADER_SIZE % CAM_PAYLOAD_ALIGN == 0, "payload follows aligned");

/* "rgb24", "gray8", "yuv420p", ...; "?" for an unknown value. */
const char *cam_pixfmt_name(int fmt);
/* The format named s, or CAM_FMT_NONE. */
cam_pixfmt cam_pixfmt_parse(const char *s);
/* "rgb24|gray8|yuv420p|..." for help texts. */
const char *cam_pixfmt_list(void);

/* Fill the geometry fields of h (format, width, height, nplanes, strides, plane offsets and
 * sizes, payload_size) for a frame of that size with rows packed tightly (no padding), and
 * set magic, version, header_size and payload_offset = CAM_FRAME_HEADER_SIZE. Other fields
 * are zeroed. Returns 0, or -1 if the format is unknown or the size is 0 or too big. */
int cam_frame_init(cam_frame_hdr *h, cam_pixfmt fmt, uint32_t width, uint32_t height);

/* Like cam_frame_init, but with the luma (or packed) stride given, as a V4L2 driver reports
 * it (bytesperline); chroma planes get half of it (420/422) or all of it (444). */
int cam_frame_init_stride(cam_frame_hdr *h, cam_pixfmt fmt, uint32_t width, uint32_t height,
                          uint32_t stride);

/* Bytes of one visible row of plane p (without stride padding), and the plane's rows. */
uint32_t cam_plane_row_bytes(const cam_frame_hdr *h, unsigned p);
uint32_t cam_plane_rows(const cam_frame_hdr *h, unsigned p);

/* Bytes the whole message needs: payload_offset + payload_size. */
static inline uint64_t cam_frame_message_size(const cam_frame_hdr *h)
{
    return h->payload_offset + h->payload_size;
}

/* Validate a received message of len bytes: magic, version, header size, a known format,
 * sane dimensions, strides that hold a row, planes inside the payload and the payload
 * inside the message. Returns 0 and sets *out to the header (= msg), or -1 with the reason
 * in why. Never reads outside [msg, msg + len). Checksums are not checked here. */
int cam_frame_check(const void *msg, uint64_t len, const cam_frame_hdr **out, char *why,
                    size_t whylen);

/* The payload checksum: FNV-1a's offset basis and prime applied to 64-bit words in four
 * interleaved lanes, each step h = rotl64((h ^ word) * prime, 27), the tail bytes folded into
 * lane 0 one by one, then the lanes and the length folded together the same way. About 8
 * bytes per cycle, so a 1080p RGB frame (6.2 MB) costs well under a millisecond; it catches
 * torn or overwritten frames, it is not cryptographic. */
uint64_t cam_checksum(const void *data, size_t len);

/* Pixels of plane p of the frame whose header is h (h sits at the start of the message). */
static inline const uint8_t *cam_plane(const cam_frame_hdr *h, unsigned p)
{
    return (const uint8_t *)h + h->payload_offset + h->plane_offset[p];
}
static inline uint8_t *cam_plane_mut(cam_frame_hdr *h, unsigned p)
{
    return (uint8_t *)h + h->payload_offset + h->plane_offset[p];
}

#endif
