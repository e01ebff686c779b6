/* The public camera frame format: geometry of each pixel format, validation of received
 * frames, the checksum, and frames in loaned and received messages (shmbus_frame.h). */
#include "shmbus_frame.h"

#include <string.h>

#include "bus.h"

static const char *const fmt_names[SHMBUS_PIXFMT_COUNT] = {
    [SHMBUS_PIXFMT_NONE] = "none",       [SHMBUS_PIXFMT_RGB24] = "rgb24",
    [SHMBUS_PIXFMT_GRAY8] = "gray8",     [SHMBUS_PIXFMT_YUV420P] = "yuv420p",
    [SHMBUS_PIXFMT_YUV422P] = "yuv422p", [SHMBUS_PIXFMT_YUV444P] = "yuv444p",
    [SHMBUS_PIXFMT_YUYV422] = "yuyv422",
};

const char *shmbus_pixfmt_name(int fmt)
{
    return fmt > SHMBUS_PIXFMT_NONE && fmt < SHMBUS_PIXFMT_COUNT ? fmt_names[fmt] : "?";
}

shmbus_pixfmt shmbus_pixfmt_parse(const char *s)
{
    for (int f = SHMBUS_PIXFMT_NONE + 1; f < SHMBUS_PIXFMT_COUNT; f++)
        if (strcmp(s, fmt_names[f]) == 0)
            return (shmbus_pixfmt)f;
    if (strcmp(s, "gray") == 0 || strcmp(s, "mono") == 0)
        return SHMBUS_PIXFMT_GRAY8;
    if (strcmp(s, "yuyv") == 0)
        return SHMBUS_PIXFMT_YUYV422;
    return SHMBUS_PIXFMT_NONE;
}

const char *shmbus_pixfmt_list(void) { return "rgb24|gray8|yuv420p|yuv422p|yuv444p|yuyv422"; }

/* Chroma subsampling of planar formats: plane width and height divisors (1 or 2). */
static void chroma_shift(shmbus_pixfmt fmt, unsigned *sx, unsigned *sy)
{
    *sx = fmt == SHMBUS_PIXFMT_YUV420P || fmt == SHMBUS_PIXFMT_YUV422P;
    *sy = fmt == SHMBUS_PIXFMT_YUV420P;
}

static uint32_t bytes_per_pixel(shmbus_pixfmt fmt)
{
    return fmt == SHMBUS_PIXFMT_RGB24 ? 3 : fmt == SHMBUS_PIXFMT_YUYV422 ? 2 : 1;
}

static unsigned planes_of(shmbus_pixfmt fmt)
{
    bool planar = fmt == SHMBUS_PIXFMT_YUV420P || fmt == SHMBUS_PIXFMT_YUV422P ||
                  fmt == SHMBUS_PIXFMT_YUV444P;
    return planar ? 3 : 1;
}

uint32_t shmbus_frame_row_bytes(const shmbus_frame_hdr *h, unsigned p)
{
    shmbus_pixfmt fmt = (shmbus_pixfmt)h->format;
    if (p == 0) {
        /* YUYV pairs pixels: an odd width still ends on a whole Y0 U Y1 V group */
        uint32_t w = fmt == SHMBUS_PIXFMT_YUYV422 ? (h->width + 1) / 2 * 2 : h->width;
        return w * bytes_per_pixel(fmt);
    }
    unsigned sx, sy;
    chroma_shift(fmt, &sx, &sy);
    return (h->width + sx) >> sx;
}

uint32_t shmbus_frame_rows(const shmbus_frame_hdr *h, unsigned p)
{
    if (p == 0)
        return h->height;
    unsigned sx, sy;
    chroma_shift((shmbus_pixfmt)h->format, &sx, &sy);
    return (h->height + sy) >> sy;
}

int shmbus_frame_init_stride(shmbus_frame_hdr *h, shmbus_pixfmt fmt, uint32_t width,
                             uint32_t height, uint32_t stride)
{
    memset(h, 0, sizeof *h);
    if (fmt <= SHMBUS_PIXFMT_NONE || fmt >= SHMBUS_PIXFMT_COUNT || width == 0 || height == 0 ||
        width > SHMBUS_FRAME_MAX_DIM || height > SHMBUS_FRAME_MAX_DIM)
        return SHMBUS_EINVAL;
    h->magic = SHMBUS_FRAME_MAGIC;
    h->version = SHMBUS_FRAME_VERSION;
    h->header_size = sizeof *h;
    h->format = fmt;
    h->width = width;
    h->height = height;
    h->nplanes = planes_of(fmt);
    h->payload_offset = SHMBUS_FRAME_HEADER_SIZE;
    uint64_t off = 0;
    for (unsigned p = 0; p < h->nplanes; p++) {
        uint32_t row = shmbus_frame_row_bytes(h, p);
        uint32_t s = stride == 0                              ? row
                     : p == 0 || fmt == SHMBUS_PIXFMT_YUV444P ? stride
                                                              : (stride + 1) / 2;
        if (s < row)
            return SHMBUS_EINVAL;
        h->stride[p] = s;
        h->plane_offset[p] = off;
        h->plane_size[p] = (uint64_t)s * shmbus_frame_rows(h, p);
        off += h->plane_size[p];
    }
    h->payload_size = off;
    return off <= SHMBUS_FRAME_MAX_PAYLOAD ? 0 : SHMBUS_EINVAL;
}

int shmbus_frame_init(shmbus_frame_hdr *h, shmbus_pixfmt fmt, uint32_t width, uint32_t height)
{
    return shmbus_frame_init_stride(h, fmt, width, height, 0);
}

#define ULL(x) ((unsigned long long)(x))

int shmbus_frame_check(const void *msg, uint64_t len, const shmbus_frame_hdr **out, char *why,
                       size_t whylen)
{
    *out = NULL;
    if (len < sizeof(shmbus_frame_hdr))
        return bus_refuse(why, whylen, "message of %llu bytes is shorter than a frame header (%zu)",
                      ULL(len), sizeof(shmbus_frame_hdr));
    const shmbus_frame_hdr *h = msg;
    if (h->magic != SHMBUS_FRAME_MAGIC)
        return bus_refuse(why, whylen, "not a camera frame (magic 0x%08x, expected 0x%08x)",
                      (unsigned)h->magic, (unsigned)SHMBUS_FRAME_MAGIC);
    if (h->version != SHMBUS_FRAME_VERSION)
        return bus_refuse(why, whylen, "frame layout version %u, this program reads %u",
                      (unsigned)h->version, (unsigned)SHMBUS_FRAME_VERSION);
    if (h->header_size != sizeof *h)
        return bus_refuse(why, whylen, "header size %u, expected %zu", (unsigned)h->header_size,
                      sizeof *h);
    if (h->format <= SHMBUS_PIXFMT_NONE || h->format >= SHMBUS_PIXFMT_COUNT)
        return bus_refuse(why, whylen, "unknown pixel format %u", (unsigned)h->format);
    if (h->width == 0 || h->height == 0 || h->width > SHMBUS_FRAME_MAX_DIM ||
        h->height > SHMBUS_FRAME_MAX_DIM)
        return bus_refuse(why, whylen, "frame size %ux%u out of range", (unsigned)h->width,
                      (unsigned)h->height);
    if (h->nplanes != planes_of((shmbus_pixfmt)h->format))
        return bus_refuse(why, whylen, "%u planes, %s has %u", (unsigned)h->nplanes,
                      shmbus_pixfmt_name((int)h->format), planes_of((shmbus_pixfmt)h->format));
    if (h->payload_offset < sizeof *h || h->payload_offset % SHMBUS_FRAME_ALIGN ||
        h->payload_offset > len || h->payload_size > len - h->payload_offset)
        return bus_refuse(why, whylen,
                      "payload at %llu (%llu bytes) is not inside the %llu-byte message",
                      ULL(h->payload_offset), ULL(h->payload_size), ULL(len));
    for (unsigned p = 0; p < h->nplanes; p++) {
        uint64_t rows = shmbus_frame_rows(h, p);
        if (h->stride[p] < shmbus_frame_row_bytes(h, p))
            return bus_refuse(why, whylen, "plane %u: stride %u is shorter than a row (%u bytes)", p,
                          (unsigned)h->stride[p], (unsigned)shmbus_frame_row_bytes(h, p));
        if (h->plane_size[p] != h->stride[p] * rows)
            return bus_refuse(why, whylen, "plane %u: %llu bytes, expected stride x rows = %llu", p,
                          ULL(h->plane_size[p]), ULL(h->stride[p] * rows));
        if (h->plane_offset[p] > h->payload_size ||
            h->plane_size[p] > h->payload_size - h->plane_offset[p])
            return bus_refuse(why, whylen, "plane %u at %llu is not inside the %llu-byte payload", p,
                          ULL(h->plane_offset[p]), ULL(h->payload_size));
    }
    if (memchr(h->colorspace, 0, sizeof h->colorspace) == NULL ||
        memchr(h->extra, 0, sizeof h->extra) == NULL)
        return bus_refuse(why, whylen, "unterminated string in the header");
    *out = h;
    return 0;
}

/* ---- checksum ----------------------------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static inline uint64_t step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * FNV_PRIME;
    return (h << 27) | (h >> 37);
}

uint64_t shmbus_frame_checksum(const void *data, size_t len)
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

bool shmbus_frame_checksum_ok(const shmbus_frame_hdr *h)
{
    return !shmbus_frame_has_checksum(h) ||
           shmbus_frame_checksum(shmbus_frame_plane(h, 0), h->payload_size) == h->checksum;
}

/* ---- frames in messages ------------------------------------------------------------------- */

/* SHMBUS_EINVAL, with the detail for shmbus_last_error() */
#define frame_error(...) (bus_set_error(__VA_ARGS__), SHMBUS_EINVAL)

int shmbus_frame_loan(shmbus_pub *p, const shmbus_frame_hdr *g, shmbus_msg **m,
                      shmbus_frame_hdr **hdr)
{
    if (!p || !g || !m || !hdr)
        return SHMBUS_EINVAL;
    *m = NULL;
    *hdr = NULL;
    const shmbus_frame_hdr *ok;
    char why[160];
    /* check() reads the header only: the geometry against the size it asks for */
    uint64_t size = shmbus_frame_message_size(g);
    if (shmbus_frame_check(g, size, &ok, why, sizeof why) != 0)
        return frame_error("frame geometry: %s", why);
    int rc = shmbus_pub_loan(p, size, m);
    if (rc)
        return rc;
    shmbus_frame_hdr *h = shmbus_msg_data(*m);
    memcpy(h, g, sizeof *h);
    h->flags &= ~SHMBUS_FRAME_FLAG_CHECKSUM;
    h->checksum = 0;
    *hdr = h;
    return 0;
}

int shmbus_frame_publish(shmbus_pub *p, shmbus_msg *m, bool checksum)
{
    if (!p || !m)
        return SHMBUS_EINVAL;
    shmbus_frame_hdr *h = shmbus_msg_data(m);
    const shmbus_frame_hdr *ok;
    char why[160];
    if (shmbus_frame_check(h, shmbus_msg_capacity(m), &ok, why, sizeof why) != 0)
        return frame_error("publishing a frame: %s", why);
    if (checksum) {
        h->checksum = shmbus_frame_checksum(shmbus_frame_plane(h, 0), h->payload_size);
        h->flags |= SHMBUS_FRAME_FLAG_CHECKSUM;
    } else {
        h->checksum = 0;
        h->flags &= ~SHMBUS_FRAME_FLAG_CHECKSUM;
    }
    return shmbus_pub_publish(p, m, shmbus_frame_message_size(h));
}

int shmbus_frame_get(const shmbus_msg *m, const shmbus_frame_hdr **out)
{
    if (!m || !out)
        return SHMBUS_EINVAL;
    char why[160];
    if (shmbus_frame_check(shmbus_msg_data(m), shmbus_msg_length(m), out, why, sizeof why) != 0)
        return frame_error("not a valid frame: %s", why);
    return 0;
}
