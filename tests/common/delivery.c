/* A test's config file for the delivery path the run asks for (see delivery.h). */
#include "delivery.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *delivery_wanted(void)
{
    const char *d = getenv("SHMBUS_TEST_DELIVERY");
    return d && *d ? d : NULL;
}

bool delivery_is_shm(void)
{
    const char *d = delivery_wanted();
    return d && strcmp(d, "shm") == 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = 0;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* Set "delivery": value on one topic object (replacing one the file had). */
static bool set_delivery(cJSON *topic, const char *value)
{
    if (!cJSON_IsObject(topic))
        return false;
    cJSON *v = cJSON_CreateString(value);
    if (!v)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(topic, "delivery"))
        return cJSON_ReplaceItemInObjectCaseSensitive(topic, "delivery", v);
    return cJSON_AddItemToObject(topic, "delivery", v);
}

/* Write text to path through a temporary file and rename(): a program already started with
 * path (ct_spawn makes the copy again for each program) reads the old file or the new one,
 * never a truncated one. */
static int write_text(const char *path, const char *text)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    bool ok = fputs(text, f) >= 0;
    ok = fclose(f) == 0 && ok && rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    return ok ? 0 : -1;
}

int delivery_config(const char *src, const char *dir, char *out, size_t len)
{
    const char *want = delivery_wanted();
    if (!want) {
        if ((size_t)snprintf(out, len, "%s", src) >= len) {
            fprintf(stderr, "delivery_config: %s: path too long\n", src);
            return -1;
        }
        return 0;
    }
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    if ((size_t)snprintf(out, len, "%s/delivery-%s", dir, base) >= len) {
        fprintf(stderr, "delivery_config: %s/delivery-%s: path too long\n", dir, base);
        return -1;
    }
    char *text = slurp(src);
    if (!text) {
        fprintf(stderr, "delivery_config: cannot read %s: %s\n", src, strerror(errno));
        return -1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "delivery_config: %s is not a JSON object\n", src);
        cJSON_Delete(root);
        return -1;
    }
    bool ok = true;
    cJSON *topic;
    cJSON_ArrayForEach(topic, cJSON_GetObjectItemCaseSensitive(root, "topics"))
        ok = ok && set_delivery(topic, want);
    cJSON *def = cJSON_GetObjectItemCaseSensitive(root, "default_topic");
    if (def)
        ok = ok && set_delivery(def, want);
    char *printed = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!printed) {
        fprintf(stderr, "delivery_config: %s: a topic is not an object, or out of memory\n",
                src);
        return -1;
    }
    int rc = write_text(out, printed);
    cJSON_free(printed);
    if (rc != 0)
        fprintf(stderr, "delivery_config: cannot write %s: %s\n", out, strerror(errno));
    return rc;
}
