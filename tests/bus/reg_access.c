/* See reg_access.h. */
#include "reg_access.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iso_common.h"

reg_map reg_map_open(const char *dom)
{
    char path[256];
    reg_map m = {0};
    snprintf(path, sizeof path, "%s/shmbus.%s.reg", shm_dir(), dom);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct reg_hdr)) {
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
    /* the registry ends the segment; the segment's own header precedes it */
    m.r = (struct reg_hdr *)((char *)base + m.len - sizeof(struct reg_hdr));
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
        proc_sleep_ms(10);
    }
}
