/* The size grammar of configuration files, the tools and the public API (shmbus_parse_size):
 * "8MiB", "1.5 kB", "4096" to a number of bytes, exactly or not at all. */
#include "config_size.h"

#include <stdbool.h>
#include <string.h>

#include "bus.h"
#include "shmbus_errors.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"B", 1},
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    {"kB", 1000ull}, {"MB", 1000000ull}, {"GB", 1000000000ull}, {"TB", 1000000000000ull},
};
#define SIZE_UNITS_TEXT "B, KiB, MiB, GiB, TiB, kB, MB, GB or TB"

int bus_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
    if (!s || !out)
        return bus_refuse(err, errlen, "no size given");
    const char *p = s;
    if (*p == '\0')
        return bus_refuse(err, errlen, "empty size");
    if (*p == '-')
        return bus_refuse(err, errlen, "a size cannot be negative");
    if (!is_digit(*p))
        return bus_refuse(err, errlen, "expected a number of bytes or a number and a unit, "
                                      "e.g. \"8MiB\"");
    uint64_t ip = 0;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (ip > (UINT64_MAX - d) / 10)
            return bus_refuse(err, errlen, "too large");
        ip = ip * 10 + d;
    }
    const char *frac = p, *frac_end = p; /* fraction digits, trailing zeros dropped */
    if (*p == '.') {
        frac = ++p;
        if (!is_digit(*p))
            return bus_refuse(err, errlen, "expected a digit after '.'");
        while (is_digit(*p))
            p++;
        frac_end = p;
        while (frac_end > frac && frac_end[-1] == '0')
            frac_end--;
        if (frac_end - frac > 19)
            return bus_refuse(err, errlen, "too many decimal places");
    }
    if (*p == ' ' && *++p == '\0')
        return bus_refuse(err, errlen, "expected a unit after the space");
    uint64_t mult = 0;
    if (*p == '\0') {
        mult = 1;
    } else {
        for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
            if (strcmp(p, size_units[i].name) == 0)
                mult = size_units[i].mult;
    }
    if (!mult) {
        size_t n = strlen(p);
        bool printable = n <= 12;
        for (size_t i = 0; printable && i < n; i++)
            printable = p[i] >= ' ' && p[i] < 0x7f && p[i] != '"' && p[i] != '\\';
        if (printable)
            return bus_refuse(err, errlen, "unknown unit \"%s\" (use " SIZE_UNITS_TEXT ")", p);
        return bus_refuse(err, errlen, "expected a unit (" SIZE_UNITS_TEXT ") after the number");
    }
    /* fraction f / 10^n of the unit: exact only if 10^n / gcd(mult, 10^n) divides f. */
    uint64_t fp = 0, p10 = 1, fbytes = 0;
    for (const char *q = frac; q < frac_end; q++) {
        fp = fp * 10 + (uint64_t)(*q - '0');
        p10 *= 10;
    }
    if (fp) {
        uint64_t g = gcd_u64(mult, p10), d = p10 / g;
        if (fp % d != 0)
            return bus_refuse(err, errlen, "not a whole number of bytes");
        fbytes = (fp / d) * (mult / g); /* < mult: cannot overflow */
    }
    if (ip > (UINT64_MAX - fbytes) / mult)
        return bus_refuse(err, errlen, "too large");
    *out = ip * mult + fbytes;
    return 0;
}
