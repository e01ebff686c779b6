/* libFuzzer harness: descriptor decoding and acquisition against a live pool.
 *
 * Each input is decoded as a 64-byte descriptor and tried three ways: as it is, with the
 * live pool's id put in (so the fuzzer reaches the class/index/generation checks, which a
 * random pool id never passes), and grafted onto a live block's identity with the input's
 * other fields. Whatever it holds, an acquire may only succeed for a block some participant
 * holds with exactly the descriptor's generation and sequence: anything else is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmpool.h"

#define LIVE 4

static shmpool_domain *g_dom;
static shmbus_pool *g_pool;
static shmpool_desc g_live[LIVE];
static shmbus_block *g_held[LIVE];

static void teardown(void)
{
    for (int i = 0; i < LIVE; i++)
        if (g_held[i])
            shmpool_block_release(g_held[i]);
    if (g_dom)
        shmpool_domain_close(g_dom);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char name[32];
    snprintf(name, sizeof name, "fuzzdesc%d", (int)getpid());
    shmpool_domain_opts o;
    shmpool_domain_opts_init(&o);
    o.no_reaper = true;
    shmpool_class cls[] = {{64, 8}, {4096, 4}};
    if (shmpool_domain_open(name, &o, &g_dom) || shmpool_pool_open(g_dom, "p", cls, 2, &g_pool))
        abort();
    atexit(teardown);
    for (int i = 0; i < LIVE; i++) {
        if (shmpool_loan(g_pool, i % 2 ? 4096 : 64, 0, &g_held[i]) ||
            shmpool_block_describe(g_held[i], 10 + (uint64_t)i, (uint64_t)i, &g_live[i]))
            abort();
    }
    /* a block that was described and then freed: its descriptors are stale */
    shmbus_block *b;
    shmpool_desc stale;
    if (shmpool_loan(g_pool, 64, 0, &b) || shmpool_block_describe(b, 1, 0, &stale))
        abort();
    shmpool_block_release(b);
    return 0;
}

static bool names_live_block(const shmpool_desc *d)
{
    for (int i = 0; i < LIVE; i++)
        if (d->pool_id == g_live[i].pool_id && d->cls == g_live[i].cls &&
            d->index == g_live[i].index && d->gen == g_live[i].gen && d->seq == g_live[i].seq)
            return true;
    return false;
}

static void try_acquire(const shmpool_desc *d)
{
    shmbus_block *b = NULL;
    int rc = shmpool_acquire(g_dom, d, &b);
    if (rc == 0) {
        if (!names_live_block(d))
            abort(); /* acquired something that is not a live block: docs/design.md invariant 2 broken */
        shmpool_block_release(b);
    } else if (rc != SHMBUS_EEXPIRED && rc != SHMBUS_EBADDESC && rc != SHMBUS_ENOENT) {
        abort(); /* an unexpected error code for bad input */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shmpool_desc d;
    if (shmpool_desc_decode(data, size, &d) != 0) {
        /* also feed the bytes through unchecked, as a forged but well-framed record */
        if (size < 8)
            return 0;
        uint8_t buf[SHMPOOL_DESC_SIZE];
        shmpool_desc tmpl = {0};
        shmpool_desc_encode(&tmpl, buf); /* a valid header; the fields come from the input */
        memcpy(buf + 8, data, size - 8 < 56 ? size - 8 : 56);
        memset(buf + 20, 0, 4); /* reserved must be zero */
        if (shmpool_desc_decode(buf, sizeof buf, &d) != 0)
            abort(); /* a well-framed record must decode */
    }
    try_acquire(&d);
    d.pool_id = g_live[0].pool_id;
    try_acquire(&d);
    const shmpool_desc *l = &g_live[data[0 % (size ? size : 1)] % LIVE];
    shmpool_desc g = *l;
    g.gen = d.gen;          /* right block, fuzzed generation and sequence */
    g.seq = d.seq;
    try_acquire(&g);
    g = *l;
    g.length = d.length;    /* right block, fuzzed metadata */
    g.user = d.user;
    g.owner_uid = d.owner_uid;
    try_acquire(&g);
    return 0;
}
