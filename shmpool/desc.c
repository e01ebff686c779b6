/* Descriptor wire format: 64 bytes, little-endian, versioned.
 *
 *   0  u32 magic "SHMD"   4  u16 version   6  u16 size (64)
 *   8  u32 pool_id       12  u16 class    14  u16 generation
 *  16  u32 index         20  u32 reserved (0)
 *  24  u64 length        32  u64 seq      40  u64 timestamp_ns
 *  48  u64 owner_uid     56  u64 user
 */
#include <endian.h>
#include <string.h>

#include "shmpool.h"

#define DESC_MAGIC 0x444d4853u /* "SHMD" read as a little-endian u32 */
#define DESC_VERSION 1u

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

void shmpool_desc_encode(const shmpool_desc *d, uint8_t out[SHMPOOL_DESC_SIZE])
{
    put32(out + 0, DESC_MAGIC);
    put16(out + 4, DESC_VERSION);
    put16(out + 6, SHMPOOL_DESC_SIZE);
    put32(out + 8, d->pool_id);
    put16(out + 12, d->cls);
    put16(out + 14, d->gen);
    put32(out + 16, d->index);
    put32(out + 20, 0);
    put64(out + 24, d->length);
    put64(out + 32, d->seq);
    put64(out + 40, d->timestamp_ns);
    put64(out + 48, d->owner_uid);
    put64(out + 56, d->user);
}

int shmpool_desc_decode(const void *buf, size_t len, shmpool_desc *d)
{
    const uint8_t *in = buf;
    if (!buf || !d || len != SHMPOOL_DESC_SIZE || get32(in) != DESC_MAGIC ||
        get16(in + 4) != DESC_VERSION || get16(in + 6) != SHMPOOL_DESC_SIZE ||
        get32(in + 20) != 0)
        return SHMBUS_EBADDESC;
    d->pool_id = get32(in + 8);
    d->cls = get16(in + 12);
    d->gen = get16(in + 14);
    d->index = get32(in + 16);
    d->length = get64(in + 24);
    d->seq = get64(in + 32);
    d->timestamp_ns = get64(in + 40);
    d->owner_uid = get64(in + 48);
    d->user = get64(in + 56);
    return 0;
}
