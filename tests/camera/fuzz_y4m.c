/* Fuzz harness for the Y4M parser (examples/camera/y4m.c).
 *
 * As a libFuzzer target (-DSHMBUS_LIBFUZZER; see tests/camera/CMakeLists.txt for the clang
 * line) it runs until stopped: ./fuzz_y4m CORPUS_DIR. Without it, main() below runs a fixed,
 * seeded mutation of a few real headers: ctest's "fuzz_y4m" smoke run, under ASan and UBSan
 * in the sanitizer build.
 *
 * Properties checked on every input:
 *   - parsing never reads past the buffer (ASan), never crashes, and returns a known status;
 *   - an error comes with a reason, success says how many bytes the line took (<= len, the
 *     last one '\n') and gives sane sizes;
 *   - a header that parses is written back by y4m_format_header to one that parses to the
 *     same parameters (the publisher -> subscriber round trip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "y4m.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_y4m: %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    y4m_info info;
    size_t used = 12345;
    char err[256];
    err[0] = 0;
    int rc = y4m_parse_header(buf, size, &info, &used, err, sizeof err);
    CHECK(rc <= 0 && rc >= Y4M_EINTR);
    if (rc != Y4M_OK) {
        CHECK(err[0] != 0);
        CHECK(used == 0);
    } else {
        CHECK(used > 0 && used <= size && buf[used - 1] == '\n');
        CHECK(info.width >= 1 && info.width <= SHMBUS_FRAME_MAX_DIM);
        CHECK(info.height >= 1 && info.height <= SHMBUS_FRAME_MAX_DIM);
        CHECK(info.frame_size > 0 && info.frame_size <= SHMBUS_FRAME_MAX_PAYLOAD);
        char line[Y4M_MAX_HEADER + 64];
        int n = y4m_format_header(&info, line, sizeof line);
        CHECK(n > 0);
        y4m_info again;
        size_t used2;
        CHECK(y4m_parse_header(line, (size_t)n, &again, &used2, err, sizeof err) == Y4M_OK);
        CHECK(used2 == (size_t)n);
        CHECK(again.width == info.width && again.height == info.height);
        CHECK(again.format == info.format && again.frame_size == info.frame_size);
        CHECK(again.has_fps == info.has_fps && again.fps_num == info.fps_num);
        CHECK(again.has_sar == info.has_sar && again.sar_den == info.sar_den);
        CHECK(again.interlace == info.interlace);
        CHECK(strcmp(again.colorspace, info.colorspace) == 0);
        CHECK(strcmp(again.extra, info.extra) == 0);
    }
    size_t mused = 999;
    rc = y4m_parse_frame_marker(buf, size, &mused);
    CHECK(rc == Y4M_OK || rc == Y4M_ETRUNC || rc == Y4M_EFRAME);
    CHECK(rc == Y4M_OK ? (mused >= 6 && mused <= size) : mused == 0);
    free(buf);
    return 0;
}

#ifndef SHMBUS_LIBFUZZER
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    static const char *const seeds[] = {
        "YUV4MPEG2 W1920 H1080 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG\nFRAME\n",
        "YUV4MPEG2 W33 H17 F25:1 It A0:0 C444 XCOLORRANGE=FULL\n",
        "YUV4MPEG2 W16 H16 Cmono\n",
        "YUV4MPEG2 W7 H3 C422 Z1 XA=1\n",
        "FRAME Ixyz\n",
    };
    static const char tokens[][12] = {" W", " H", " F", ":", " C444", " Cmono", " X", "\n",
                                      "0", "9", "16384", "4294967296", " ", "YUV4MPEG2",
                                      "FRAME"};
    long iterations = argc > 1 ? atol(argv[1]) : 200000;
    uint64_t s = 42;
    uint8_t buf[2048];
    for (long it = 0; it < iterations; it++) {
        const char *seed = seeds[rnd(&s) % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        for (int m = (int)(rnd(&s) % 6); m >= 0; m--) {
            uint64_t r = rnd(&s);
            size_t at = n ? (size_t)(r >> 8) % n : 0;
            switch (r % 5) {
            case 0: /* flip a byte */
                if (n)
                    buf[at] ^= (uint8_t)(1u << ((r >> 40) % 8));
                break;
            case 1: /* random byte */
                if (n)
                    buf[at] = (uint8_t)(r >> 32);
                break;
            case 2: /* cut */
                n = at;
                break;
            case 3: { /* insert a token */
                const char *t = tokens[(r >> 32) % (sizeof tokens / sizeof tokens[0])];
                size_t tl = strlen(t);
                if (n + tl < sizeof buf) {
                    memmove(buf + at + tl, buf + at, n - at);
                    memcpy(buf + at, t, tl);
                    n += tl;
                }
                break;
            }
            default: /* duplicate a span */
                if (n && n * 2 < sizeof buf) {
                    memcpy(buf + n, buf, n);
                    n *= 2;
                }
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_y4m: %ld inputs, no failure\n", iterations);
    return 0;
}
#endif
