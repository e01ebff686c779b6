/* Auxiliary segments: a file of the domain (shmbus.D.<tag>) for the layers above, made once
 * under the domain's serialisation, with a header of its own (magic written last). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct aux_req {
    shmpool_domain *d;
    const char *tag;
    size_t size;
    int (*init)(void *, void *);
    void *ctx;
    void *map;
};

static int aux_map(struct aux_req *r, int fd, bool fresh)
{
    size_t total = r->size + sizeof(struct aux_hdr);
    int prot = r->d->observer ? PROT_READ : PROT_READ | PROT_WRITE;
    void *m = mmap(NULL, total, prot, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return pool_errno_status(errno);
    struct aux_hdr *h = m;
    int rc = 0;
    if (fresh) {
        h->version = AUX_VERSION;
        h->header_size = (uint32_t)sizeof *h;
        h->size = r->size;
        snprintf(h->tag, sizeof h->tag, "%s", r->tag);
        rc = r->init ? r->init((uint8_t *)m + sizeof *h, r->ctx) : 0;
        if (rc == 0)
            atomic_store_explicit(&h->magic, AUX_MAGIC, memory_order_release);
    } else if (atomic_load_explicit(&h->magic, memory_order_acquire) != AUX_MAGIC ||
               h->version != AUX_VERSION || h->header_size != sizeof *h || h->size != r->size ||
               strncmp(h->tag, r->tag, sizeof h->tag) != 0) {
        /* magic 0: its creator is still initialising it; an observer may retry */
        rc = atomic_load(&h->magic) == 0 && r->d->observer ? SHMBUS_EAGAIN : SHMBUS_EBADSEG;
    }
    if (rc) {
        munmap(m, total);
        return rc;
    }
    r->map = (uint8_t *)m + sizeof *h;
    pool_guard(m, total, prot, NULL);
    return 0;
}

static int aux_open_locked(void *arg)
{
    struct aux_req *r = arg;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/shmbus.%s.%s", r->d->dir, r->d->name, r->tag) >=
        sizeof path)
        return SHMBUS_EINVAL;
    size_t total = r->size + sizeof(struct aux_hdr);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, r->d->mode);
        if (fd < 0)
            return pool_error(pool_errno_status(errno), "%s", path);
        struct stat st;
        int rc = pool_check_segment(r->d, fd, path, &st);
        bool fresh = rc == 0 && st.st_size == 0;
        if (rc == 0 && fresh)
            rc = pool_shape_file(r->d, fd, total);
        else if (rc == 0 && (uint64_t)st.st_size != total)
            rc = SHMBUS_EBADSEG;
        if (rc == 0)
            rc = aux_map(r, fd, fresh);
        if (rc == SHMBUS_EBADSEG && !fresh && (uint64_t)st.st_size == total) {
            uint64_t magic = 1;
            if (pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic && magic == 0) {
                close(fd); /* a creator died half-way (we hold the lock): make it again */
                if (pool_unlink_segment(r->d, path))
                    continue;
                return SHMBUS_EBADSEG;
            }
        }
        if (rc && fresh)
            pool_unlink_segment(r->d, path);
        close(fd);
        return rc;
    }
    return SHMBUS_EBADSEG;
}

int shmpool_segment_open(shmpool_domain *d, const char *tag, size_t size,
                         int (*init)(void *map, void *ctx), void *ctx, void **map)
{
    if (!d || !tag || !*tag || strlen(tag) >= sizeof((struct aux_hdr *)0)->tag ||
        strchr(tag, '/') || !strcmp(tag, "ctl") ||
        !strncmp(tag, "pool.", 5) || size == 0 || !map)
        return SHMBUS_EINVAL;
    struct aux_req r = {.d = d, .tag = tag, .size = size, .init = init, .ctx = ctx};
    int rc;
    if (d->observer) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/shmbus.%s.%s", d->dir, d->name, tag);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            return pool_errno_status(errno);
        struct stat st;
        rc = pool_check_segment(d, fd, path, &st);
        if (rc == 0)
            rc = st.st_size == 0                                       ? SHMBUS_EAGAIN
                 : (uint64_t)st.st_size != size + sizeof(struct aux_hdr) ? SHMBUS_EBADSEG
                                                                         : aux_map(&r, fd, false);
        close(fd);
    } else {
        rc = shmpool_domain_serialize(d, aux_open_locked, &r);
    }
    if (rc == 0)
        *map = r.map;
    return rc;
}

void shmpool_segment_close(void *map, size_t size)
{
    if (map) {
        pool_unguard((uint8_t *)map - sizeof(struct aux_hdr));
        munmap((uint8_t *)map - sizeof(struct aux_hdr), size + sizeof(struct aux_hdr));
    }
}
