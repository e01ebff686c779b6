/* The test images' pixels, shared by the shmbus side of the tests and the ROS 2 peer (which
 * links nothing of shmbus): bytes 0..7 hold the image's index, bytes 8..15 its capture time
 * (CLOCK_REALTIME ns), the rest a pattern of the index, so a receiver can check every byte
 * of every image and which image it is. Little-endian hosts only (as shmbus). Header-only. */
#ifndef BRIDGE_PIXEL_PATTERN_H
#define BRIDGE_PIXEL_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static inline uint64_t pp_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint8_t pp_byte(uint64_t index, size_t k)
{
    return (uint8_t)(index * 131u + k * 7u + (k >> 9) * 3u);
}

/* Fill n (>= 16) bytes for image `index` captured at real_ns. */
static inline void pp_fill(uint8_t *p, size_t n, uint64_t index, uint64_t real_ns)
{
    memcpy(p, &index, 8);
    memcpy(p + 8, &real_ns, 8);
    for (size_t k = 16; k < n; k++) p[k] = pp_byte(index, k);
}

/* The index and capture time of an image; true if every byte matches its index. */
static inline bool pp_check(const uint8_t *p, size_t n, uint64_t *index, uint64_t *real_ns)
{
    if (n < 16) return false;
    memcpy(index, p, 8);
    memcpy(real_ns, p + 8, 8);
    for (size_t k = 16; k < n; k++)
        if (p[k] != pp_byte(*index, k)) return false;
    return true;
}

#endif
