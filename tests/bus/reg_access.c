/* See reg_access.h. */
#include "reg_access.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso_common.h"

/* Segment shmbus.<dom>.<tag>, whose last `size` bytes are the layer's struct (the segment's
 * own header precedes it). */
static reg_map map_segment(const char *dom, const char *tag, size_t size)
{
    char path[256];
    reg_map m = {0};
    snprintf(path, sizeof path, "%s/shmbus.%s.%s", shm_dir(), dom, tag);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < size) {
        if (fd >= 0)
            close(fd);
        return m;
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return m;
    m.base = base;
    m.len = (size_t)st.st_size;
    m.r = (struct reg_hdr *)((char *)base + m.len - size);
    return m;
}

reg_map reg_map_open(const char *dom) { return map_segment(dom, "reg", sizeof(struct reg_hdr)); }

reg_map reg_rings_open(const char *dom, struct reg_rings **rings)
{
    reg_map m = map_segment(dom, "rings", sizeof(struct reg_rings));
    *rings = (struct reg_rings *)m.r;
    m.r = NULL;
    return m;
}

void reg_map_close(reg_map *m)
{
    if (m->base)
        munmap(m->base, m->len);
    *m = (reg_map){0};
}

bool reg_wait_pubs_free(const struct reg_hdr *r, const unsigned *idx, unsigned n,
                        int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        bool all = true;
        for (unsigned i = 0; i < n; i++)
            all &= atomic_load(&r->pubs[idx[i]].own) == 0;
        if (all || waited >= timeout_ms)
            return all;
        ps_sleep_ms(10);
    }
}
