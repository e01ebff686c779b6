/* Message handles, the bus wire format, and the pool-level calls of the public API. */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define WIRE_MAGIC 0x54424853u /* "SHBT" as a little-endian u32 */
#define SYNC_MAGIC 0x53424853u /* "SHBS": a publisher's sync marker, not a message */
#define WIRE_VERSION 1u

/* ---- wire: 64-byte pool descriptor, then  u32 magic, u16 version, u16 topic, u64 pub_id -- */

static void put_trailer(uint8_t out[BUS_WIRE_SIZE], uint32_t magic, unsigned topic,
                        uint64_t pub_id)
{
    uint32_t m = htole32(magic);
    uint16_t version = htole16(WIRE_VERSION), t = htole16((uint16_t)topic);
    uint64_t id = htole64(pub_id);
    memcpy(out + 64, &m, 4);
    memcpy(out + 68, &version, 2);
    memcpy(out + 70, &t, 2);
    memcpy(out + 72, &id, 8);
}

void bus_wire_encode(const shmpool_desc *pd, unsigned topic, uint64_t pub_id,
                     uint8_t out[BUS_WIRE_SIZE])
{
    shmpool_desc_encode(pd, out);
    put_trailer(out, WIRE_MAGIC, topic, pub_id);
}

int bus_wire_decode(const void *buf, size_t len, shmpool_desc *pd, unsigned *topic,
                    uint64_t *pub_id)
{
    if (!buf || len != BUS_WIRE_SIZE)
        return SHMBUS_EBADDESC;
    const uint8_t *in = buf;
    uint32_t magic;
    uint16_t version, t;
    uint64_t id;
    memcpy(&magic, in + 64, 4);
    memcpy(&version, in + 68, 2);
    memcpy(&t, in + 70, 2);
    memcpy(&id, in + 72, 8);
    if (le32toh(magic) != WIRE_MAGIC || le16toh(version) != WIRE_VERSION)
        return SHMBUS_EBADDESC;
    *topic = le16toh(t);
    *pub_id = le64toh(id);
    return shmpool_desc_decode(in, 64, pd);
}

/* Sync marker: u64 last sequence, 56 zero bytes, then the trailer with SYNC_MAGIC. */
void bus_wire_sync_encode(unsigned topic, uint64_t pub_id, uint64_t last,
                          uint8_t out[BUS_WIRE_SIZE])
{
    memset(out, 0, BUS_WIRE_SIZE);
    uint64_t l = htole64(last);
    memcpy(out, &l, 8);
    put_trailer(out, SYNC_MAGIC, topic, pub_id);
}

bool bus_wire_sync_decode(const void *buf, size_t len, unsigned *topic, uint64_t *pub_id,
                          uint64_t *last)
{
    static const uint8_t zero[56];
    const uint8_t *in = buf;
    uint32_t magic;
    uint16_t version, t;
    if (!buf || len != BUS_WIRE_SIZE || memcmp(in + 8, zero, sizeof zero) != 0)
        return false;
    memcpy(&magic, in + 64, 4);
    memcpy(&version, in + 68, 2);
    if (le32toh(magic) != SYNC_MAGIC || le16toh(version) != WIRE_VERSION)
        return false;
    memcpy(&t, in + 70, 2);
    memcpy(pub_id, in + 72, 8);
    memcpy(last, in, 8);
    *topic = le16toh(t);
    *pub_id = le64toh(*pub_id);
    *last = le64toh(*last);
    return true;
}

/* ---- handles -------------------------------------------------------------------------------- */

bus_msg *bus_msg_wrap(shmbus_block *blk)
{
    bus_msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->blk = blk;
    atomic_store_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

/* Wrap a block this call's caller holds one handle on, or release it if that fails. */
static int wrap_or_release(shmbus_block *blk, bus_msg **out)
{
    *out = bus_msg_wrap(blk);
    if (*out)
        return 0;
    shmpool_block_release(blk);
    return SHMBUS_ENOMEM;
}

bus_msg *bus_msg_clone(bus_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

int bus_msg_release(bus_msg *m)
{
    if (!m)
        return SHMBUS_EINVAL;
    if (shmpool_domain_forked(shmpool_block_domain(m->blk)))
        return SHMBUS_EFORKED; /* the parent's counters are not the child's to change */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return 0;
    if (m->pub)
        atomic_fetch_sub(&m->pub->loans, 1);
    if (m->sub) {
        atomic_fetch_sub(&m->sub->held, 1);
        atomic_fetch_sub_explicit(&m->sub->reg->held, 1, memory_order_relaxed);
    }
    int rc = shmpool_block_release(m->blk);
    free(m);
    return rc;
}

void *bus_msg_data(const bus_msg *m) { return shmpool_block_data(m->blk); }
uint64_t bus_msg_capacity(const bus_msg *m) { return shmpool_block_capacity(m->blk); }

static shmpool_block_info info_of(const bus_msg *m)
{
    shmpool_block_info i;
    shmpool_block_get_info(m->blk, &i);
    return i;
}

uint64_t bus_msg_length(const bus_msg *m) { return info_of(m).length; }
uint64_t bus_msg_timestamp_ns(const bus_msg *m) { return info_of(m).timestamp_ns; }
uint64_t bus_msg_seq(const bus_msg *m) { return m->seq ? m->seq : BUS_USER_SEQ(info_of(m).user); }
uint64_t bus_msg_publisher(const bus_msg *m) { return m->pub_id; }

int bus_msg_describe(bus_msg *m, uint64_t length, uint8_t out[64])
{
    if (!m || !out || m->pub) /* a publisher's loan is described by publishing it */
        return SHMBUS_EINVAL;
    shmpool_desc d;
    int rc = shmpool_block_describe(m->blk, length, 0, &d);
    if (rc == 0)
        shmpool_desc_encode(&d, out);
    return rc;
}

/* ---- pool level ------------------------------------------------------------------------------ */

int bus_pool_open(bus_domain *d, const char *name, const shmbus_pool_class *classes, unsigned n,
                  bus_pool **out)
{
    return d ? shmpool_pool_open(d->pd, name, classes, n, out) : SHMBUS_EINVAL;
}

int bus_pool_loan(bus_pool *p, uint64_t size, int timeout_ms, bus_msg **out)
{
    shmbus_block *b;
    int rc = shmpool_loan(p, size, timeout_ms, &b);
    return rc ? rc : wrap_or_release(b, out);
}

int bus_pool_stats(const bus_pool *p, shmbus_class_stats *out, unsigned max)
{
    return shmpool_pool_stats(p, out, max);
}

int bus_acquire(bus_domain *d, const uint8_t *desc, bus_msg **out)
{
    shmpool_desc pd;
    shmbus_block *b;
    int rc = d && desc && out ? shmpool_desc_decode(desc, 64, &pd) : SHMBUS_EINVAL;
    if (rc == 0)
        rc = shmpool_acquire(d->pd, &pd, &b);
    return rc ? rc : wrap_or_release(b, out);
}

int bus_node_get(bus_pool *p, const char *name, uint64_t size, bus_msg **out, bool *created)
{
    shmbus_block *b;
    int rc = shmpool_node_get(p, name, size, &b, created);
    return rc ? rc : wrap_or_release(b, out);
}

int bus_node_lock(bus_msg *m) { return m ? shmpool_node_lock(m->blk) : SHMBUS_EINVAL; }
int bus_node_unlock(bus_msg *m) { return m ? shmpool_node_unlock(m->blk) : SHMBUS_EINVAL; }
