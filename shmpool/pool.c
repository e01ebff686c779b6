/* Pool segments: layout, creation (reserved up front), mapping with validation, statistics.
 *
 * A pool's layout is a pure function of its sorted class list. Every process recomputes it
 * from the list in the domain directory and checks the segment against it, so no offset read
 * from shared memory is ever trusted (docs/design.md, invariant 6).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PAGE 4096u

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static int pool_layout(const shmpool_class *classes, unsigned n, struct pool_class_shm *out,
                       uint64_t *total)
{
    if (n == 0 || n > SHMPOOL_MAX_CLASSES)
        return SHMBUS_EINVAL;
    uint64_t off = sizeof(struct pool_seg_hdr);
    for (unsigned i = 0; i < n; i++) {
        if (classes[i].block_size == 0 || classes[i].block_size > SHMPOOL_MAX_BLOCK_SIZE ||
            classes[i].count == 0 || classes[i].count > SHMPOOL_MAX_BLOCKS)
            return SHMBUS_EINVAL;
        if (i > 0 && classes[i].block_size <= classes[i - 1].block_size)
            return SHMBUS_EINVAL; /* sorted, no duplicates */
        memset(&out[i], 0, sizeof out[i]);
        out[i].block_size = classes[i].block_size;
        out[i].count = classes[i].count;
        out[i].align = classes[i].block_size >= 65536 ? PAGE : 64;
        out[i].stride = round_up(classes[i].block_size, out[i].align);
        out[i].hdr_offset = off;
        off += (uint64_t)classes[i].count * sizeof(struct pool_block_hdr);
    }
    off = round_up(off, PAGE); /* the payload area starts on a page */
    for (unsigned i = 0; i < n; i++) {
        off = round_up(off, out[i].align);
        out[i].data_offset = off;
        off += out[i].stride * out[i].count;
        if (off > (1ull << 46))
            return SHMBUS_ETOOBIG;
    }
    *total = round_up(off, PAGE);
    return 0;
}

static int pool_seg_path(const shmpool_domain *d, const char *pool, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/shmbus.%s.pool.%s", d->dir, d->name, pool);
    return n < 0 || (size_t)n >= len ? SHMBUS_EINVAL : 0;
}

/* Copy (field by field: the caller's padding bytes must not reach comparisons) and sort. */
static int sort_classes(const shmpool_class *in, unsigned n, shmpool_class *out)
{
    if (n == 0 || n > SHMPOOL_MAX_CLASSES || !in)
        return SHMBUS_EINVAL;
    memset(out, 0, n * sizeof *out);
    for (unsigned i = 0; i < n; i++) {
        out[i].block_size = in[i].block_size;
        out[i].count = in[i].count;
    }
    for (unsigned i = 1; i < n; i++) /* insertion sort: n <= 8 */
        for (unsigned j = i; j > 0 && out[j].block_size < out[j - 1].block_size; j--) {
            shmpool_class t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return 0;
}

/* Create the segment and its directory entry. Caller holds serial_lock and the domain flock. */
static int pool_create(shmpool_domain *d, unsigned idx, const char *name,
                       const shmpool_class *classes, unsigned n)
{
    struct pool_class_shm cls[SHMPOOL_MAX_CLASSES];
    uint64_t total;
    int rc = pool_layout(classes, n, cls, &total);
    if (rc)
        return rc;
    char path[PATH_MAX];
    if ((rc = pool_seg_path(d, name, path, sizeof path)) != 0)
        return rc;
    /* A file without a directory entry is a dead creator's leftover: replace it (if it is
     * the domain's own file; anything else makes the create below fail with EEXIST). */
    pool_unlink_segment(d, path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, d->mode);
    if (fd < 0)
        return pool_error(pool_errno_status(errno), "%s", path);
    if ((rc = pool_shape_file(d, fd, total)) != 0)
        goto fail_unlink;
    size_t ctl_len = (size_t)cls[0].data_offset; /* header + block headers, page-rounded */
    struct pool_seg_hdr *h = mmap(NULL, ctl_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        rc = pool_errno_status(errno);
        goto fail_unlink;
    }
    uint32_t id = 0;
    while (id == 0)
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
            id = (uint32_t)(pool_now_ns() ^ ((uint64_t)getpid() << 16));
    h->version = POOL_VERSION;
    h->header_size = sizeof *h;
    h->total_size = total;
    h->pool_id = id;
    h->nclasses = n;
    snprintf(h->name, sizeof h->name, "%s", name);
    memcpy(h->classes, cls, n * sizeof cls[0]);
    atomic_store_explicit(&h->magic, POOL_MAGIC, memory_order_release);
    munmap(h, ctl_len);
    close(fd);

    struct ctl_pool_entry *e = &d->ctl->pools[idx];
    e->pool_id = id;
    e->nclasses = n;
    e->total_size = total;
    memset(e->name, 0, sizeof e->name);
    snprintf(e->name, sizeof e->name, "%s", name);
    memset(e->classes, 0, sizeof e->classes);
    memcpy(e->classes, classes, n * sizeof *classes);
    atomic_store_explicit(&e->state, DIR_READY, memory_order_release);
    return 0;

fail_unlink:
    pool_unlink_segment(d, path);
    close(fd);
    return rc;
}

static bool class_matches(const struct pool_class_shm *a, const struct pool_class_shm *b)
{
    return a->block_size == b->block_size && a->stride == b->stride &&
           a->hdr_offset == b->hdr_offset && a->data_offset == b->data_offset &&
           a->count == b->count && a->align == b->align;
}

/* A pool name as the segment's file name takes it: no '/', no leading '.', not empty. */
static bool pool_name_ok(const char *name)
{
    size_t n = strnlen(name, SHMPOOL_NAME_MAX + 1);
    return n > 0 && n <= SHMPOOL_NAME_MAX && !strchr(name, '/') && name[0] != '.';
}

/* Copy a directory entry out of shared memory once, then check the copy. */
static int read_entry(shmpool_domain *d, unsigned idx, struct ctl_pool_entry *e)
{
    const struct ctl_pool_entry *shm = &d->ctl->pools[idx];
    if (atomic_load_explicit(&shm->state, memory_order_acquire) != DIR_READY)
        return SHMBUS_ENOENT;
    memcpy((char *)e + sizeof e->state, (const char *)shm + sizeof shm->state,
           sizeof *e - sizeof e->state);
    e->name[SHMPOOL_NAME_MAX] = 0;
    if (!pool_name_ok(e->name))
        return pool_error(SHMBUS_EBADSEG, "domain %s: pool directory entry %u has a bad name",
                          d->name, idx);
    return 0;
}

static int map_view(struct shmbus_pool *p, int fd, bool observer)
{
    void *m = mmap(NULL, p->map_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return pool_errno_status(errno);
    if (!observer && mprotect(m, p->data_start, PROT_READ | PROT_WRITE) != 0) {
        int rc = pool_errno_status(errno);
        munmap(m, p->map_size);
        return rc;
    }
    p->hdr = m;
    pool_guard(m, p->data_start, observer ? PROT_READ : PROT_READ | PROT_WRITE, &p->broken);
    pool_guard((uint8_t *)m + p->data_start, p->map_size - p->data_start, PROT_READ, &p->broken);
    return 0;
}

static void unmap_view(struct shmbus_pool *p)
{
    uint8_t *w = atomic_load(&p->wmap);
    if (w) {
        pool_unguard(w);
        munmap(w, p->map_size - p->data_start);
    }
    if (p->hdr) {
        pool_unguard(p->hdr);
        pool_unguard((uint8_t *)p->hdr + p->data_start);
        munmap(p->hdr, p->map_size);
    }
    if (p->fd >= 0)
        close(p->fd);
}

/* Does the mapped header say what the directory entry and our own layout say? */
static bool header_matches(const struct pool_seg_hdr *h, const struct ctl_pool_entry *e,
                           const struct pool_class_shm *cls, uint64_t total)
{
    if (atomic_load_explicit(&h->magic, memory_order_acquire) != POOL_MAGIC ||
        h->version != POOL_VERSION || h->header_size != sizeof *h || h->total_size != total ||
        h->pool_id != e->pool_id || h->nclasses != e->nclasses)
        return false;
    for (unsigned c = 0; c < e->nclasses; c++)
        if (!class_matches(&h->classes[c], &cls[c]))
            return false;
    return true;
}

static int map_locked(shmpool_domain *d, unsigned idx, struct shmbus_pool **out)
{
    struct shmbus_pool *p = atomic_load_explicit(&d->pools[idx], memory_order_acquire);
    if (p) {
        *out = p;
        return 0;
    }
    struct ctl_pool_entry e;
    int rc = read_entry(d, idx, &e);
    if (rc)
        return rc;
    unsigned n = e.nclasses;
    struct pool_class_shm cls[SHMPOOL_MAX_CLASSES];
    uint64_t total;
    if (n > SHMPOOL_MAX_CLASSES || pool_layout(e.classes, n, cls, &total) != 0 ||
        total != e.total_size)
        return pool_error(SHMBUS_EBADSEG, "domain %s: pool \"%s\": bad directory entry",
                          d->name, e.name);
    char path[PATH_MAX];
    if (pool_seg_path(d, e.name, path, sizeof path) != 0)
        return SHMBUS_EINVAL;
    int fd = open(path, (d->observer ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return pool_error(pool_errno_status(errno), "%s", path);
    struct stat st;
    if ((rc = pool_check_segment(d, fd, path, &st)) != 0) {
        close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size != total) {
        close(fd);
        return pool_error(SHMBUS_EBADSEG, "%s: %llu bytes, its classes need %llu", path,
                          (unsigned long long)st.st_size, (unsigned long long)total);
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        close(fd);
        return SHMBUS_ENOMEM;
    }
    p->dom = d;
    p->fd = fd;
    p->map_size = total;
    p->data_start = (size_t)cls[0].data_offset;
    p->pool_id = e.pool_id;
    p->nclasses = n;
    memcpy(p->name, e.name, sizeof p->name);
    if ((rc = map_view(p, fd, d->observer)) != 0)
        goto fail;
    rc = pool_error(SHMBUS_EBADSEG, "%s: header does not match the pool directory", path);
    if (!header_matches(p->hdr, &e, cls, total))
        goto fail;
    rc = SHMBUS_ENOMEM;
    for (unsigned c = 0; c < n; c++) {
        p->geom[c] = (struct pool_geom){
            .block_size = cls[c].block_size, .stride = cls[c].stride, .count = cls[c].count};
        p->bh[c] = (struct pool_block_hdr *)((uint8_t *)p->hdr + cls[c].hdr_offset);
        p->data[c] = (uint8_t *)p->hdr + cls[c].data_offset;
        p->data_off[c] = (size_t)cls[c].data_offset - p->data_start;
        p->rec[c] = calloc(cls[c].count, sizeof(struct shmbus_block));
        if (!p->rec[c])
            goto fail;
        for (uint32_t k = 0; k < cls[c].count; k++) {
            p->rec[c][k].cls = (uint8_t)c;
            p->rec[c][k].index = k;
            p->rec[c][k].pool = p;
        }
    }
    pool_clear_error();
    for (unsigned i = 0; i < POOL_STRIPES; i++)
        pthread_mutex_init(&p->stripes[i], NULL);
    pthread_mutex_init(&p->protect_lock, NULL);
    atomic_store_explicit(&d->pools[idx], p, memory_order_release);
    *out = p;
    return 0;

fail:
    for (unsigned c = 0; c < n; c++)
        free(p->rec[c]);
    unmap_view(p);
    free(p);
    return rc;
}

static int pool_map(shmpool_domain *d, unsigned idx, struct shmbus_pool **out)
{
    pthread_mutex_lock(&d->pools_lock);
    int rc = map_locked(d, idx, out);
    pthread_mutex_unlock(&d->pools_lock);
    return rc;
}

void pool_unmap(struct shmbus_pool *p)
{
    unmap_view(p);
    for (unsigned c = 0; c < p->nclasses; c++)
        free(p->rec[c]);
    for (unsigned i = 0; i < POOL_STRIPES; i++)
        pthread_mutex_destroy(&p->stripes[i]);
    pthread_mutex_destroy(&p->protect_lock);
    free(p);
}

/* Map every pool in the directory that this process has not mapped yet. */
int pool_map_all(shmpool_domain *d)
{
    int rc = 0;
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        if (atomic_load_explicit(&d->ctl->pools[i].state, memory_order_acquire) != DIR_READY)
            continue;
        if (atomic_load_explicit(&d->pools[i], memory_order_acquire))
            continue;
        struct shmbus_pool *p;
        int r = pool_map(d, i, &p);
        if (r && !rc)
            rc = r;
    }
    return rc;
}

/* Map the payload area a second time, writable, for the blocks this process may write. */
int pool_make_writable(struct shmbus_pool *p)
{
    if (atomic_load_explicit(&p->wmap, memory_order_acquire))
        return 0;
    if (p->dom->observer)
        return SHMBUS_EACCES;
    int rc = 0;
    pthread_mutex_lock(&p->protect_lock);
    if (!atomic_load(&p->wmap)) {
        size_t len = p->map_size - p->data_start;
        void *w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, (off_t)p->data_start);
        if (w == MAP_FAILED) {
            rc = pool_errno_status(errno);
        } else {
            pool_guard(w, len, PROT_READ | PROT_WRITE, &p->broken);
            atomic_store_explicit(&p->wmap, (uint8_t *)w, memory_order_release);
        }
    }
    pthread_mutex_unlock(&p->protect_lock);
    return rc;
}

/* Has the segment shrunk since we mapped it? Marks the pool broken if so. */
bool pool_check_size(struct shmbus_pool *p)
{
    struct stat st;
    if (!atomic_load(&p->broken) && fstat(p->fd, &st) == 0 && (uint64_t)st.st_size < p->map_size)
        atomic_store(&p->broken, true);
    return !atomic_load(&p->broken);
}

static int find_entry(shmpool_domain *d, const char *name)
{
    for (unsigned i = 0; i < SHMPOOL_MAX_POOLS; i++) {
        struct ctl_pool_entry *e = &d->ctl->pools[i];
        if (atomic_load_explicit(&e->state, memory_order_acquire) == DIR_READY &&
            strncmp(e->name, name, sizeof e->name) == 0)
            return (int)i;
    }
    return -1;
}

/* Open the directory entry idx, checking it has exactly the requested classes. */
static bool same_classes(const struct ctl_pool_entry *e, const shmpool_class *sorted, unsigned n)
{
    if (e->nclasses != n)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (e->classes[i].block_size != sorted[i].block_size ||
            e->classes[i].count != sorted[i].count)
            return false;
    return true;
}

static int open_entry(shmpool_domain *d, unsigned idx, const shmpool_class *sorted, unsigned n,
                      shmbus_pool **out)
{
    if (n && !same_classes(&d->ctl->pools[idx], sorted, n))
        return SHMBUS_EINCOMPAT;
    return pool_map(d, idx, out);
}

int shmpool_pool_open(shmpool_domain *d, const char *name, const shmpool_class *classes,
                      unsigned nclasses, shmbus_pool **out)
{
    if (!d || !out || !name || !*name || strlen(name) > SHMPOOL_NAME_MAX ||
        strchr(name, '/') || name[0] == '.')
        return SHMBUS_EINVAL;
    if (pool_forked(d))
        return SHMBUS_EFORKED;
    shmpool_class sorted[SHMPOOL_MAX_CLASSES];
    memset(sorted, 0, sizeof sorted);
    int rc;
    if (nclasses && (rc = sort_classes(classes, nclasses, sorted)) != 0)
        return rc;
    if (nclasses) {
        struct pool_class_shm tmp[SHMPOOL_MAX_CLASSES];
        uint64_t total;
        if ((rc = pool_layout(sorted, nclasses, tmp, &total)) != 0)
            return rc;
    }
    int idx = find_entry(d, name);
    if (idx >= 0)
        return open_entry(d, (unsigned)idx, sorted, nclasses, out);
    if (nclasses == 0 || d->observer)
        return SHMBUS_ENOENT;

    /* Create: serialised in the process (serial_lock) and across processes (flock). */
    pthread_mutex_lock(&d->serial_lock);
    rc = pool_domain_lock_op(d, LOCK_EX);
    if (rc)
        goto out_unlock_local;
    idx = find_entry(d, name);
    if (idx < 0) {
        for (unsigned i = 0; i < SHMPOOL_MAX_POOLS && idx < 0; i++)
            if (atomic_load(&d->ctl->pools[i].state) == DIR_EMPTY)
                idx = (int)i;
        if (idx < 0) {
            rc = SHMBUS_ELIMIT;
            goto out_unlock;
        }
        rc = pool_create(d, (unsigned)idx, name, sorted, nclasses);
        if (rc)
            goto out_unlock;
    } else {
        if (!same_classes(&d->ctl->pools[idx], sorted, nclasses)) {
            rc = SHMBUS_EINCOMPAT;
            goto out_unlock;
        }
    }
out_unlock:
    pool_domain_lock_op(d, LOCK_UN);
out_unlock_local:
    pthread_mutex_unlock(&d->serial_lock);
    /* Mapped after the locks: a directory entry stays until the domain is wiped, which
     * cannot happen while we are in it. */
    return rc ? rc : pool_map(d, (unsigned)idx, out);
}

int shmpool_pool_size(const shmpool_class *classes, unsigned n, uint64_t *total)
{
    shmpool_class sorted[SHMPOOL_MAX_CLASSES];
    struct pool_class_shm tmp[SHMPOOL_MAX_CLASSES];
    int rc = sort_classes(classes, n, sorted);
    return rc ? rc : pool_layout(sorted, n, tmp, total);
}

const char *shmpool_pool_name(const shmbus_pool *p) { return p->name; }
uint32_t shmpool_pool_id(const shmbus_pool *p) { return p->pool_id; }

/* ---- introspection -------------------------------------------------------------------- */

int shmpool_pool_stats(const shmbus_pool *p, shmpool_class_stats *out, unsigned max)
{
    if (!p || (!out && max))
        return SHMBUS_EINVAL;
    uint64_t now = pool_now_ns();
    for (unsigned c = 0; c < p->nclasses && c < max; c++) {
        struct pool_class_shm *cs = &p->hdr->classes[c];
        shmpool_class_stats *s = &out[c];
        memset(s, 0, sizeof *s);
        s->block_size = p->geom[c].block_size;
        s->total = p->geom[c].count;
        uint64_t oldest = 0;
        for (uint32_t k = 0; k < p->geom[c].count; k++) {
            struct pool_block_hdr *bh = pool_bh(p, c, k);
            if (!STATE_HOLDERS(atomic_load_explicit(&bh->state, memory_order_relaxed)))
                continue;
            s->used++;
            uint64_t t = atomic_load_explicit(&bh->loan_ns, memory_order_relaxed);
            if (t && t < now && now - t > oldest)
                oldest = now - t;
        }
        s->oldest_hold_ns = oldest;
        s->high_water = (uint32_t)atomic_load(&cs->high_water);
        if (s->high_water < s->used)
            s->high_water = s->used;
        if (s->high_water > s->total)
            s->high_water = s->total;
        s->loans = atomic_load(&cs->loans);
        s->frees = atomic_load(&cs->frees);
        s->failed_loans = atomic_load(&cs->failed_loans);
        s->reclaims = atomic_load(&cs->reclaims);
    }
    return (int)p->nclasses;
}

int shmpool_pool_walk(const shmbus_pool *p, int (*fn)(const shmpool_block_state *, void *),
                      void *ctx)
{
    if (!p || !fn)
        return SHMBUS_EINVAL;
    uint64_t now = pool_now_ns();
    for (unsigned c = 0; c < p->nclasses; c++) {
        for (uint32_t k = 0; k < p->geom[c].count; k++) {
            struct pool_block_hdr *bh = pool_bh(p, c, k);
            uint64_t w = atomic_load_explicit(&bh->state, memory_order_acquire);
            if (!STATE_HOLDERS(w))
                continue;
            uint64_t t = atomic_load_explicit(&bh->loan_ns, memory_order_relaxed);
            shmpool_block_state st = {
                .cls = (uint16_t)c,
                .gen = STATE_GEN(w),
                .index = k,
                .holders = STATE_HOLDERS(w),
                .seq = atomic_load_explicit(&bh->seq, memory_order_relaxed),
                .owner_uid = atomic_load_explicit(&bh->owner_uid, memory_order_relaxed),
                .age_ns = t && t < now ? now - t : 0,
            };
            if (fn(&st, ctx))
                return 0;
        }
    }
    return 0;
}
