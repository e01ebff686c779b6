/* Test pattern, composed row by row: a background row (bars or ramp) is copied, then the
 * square and the digits are painted over it as runs of one colour. */
#include "pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

/* 5x7 digits, one byte per row, bit 4 = leftmost column. */
static const uint8_t font[10][7] = {
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}, {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e},
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}, {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e},
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}, {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e},
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}, {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}, {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c},
};

/* 75% colour bars: white, yellow, cyan, green, magenta, red, blue, black. */
static const uint8_t bar_rgb[8][3] = {
    {191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0},
    {191, 0, 191},   {191, 0, 0},   {0, 0, 191},   {16, 16, 16},
};
static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};

int pattern_init(pattern *p, uint32_t width, uint32_t height)
{
    memset(p, 0, sizeof *p);
    p->width = width;
    p->height = height;
    p->bars = malloc((size_t)width * 3);
    p->ramp = malloc((size_t)width * 3);
    p->row = malloc((size_t)width * 3);
    if (!p->bars || !p->ramp || !p->row) {
        pattern_free(p);
        return -1;
    }
    return 0;
}

void pattern_free(pattern *p)
{
    free(p->bars);
    free(p->ramp);
    free(p->row);
    memset(p, 0, sizeof *p);
}

static void fill(uint8_t *row, uint32_t width, int64_t x0, int64_t x1, const uint8_t c[3])
{
    if (x0 < 0)
        x0 = 0;
    if (x1 > width)
        x1 = width;
    for (int64_t x = x0; x < x1; x++)
        memcpy(row + 3 * x, c, 3);
}

/* Position on a segment of length `range`, going back and forth at one unit per step. */
static uint32_t bounce(uint64_t t, uint32_t range)
{
    if (range == 0)
        return 0;
    uint64_t period = 2ull * range, k = t % period;
    return (uint32_t)(k < range ? k : period - k);
}

void pattern_render(pattern *p, shmbus_frame_hdr *h, uint64_t n)
{
    uint32_t w = p->width, ht = p->height;
    uint32_t speed = w / 320 ? w / 320 : 1; /* pixels per frame, scaled with the frame */
    for (uint32_t x = 0; x < w; x++) {
        uint64_t bx = (x + n * speed * 2) % w;
        memcpy(p->bars + 3 * x, bar_rgb[bx * 8 / w], 3);
        uint8_t g = (uint8_t)(((uint64_t)x * 256 / w + 256 - (n * speed) % 256) & 0xff);
        p->ramp[3 * x] = p->ramp[3 * x + 1] = p->ramp[3 * x + 2] = g;
    }
    /* the frame number: at least 4 digits, in a black box, 9/40 of the frame height */
    char digits[24];
    int nd = snprintf(digits, sizeof digits, "%04llu", (unsigned long long)n);
    uint32_t s = ht / 40;
    if ((nd * 6 + 1) * s > w)
        s = w / (uint32_t)(nd * 6 + 1);
    if (s == 0)
        s = 1;
    uint32_t box_w = (uint32_t)(nd * 6 + 1) * s, box_h = 9 * s, box_x = s, box_y = s;
    uint32_t sq = ht / 8 ? ht / 8 : 1;
    uint32_t sq_x = bounce(n * speed * 3, w > sq ? w - sq : 0);
    uint32_t sq_y = bounce(n * speed * 2, ht > sq ? ht - sq : 0);
    uint32_t ramp_from = ht - ht / 4;

    for (uint32_t y = 0; y < ht; y++) {
        /* rgb24 is composed in place; the other formats through one scratch row */
        uint8_t *row = h->format == SHMBUS_PIXFMT_RGB24
                           ? shmbus_frame_plane_mut(h, 0) + (uint64_t)y * h->stride[0]
                           : p->row;
        memcpy(row, y < ramp_from ? p->bars : p->ramp, (size_t)w * 3);
        if (y >= sq_y && y < sq_y + sq)
            fill(row, w, sq_x, (int64_t)sq_x + sq, white);
        if (y >= box_y && y < box_y + box_h) {
            fill(row, w, box_x, (int64_t)box_x + box_w, black);
            uint32_t fy = (y - box_y) / s;
            if (fy >= 1 && fy <= 7)
                for (int d = 0; d < nd; d++) {
                    uint8_t bits = font[digits[d] - '0'][fy - 1];
                    for (int fx = 0; fx < 5; fx++)
                        if (bits & (0x10 >> fx)) {
                            int64_t x0 = box_x + (int64_t)(d * 6 + 1 + fx) * s;
                            fill(row, w, x0, x0 + s, white);
                        }
                }
        }
        conv_put_rgb_row(h, y, row);
    }
}
