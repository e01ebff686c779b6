/* The bus's error detail: one thread-local text per thread, set by every failure and cleared
 * by every public entry point (shmbus_last_error); and the status codes' texts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char t_error[BUS_ERR_MAX];

const char *bus_strerror(int status)
{
    switch (status) {
#define BUS_X_SENTENCE(name, value, sentence) \
    case value:                               \
        return sentence;
        SHMBUS_ERRORS(BUS_X_SENTENCE)
#undef BUS_X_SENTENCE
    default:
        return "unknown shmbus status";
    }
}

const char *bus_errname(int status)
{
    switch (status) {
#define BUS_X_NAME(name, value, sentence) \
    case value:                           \
        return #name;
        SHMBUS_ERRORS(BUS_X_NAME)
#undef BUS_X_NAME
    default:
        return "SHMBUS_E?";
    }
}

int bus_refuse(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return SHMBUS_EINVAL;
}

const char *bus_last_error(void) { return t_error; }

void bus_clear_error(void) { t_error[0] = '\0'; }

int bus_name_check(enum bus_name_kind kind, const char *s)
{
    if (bus_name_valid(kind, s, t_error, sizeof t_error))
        return 0;
    return SHMBUS_EINVAL;
}

void bus_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_error, sizeof t_error, fmt, ap);
    va_end(ap);
}

/* Record a detail for status rc (keeping errno's text for OS errors) and return rc. */
int bus_errno(int rc, const char *fmt, ...)
{
    int saved = errno;
    char what[BUS_ERR_MAX - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == SHMBUS_ESYS || rc == SHMBUS_EACCES || rc == SHMBUS_ENOSPC)
        bus_set_error("%s: %s", what, strerror(saved));
    else
        bus_set_error("%s", what);
    errno = saved;
    return rc;
}

