/* The detail of the last error, per thread: what pool_error() records and
 * shmpool_last_error() returns. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char t_error[256];

const char *shmpool_last_error(void) { return t_error; }

int pool_error(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_error, sizeof t_error, fmt, ap);
    va_end(ap);
    return rc;
}

void pool_clear_error(void) { t_error[0] = 0; }
