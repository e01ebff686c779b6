/* Frame header: geometry of each pixel format, validation of received frames, checksum. */
#include "frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const fmt_names[CAM_FMT_COUNT] = {
    [CAM_FMT_NONE] = "none",       [CAM_FMT_RGB24] = "rgb24",     [CAM_FMT_GRAY8] = "gray8",
    [CAM_FMT_YUV420P] = "yuv420p", [CAM_FMT_YUV422P] = "yuv422p", [CAM_FMT_YUV444P] = "yuv444p",
    [CAM_FMT_YUYV422] = "yuyv422",
};

const char *cam_pixfmt_name(int fmt)
{
    return fmt > CAM_FMT_NONE && fmt < CAM_FMT_COUNT ? fmt_names[fmt] : "?";
}

cam_pixfmt cam_pixfmt_parse(const char *s)
{
    for (int f = CAM_FMT_NONE + 1; f < CAM_FMT_COUNT; f++)
        if (strcmp(s, fmt_names[f]) == 0)
            return (cam_pixfmt)f;
    if (strcmp(s, "gray") == 0 || strcmp(s, "mono") == 0)
        return CAM_FMT_GRAY8;
    if (strcmp(s, "yuyv") == 0)
        return CAM_FMT_YUYV422;
    return CAM_FMT_NONE;
}

const char *cam_pixfmt_list(void) { return "rgb24|gray8|yuv420p|yuv422p|yuv444p|yuyv422"; }

/* Chroma subsampling of planar formats: plane width and height divisors (1 or 2). */
static void chroma_shift(cam_pixfmt fmt, unsigned *sx, unsigned *sy)
{
    *sx = fmt == CAM_FMT_YUV420P || fmt == CAM_FMT_YUV422P;
    *sy = fmt == CAM_FMT_YUV420P;
}

static uint32_t bytes_per_pixel(cam_pixfmt fmt)
{
    return fmt == CAM_FMT_RGB24 ? 3 : fmt == CAM_FMT_YUYV422 ? 2 : 1;
}

static unsigned planes_of(cam_pixfmt fmt)
{
    return fmt == CAM_FMT_YUV420P || fmt == CAM_FMT_YUV422P || fmt == CAM_FMT_YUV444P ? 3 : 1;
}

uint32_t cam_plane_row_bytes(const cam_frame_hdr *h, unsigned p)
{
    cam_pixfmt fmt = (cam_pixfmt)h->format;
    if (p == 0) {
        /* YUYV pairs pixels: an odd width still ends on a whole Y0 U Y1 V group */
        uint32_t w = fmt == CAM_FMT_YUYV422 ? (h->width + 1) / 2 * 2 : h->width;
        return w * bytes_per_pixel(fmt);
    }
    unsigned sx, sy;
    chroma_shift(fmt, &sx, &sy);
    return (h->width + sx) >> sx;
}

uint32_t cam_plane_rows(const cam_frame_hdr *h, unsigned p)
{
    if (p == 0)
        return h->height;
    unsigned sx, sy;
    chroma_shift((cam_pixfmt)h->format, &sx, &sy);
    return (h->height + sy) >> sy;
}

int cam_frame_init_stride(cam_frame_hdr *h, cam_pixfmt fmt, uint32_t width, uint32_t height,
                          uint32_t stride)
{
    memset(h, 0, sizeof *h);
    if (fmt <= CAM_FMT_NONE || fmt >= CAM_FMT_COUNT || width == 0 || height == 0 ||
        width > CAM_MAX_DIM || height > CAM_MAX_DIM)
        return -1;
    h->magic = CAM_FRAME_MAGIC;
    h->version = CAM_FRAME_VERSION;
    h->header_size = sizeof *h;
    h->format = fmt;
    h->width = width;
    h->height = height;
    h->nplanes = planes_of(fmt);
    h->payload_offset = CAM_FRAME_HEADER_SIZE;
    uint64_t off = 0;
    for (unsigned p = 0; p < h->nplanes; p++) {
        uint32_t row = cam_plane_row_bytes(h, p);
        uint32_t s = stride == 0 ? row : p == 0 || fmt == CAM_FMT_YUV444P ? stride
                                                                           : (stride + 1) / 2;
        if (s < row)
            return -1;
        h->stride[p] = s;
        h->plane_offset[p] = off;
        h->plane_size[p] = (uint64_t)s * cam_plane_rows(h, p);
        off += h->plane_size[p];
    }
    h->payload_size = off;
    return off <= CAM_MAX_PAYLOAD ? 0 : -1;
}

int cam_frame_init(cam_frame_hdr *h, cam_pixfmt fmt, uint32_t width, uint32_t height)
{
    return cam_frame_init_stride(h, fmt, width, height, 0);
}

static int reject(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define ULL(x) ((unsigned long long)(x))

int cam_frame_check(const void *msg, uint64_t len, const cam_frame_hdr **out, char *why,
                    size_t whylen)
{
    *out = NULL;
    if (len < sizeof(cam_frame_hdr))
        return reject(why, whylen, "message of %llu bytes is shorter than a frame header (%zu)",
                      ULL(len), sizeof(cam_frame_hdr));
    const cam_frame_hdr *h = msg;
    if (h->magic != CAM_FRAME_MAGIC)
        return reject(why, whylen, "not a camera frame (magic 0x%08x, expected 0x%08x)",
                      (unsigned)h->magic, (unsigned)CAM_FRAME_MAGIC);
    if (h->version != CAM_FRAME_VERSION)
        return reject(why, whylen, "frame layout version %u, this program reads %u",
                      (unsigned)h->version, (unsigned)CAM_FRAME_VERSION);
    if (h->header_size != sizeof *h)
        return reject(why, whylen, "header size %u, expected %zu", (unsigned)h->header_size,
                      sizeof *h);
    if (h->format <= CAM_FMT_NONE || h->format >= CAM_FMT_COUNT)
        return reject(why, whylen, "unknown pixel format %u", (unsigned)h->format);
    if (h->width == 0 || h->height == 0 || h->width > CAM_MAX_DIM || h->height > CAM_MAX_DIM)
        return reject(why, whylen, "frame size %ux%u out of range", (unsigned)h->width,
                      (unsigned)h->height);
    if (h->nplanes != planes_of((cam_pixfmt)h->format))
        return reject(why, whylen, "%u planes, %s has %u", (unsigned)h->nplanes,
                      cam_pixfmt_name((int)h->format), planes_of((cam_pixfmt)h->format));
    if (h->payload_offset < sizeof *h || h->payload_offset % CAM_PAYLOAD_ALIGN ||
        h->payload_offset > len || h->payload_size > len - h->payload_offset)
        return reject(why, whylen,
                      "payload at %llu (%llu bytes) is not inside the %llu-byte message",
                      ULL(h->payload_offset), ULL(h->payload_size), ULL(len));
    for (unsigned p = 0; p < h->nplanes; p++) {
        uint64_t rows = cam_plane_rows(h, p);
        if (h->stride[p] < cam_plane_row_bytes(h, p))
            return reject(why, whylen, "plane %u: stride %u is shorter than a row (%u bytes)",
                          p, (unsigned)h->stride[p], (unsigned)cam_plane_row_bytes(h, p));
        if (h->plane_size[p] != h->stride[p] * rows)
            return reject(why, whylen, "plane %u: %llu bytes, expected stride x rows = %llu",
                          p, ULL(h->plane_size[p]), ULL(h->stride[p] * rows));
        if (h->plane_offset[p] > h->payload_size ||
            h->plane_size[p] > h->payload_size - h->plane_offset[p])
            return reject(why, whylen, "plane %u at %llu is not inside the %llu-byte payload",
                          p, ULL(h->plane_offset[p]), ULL(h->payload_size));
    }
    if (memchr(h->colorspace, 0, sizeof h->colorspace) == NULL ||
        memchr(h->extra, 0, sizeof h->extra) == NULL)
        return reject(why, whylen, "unterminated string in the header");
    *out = h;
    return 0;
}

/* ---- checksum ----------------------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static inline uint64_t step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * FNV_PRIME;
    return (h << 27) | (h >> 37);
}

uint64_t cam_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h0 = FNV_OFFSET, h1 = FNV_OFFSET + 1, h2 = FNV_OFFSET + 2, h3 = FNV_OFFSET + 3;
    size_t n = len;
    while (n >= 32) {
        uint64_t w[4];
        memcpy(w, p, sizeof w);
        h0 = step(h0, w[0]);
        h1 = step(h1, w[1]);
        h2 = step(h2, w[2]);
        h3 = step(h3, w[3]);
        p += 32;
        n -= 32;
    }
    while (n--)
        h0 = step(h0, *p++);
    uint64_t h = FNV_OFFSET;
    h = step(h, h0);
    h = step(h, h1);
    h = step(h, h2);
    h = step(h, h3);
    return step(h, (uint64_t)len);
}
