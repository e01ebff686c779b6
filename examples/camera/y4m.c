/* YUV4MPEG2 parsing (from buffers: fuzzable) and reading (from file descriptors, straight into
 * the caller's memory). See y4m.h for the format. */
#include "y4m.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char MAGIC[] = "YUV4MPEG2";
#define MAGIC_LEN (sizeof MAGIC - 1)

const char *y4m_strerror(int status)
{
    switch (status) {
    case Y4M_OK: return "success";
    case Y4M_EOF: return "end of stream";
    case Y4M_ETRUNC: return "truncated header or FRAME line";
    case Y4M_EMAGIC: return "not a YUV4MPEG2 stream";
    case Y4M_ENOSIZE: return "missing width or height";
    case Y4M_ESIZE: return "frame size out of range";
    case Y4M_EPARAM: return "malformed header parameter";
    case Y4M_ECOLOR: return "unsupported colorspace";
    case Y4M_ELONG: return "header line too long";
    case Y4M_EFRAME: return "missing FRAME marker (wrong frame size or corrupt stream)";
    case Y4M_ESHORT: return "stream ends inside a frame";
    case Y4M_EIO: return "read error";
    case Y4M_EINTR: return "interrupted";
    default: return "unknown Y4M status";
    }
}

static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Up to n bytes of s, printable, with the rest as \xNN: for quoting what was found. */
static const char *quote(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

/* ---- header ------------------------------------------------------------------------------- */

static const struct {
    const char *tag;
    shmbus_pixfmt fmt;
} colorspaces[] = {
    {"420jpeg", SHMBUS_PIXFMT_YUV420P},  {"420paldv", SHMBUS_PIXFMT_YUV420P},
    {"420mpeg2", SHMBUS_PIXFMT_YUV420P}, {"420", SHMBUS_PIXFMT_YUV420P},
    {"422", SHMBUS_PIXFMT_YUV422P},      {"444", SHMBUS_PIXFMT_YUV444P},
    {"mono", SHMBUS_PIXFMT_GRAY8},
};

static shmbus_pixfmt colorspace_format(const char *tag)
{
    if (!*tag)
        return SHMBUS_PIXFMT_YUV420P; /* the format's default */
    for (size_t i = 0; i < sizeof colorspaces / sizeof colorspaces[0]; i++)
        if (strcmp(tag, colorspaces[i].tag) == 0)
            return colorspaces[i].fmt;
    return SHMBUS_PIXFMT_NONE;
}

/* Decimal digits only (no sign, no spaces), at most 4294967295. */
static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

static bool parse_ratio(const char *s, size_t n, uint32_t *num, uint32_t *den)
{
    const char *colon = memchr(s, ':', n);
    return colon && parse_u32(s, (size_t)(colon - s), num) &&
           parse_u32(colon + 1, n - (size_t)(colon - s) - 1, den);
}

/* One parameter: tok[0] is its letter, tok[1..n) its value. */
static int parse_param(const char *tok, size_t n, y4m_info *out, unsigned *seen, char *err,
                       size_t errlen)
{
    char q[64];
    const char *val = tok + 1;
    size_t vn = n - 1;
    char key = tok[0];
    static const char once[] = "WHFIAC"; /* parameters that may appear once */
    const char *known = strchr(once, key);
    if (known && key != 0) {
        unsigned bit = 1u << (known - once);
        if (*seen & bit)
            return fail(Y4M_EPARAM, err, errlen, "parameter %c given twice", key);
        *seen |= bit;
    }
    switch (key) {
    case 'W':
    case 'H': {
        uint32_t v;
        if (!parse_u32(val, vn, &v)) {
            if (all_digits(val, vn)) /* a number, just too big */
                return fail(Y4M_ESIZE, err, errlen, "%c%s: %s must be 1..%d", key,
                            quote(val, vn, q, sizeof q), key == 'W' ? "width" : "height",
                            SHMBUS_FRAME_MAX_DIM);
            return fail(Y4M_EPARAM, err, errlen, "%c\"%s\": not a number", key,
                        quote(val, vn, q, sizeof q));
        }
        if (v == 0 || v > SHMBUS_FRAME_MAX_DIM)
            return fail(Y4M_ESIZE, err, errlen, "%c%u: %s must be 1..%d", key, (unsigned)v,
                        key == 'W' ? "width" : "height", SHMBUS_FRAME_MAX_DIM);
        *(key == 'W' ? &out->width : &out->height) = v;
        return 0;
    }
    case 'F':
        if (!parse_ratio(val, vn, &out->fps_num, &out->fps_den) || out->fps_num == 0 ||
            out->fps_den == 0)
            return fail(Y4M_EPARAM, err, errlen, "F\"%s\": frame rate must be N:D, both > 0",
                        quote(val, vn, q, sizeof q));
        out->has_fps = true;
        return 0;
    case 'A':
        if (!parse_ratio(val, vn, &out->sar_num, &out->sar_den))
            return fail(Y4M_EPARAM, err, errlen, "A\"%s\": pixel aspect must be N:D",
                        quote(val, vn, q, sizeof q));
        out->has_sar = true;
        return 0;
    case 'I':
        if (vn != 1 || !strchr("ptbm?", val[0]))
            return fail(Y4M_EPARAM, err, errlen, "I\"%s\": interlacing must be p, t, b, m or ?",
                        quote(val, vn, q, sizeof q));
        out->interlace = val[0];
        return 0;
    case 'C':
        if (vn == 0 || vn >= sizeof out->colorspace)
            return fail(Y4M_ECOLOR, err, errlen, "C\"%s\": colorspace not supported",
                        quote(val, vn, q, sizeof q));
        memcpy(out->colorspace, val, vn);
        out->colorspace[vn] = 0;
        return 0;
    case 'X': {
        size_t have = strlen(out->extra);
        if (have + (have > 0) + n >= sizeof out->extra) {
            out->extra_truncated = true;
            return 0;
        }
        if (have)
            out->extra[have++] = ' ';
        memcpy(out->extra + have, tok, n);
        out->extra[have + n] = 0;
        return 0;
    }
    default:
        if (key >= 'A' && key <= 'Z') { /* unknown but well-formed: the format says skip it */
            out->ignored++;
            return 0;
        }
        return fail(Y4M_EPARAM, err, errlen, "unexpected \"%s\" in the header",
                    quote(tok, n, q, sizeof q));
    }
}

int y4m_parse_header(const char *buf, size_t len, y4m_info *out, size_t *consumed, char *err,
                     size_t errlen)
{
    char q[64];
    memset(out, 0, sizeof *out);
    *consumed = 0;
    if (err && errlen)
        err[0] = 0;
    size_t m = len < MAGIC_LEN ? len : MAGIC_LEN;
    if (memcmp(buf, MAGIC, m) != 0 || (len > MAGIC_LEN && buf[MAGIC_LEN] != ' ' &&
                                       buf[MAGIC_LEN] != '\n'))
        return fail(Y4M_EMAGIC, err, errlen, "it starts with \"%s\", not \"YUV4MPEG2 \"",
                    quote(buf, len < 12 ? len : 12, q, sizeof q));
    size_t scan = len < Y4M_MAX_HEADER ? len : Y4M_MAX_HEADER;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl) {
        if (len >= Y4M_MAX_HEADER)
            return fail(Y4M_ELONG, err, errlen, "no end of header line within %d bytes",
                        Y4M_MAX_HEADER);
        return fail(Y4M_ETRUNC, err, errlen, "header cut short after %zu bytes (no newline)",
                    len);
    }
    size_t end = (size_t)(nl - buf);
    for (size_t i = MAGIC_LEN; i < end; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c != ' ' && (c < 0x21 || c > 0x7e))
            return fail(Y4M_EPARAM, err, errlen, "garbage byte 0x%02x at offset %zu of the "
                        "header", c, i);
    }
    unsigned seen = 0;
    for (size_t i = MAGIC_LEN; i < end;) {
        if (buf[i] == ' ') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < end && buf[j] != ' ')
            j++;
        int rc = parse_param(buf + i, j - i, out, &seen, err, errlen);
        if (rc)
            return rc;
        i = j;
    }
    if (!out->width || !out->height)
        return fail(Y4M_ENOSIZE, err, errlen, "the header gives no %s",
                    !out->width && !out->height ? "W (width) and H (height)"
                    : !out->width               ? "W (width)"
                                                : "H (height)");
    out->format = colorspace_format(out->colorspace);
    if (out->format == SHMBUS_PIXFMT_NONE)
        return fail(Y4M_ECOLOR, err, errlen, "C%s: colorspace not supported (use 420jpeg, "
                    "420paldv, 420mpeg2, 420, 422, 444 or mono; ffmpeg: -pix_fmt yuv420p)",
                    out->colorspace);
    shmbus_frame_hdr h;
    if (shmbus_frame_init(&h, out->format, out->width, out->height) != 0)
        return fail(Y4M_ESIZE, err, errlen, "%ux%u %s frames would be over 1 GiB",
                    (unsigned)out->width, (unsigned)out->height, shmbus_pixfmt_name(out->format));
    out->frame_size = h.payload_size;
    *consumed = end + 1;
    return Y4M_OK;
}

int y4m_parse_frame_marker(const char *buf, size_t len, size_t *consumed)
{
    *consumed = 0;
    size_t m = len < 5 ? len : 5;
    if (memcmp(buf, "FRAME", m) != 0)
        return Y4M_EFRAME;
    if (len <= 5)
        return Y4M_ETRUNC;
    if (buf[5] != '\n' && buf[5] != ' ')
        return Y4M_EFRAME;
    size_t scan = len < Y4M_MAX_MARKER ? len : Y4M_MAX_MARKER;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl)
        return len >= Y4M_MAX_MARKER ? Y4M_EFRAME : Y4M_ETRUNC;
    for (const char *p = buf + 5; p < nl; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return Y4M_EFRAME;
    *consumed = (size_t)(nl - buf) + 1;
    return Y4M_OK;
}

/* ---- frame header <-> stream parameters ----------------------------------------------------- */

static const char *default_colorspace(shmbus_pixfmt fmt)
{
    switch (fmt) {
    case SHMBUS_PIXFMT_YUV420P:
        return "420jpeg";
    case SHMBUS_PIXFMT_YUV422P:
        return "422";
    case SHMBUS_PIXFMT_YUV444P:
        return "444";
    case SHMBUS_PIXFMT_GRAY8:
        return "mono";
    default: return NULL;
    }
}

int y4m_from_frame(const shmbus_frame_hdr *h, y4m_info *out)
{
    memset(out, 0, sizeof *out);
    const char *cs = default_colorspace((shmbus_pixfmt)h->format);
    if (!cs)
        return Y4M_ECOLOR;
    out->format = (shmbus_pixfmt)h->format;
    out->width = h->width;
    out->height = h->height;
    out->has_fps = h->flags & SHMBUS_FRAME_FLAG_HAS_FPS;
    out->fps_num = h->fps_num;
    out->fps_den = h->fps_den;
    out->has_sar = h->flags & SHMBUS_FRAME_FLAG_HAS_SAR;
    out->sar_num = h->sar_num;
    out->sar_den = h->sar_den;
    out->interlace = h->interlace && strchr("ptbm?", h->interlace) ? h->interlace : 0;
    /* keep the source's tag ("420mpeg2", or none at all for 4:2:0) when it names this
     * format; otherwise the usual one */
    const char *tag = colorspace_format(h->colorspace) == out->format ? h->colorspace : cs;
    snprintf(out->colorspace, sizeof out->colorspace, "%s", tag);
    snprintf(out->extra, sizeof out->extra, "%s", h->extra);
    shmbus_frame_hdr t;
    shmbus_frame_init(&t, out->format, out->width, out->height);
    out->frame_size = t.payload_size;
    return Y4M_OK;
}

void y4m_to_frame(const y4m_info *in, shmbus_frame_hdr *h)
{
    if (in->has_fps) {
        h->flags |= SHMBUS_FRAME_FLAG_HAS_FPS;
        h->fps_num = in->fps_num;
        h->fps_den = in->fps_den;
    }
    if (in->has_sar) {
        h->flags |= SHMBUS_FRAME_FLAG_HAS_SAR;
        h->sar_num = in->sar_num;
        h->sar_den = in->sar_den;
    }
    if (strstr(in->extra, "XCOLORRANGE=FULL") || in->format == SHMBUS_PIXFMT_GRAY8)
        h->flags |= SHMBUS_FRAME_FLAG_FULL_RANGE;
    h->interlace = in->interlace;
    snprintf(h->colorspace, sizeof h->colorspace, "%s", in->colorspace);
    snprintf(h->extra, sizeof h->extra, "%s", in->extra);
}

struct outbuf {
    char *buf;
    size_t len, used;
    bool overflow;
};

static void put(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct outbuf *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->used)
        o->overflow = true;
    else
        o->used += (size_t)n;
}

int y4m_format_header(const y4m_info *in, char *buf, size_t len)
{
    if (len == 0)
        return -1;
    struct outbuf o = {buf, len, 0, false};
    put(&o, "YUV4MPEG2 W%u H%u", (unsigned)in->width, (unsigned)in->height);
    if (in->has_fps)
        put(&o, " F%u:%u", (unsigned)in->fps_num, (unsigned)in->fps_den);
    if (in->interlace)
        put(&o, " I%c", in->interlace);
    if (in->has_sar)
        put(&o, " A%u:%u", (unsigned)in->sar_num, (unsigned)in->sar_den);
    if (in->colorspace[0])
        put(&o, " C%s", in->colorspace);
    if (in->extra[0])
        put(&o, " %s", in->extra);
    put(&o, "\n");
    return o.overflow ? -1 : (int)o.used;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Read up to n bytes (fewer only at end of input). Returns bytes read or a Y4M_E* status. */
static long long read_some(y4m_reader *r, void *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (r->cancel_fd >= 0) {
            struct pollfd pf[2] = {{.fd = r->fd, .events = POLLIN},
                                   {.fd = r->cancel_fd, .events = POLLIN}};
            if (poll(pf, 2, -1) < 0 && errno != EINTR)
                return fail(Y4M_EIO, r->err, sizeof r->err, "poll: %s", strerror(errno));
            if (pf[1].revents)
                return fail(Y4M_EINTR, r->err, sizeof r->err, "interrupted");
            if (!pf[0].revents)
                continue;
        }
        ssize_t k = read(r->fd, (char *)dst + got, n - got);
        if (k == 0)
            break;
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return fail(Y4M_EIO, r->err, sizeof r->err, "read: %s", strerror(errno));
        }
        got += (size_t)k;
    }
    r->offset += got;
    return (long long)got;
}

int y4m_reader_open(y4m_reader *r, int fd, int cancel_fd)
{
    char line[Y4M_MAX_HEADER];
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->cancel_fd = cancel_fd;
    size_t n = 0;
    for (;;) {
        long long k = read_some(r, line + n, 1);
        if (k < 0)
            return (int)k;
        if (k == 0) {
            if (n == 0)
                return fail(Y4M_ETRUNC, r->err, sizeof r->err, "empty input: no Y4M header");
            break;
        }
        n++;
        /* stop at the newline, when too long, or once the magic is seen to be wrong */
        if (line[n - 1] == '\n' || n == sizeof line ||
            (n > MAGIC_LEN && (memcmp(line, MAGIC, MAGIC_LEN) != 0 ||
                               (line[MAGIC_LEN] != ' ' && line[MAGIC_LEN] != '\n'))))
            break;
    }
    size_t used;
    int rc = y4m_parse_header(line, n, &r->info, &used, r->err, sizeof r->err);
    r->data_start = r->offset;
    return rc;
}

int y4m_reader_next(y4m_reader *r, void *dst, size_t cap)
{
    char mk[Y4M_MAX_MARKER], q[64];
    long long k = read_some(r, mk, 6); /* "FRAME\n", the usual marker */
    if (k <= 0)
        return k == 0 ? Y4M_EOF : (int)k;
    size_t n = (size_t)k, used;
    while (n < sizeof mk && mk[n - 1] != '\n' && memcmp(mk, "FRAME", n < 5 ? n : 5) == 0) {
        if ((k = read_some(r, mk + n, 1)) < 0)
            return (int)k;
        if (k == 0)
            break;
        n++;
    }
    int rc = y4m_parse_frame_marker(mk, n, &used);
    if (rc == Y4M_ETRUNC)
        return fail(Y4M_ESHORT, r->err, sizeof r->err,
                    "frame %llu: the stream ends inside its FRAME line",
                    (unsigned long long)r->frames);
    if (rc != Y4M_OK)
        return fail(Y4M_EFRAME, r->err, sizeof r->err,
                    "frame %llu: expected \"FRAME\" at byte %llu, found \"%s\": the frames are "
                    "not %llu bytes as the header (%ux%u C%s) says, or the stream is corrupt",
                    (unsigned long long)r->frames, (unsigned long long)(r->offset - n),
                    quote(mk, n, q, sizeof q), (unsigned long long)r->info.frame_size,
                    (unsigned)r->info.width, (unsigned)r->info.height,
                    r->info.colorspace[0] ? r->info.colorspace : "420jpeg");
    if (cap < r->info.frame_size)
        return fail(Y4M_ESIZE, r->err, sizeof r->err, "frame of %llu bytes does not fit in %zu",
                    (unsigned long long)r->info.frame_size, cap);
    k = read_some(r, dst, r->info.frame_size);
    if (k < 0)
        return (int)k;
    if ((uint64_t)k < r->info.frame_size)
        return fail(Y4M_ESHORT, r->err, sizeof r->err,
                    "frame %llu: the stream ends after %lld of its %llu bytes",
                    (unsigned long long)r->frames, k, (unsigned long long)r->info.frame_size);
    r->frames++;
    return Y4M_OK;
}
