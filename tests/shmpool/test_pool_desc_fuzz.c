/* Random and mutated descriptors: whatever a descriptor says, acquiring it gives a hold on
 * exactly the live block it names (docs/design.md, invariant 2) or an error code, never a crash, a hang or
 * wrong data (invariant 6). */
#include <stdlib.h>
#include <string.h>

#include "childutil.h"
#include "testutil.h"

/* ---- random descriptors ------------------------------------------------------------------ */

struct live {
    shmbus_block *b;
    shmpool_desc desc;
};

struct fuzz {
    shmpool_domain *acq; /* acquirer: another participant than the loaner */
    shmbus_pool *p;
    uint64_t acq_bit;
    unsigned nclasses;
    uint32_t count[4];
    uint64_t capacity[4];
    struct live live[16];
    unsigned nlive;
    shmpool_desc stale[16];
    unsigned nstale;
    unsigned ok, expired, baddesc, noent;
};

static const struct live *key_match(const struct fuzz *fz, const shmpool_desc *d)
{
    for (unsigned i = 0; i < fz->nlive; i++) {
        const shmpool_desc *l = &fz->live[i].desc;
        if (l->pool_id == d->pool_id && l->cls == d->cls && l->index == d->index &&
            l->gen == d->gen && l->seq == d->seq && l->owner_uid == d->owner_uid)
            return &fz->live[i];
    }
    return NULL;
}

/* Acquire d and check the result against what the pool really holds. */
static void acquire_and_judge(struct fuzz *fz, const shmpool_desc *d, int iter)
{
    shmbus_block *r = NULL;
    int rc = shmpool_acquire(fz->acq, d, &r);
    const struct live *m = key_match(fz, d);
    bool unknown_pool = d->pool_id != shmpool_pool_id(fz->p);
    bool out_of_range = !unknown_pool && (d->cls >= fz->nclasses || d->index >= fz->count[d->cls]);
    bool too_long = !unknown_pool && !out_of_range && d->length > fz->capacity[d->cls];

    if (rc == 0) {
        if (!m || too_long)
            fail_msg("iteration %d: a descriptor that names no live block was acquired "
                     "(pool %#x cls %u index %u gen %u seq %llu owner %llu len %llu)",
                     iter, d->pool_id, d->cls, d->index, d->gen, (unsigned long long)d->seq,
                     (unsigned long long)d->owner_uid, (unsigned long long)d->length);
        assert_non_null(r);
        assert_true(tu_has_pattern(r, m->desc.seq));
        shmpool_block_info in = tu_info(r);
        assert_int_equal(in.seq, m->desc.seq);
        assert_int_equal(in.index, m->desc.index);
        assert_ok(shmpool_block_release(r));
        fz->ok++;
        return;
    }
    if (unknown_pool) {
        if (rc != SHMBUS_ENOENT && rc != SHMBUS_EBADDESC)
            fail_msg("iteration %d: unknown pool gave %d (%s)", iter, rc, tu_errname(rc));
    } else if (out_of_range || too_long) {
        if (rc != SHMBUS_EBADDESC)
            fail_msg("iteration %d: out of range gave %d (%s)", iter, rc, tu_errname(rc));
    } else if (!m) {
        /* stale; sequence 0 (never loaned) may also be called malformed */
        if (rc != SHMBUS_EEXPIRED && !(d->seq == 0 && rc == SHMBUS_EBADDESC))
            fail_msg("iteration %d: stale descriptor gave %d (%s)", iter, rc, tu_errname(rc));
    } else if (d->length == m->desc.length && d->timestamp_ns == m->desc.timestamp_ns &&
               d->user == m->desc.user) {
        fail_msg("iteration %d: the exact descriptor of a live block gave %d (%s)", iter, rc,
                 tu_errname(rc));
    } else if (rc != SHMBUS_EBADDESC) {
        /* names a live block but misstates its length, timestamp or user: accepting it (as
         * that block) or refusing it as malformed are both fine */
        fail_msg("iteration %d: misstated descriptor gave %d (%s)", iter, rc, tu_errname(rc));
    }
    fz->expired += rc == SHMBUS_EEXPIRED;
    fz->baddesc += rc == SHMBUS_EBADDESC;
    fz->noent += rc == SHMBUS_ENOENT;
}

static void fuzz_setup(struct fuzz *fz, shmpool_domain *loaner, shmpool_domain *acq)
{
    static const shmpool_class c[] = {{64, 8}, {4096, 4}, {65536, 2}};
    memset(fz, 0, sizeof *fz);
    fz->acq = acq;
    fz->acq_bit = 1ull << shmpool_domain_slot(acq);
    fz->p = tu_open_pool(loaner, "p", c, 3);
    fz->nclasses = 3;
    for (unsigned k = 0; k < 3; k++) {
        fz->count[k] = c[k].count;
        /* stale descriptors: loaned, described and released (two rounds, so that the live
         * blocks below sit on indexes whose older generations are in the stale list) */
        for (int round = 0; round < 2; round++) {
            shmbus_block *b = NULL;
            assert_ok(shmpool_loan(fz->p, c[k].block_size, 0, &b));
            tu_write_pattern(b);
            assert_ok(shmpool_block_describe(b, 8, 0, &fz->stale[fz->nstale++]));
            assert_ok(shmpool_block_release(b));
        }
        for (int i = 0; i < 2; i++) {
            struct live *l = &fz->live[fz->nlive++];
            assert_ok(shmpool_loan(fz->p, c[k].block_size, 0, &l->b));
            tu_write_pattern(l->b);
            fz->capacity[k] = shmpool_block_capacity(l->b);
            assert_ok(shmpool_block_describe(l->b, 8 + (uint64_t)i, (uint64_t)i, &l->desc));
        }
    }
}

static void fuzz_teardown(struct fuzz *fz, shmpool_domain *loaner)
{
    /* nothing of the fuzzing stuck: only the live blocks are used, only by the loaner */
    uint64_t loaner_bit = 1ull << shmpool_domain_slot(loaner);
    unsigned nused;
    assert_int_equal(tu_pool_holders(fz->p, &nused), loaner_bit);
    assert_int_equal(nused, fz->nlive);
    for (unsigned i = 0; i < fz->nlive; i++)
        assert_ok(shmpool_block_release(fz->live[i].b));
    assert_int_equal(tu_pool_used(fz->p), 0);
    tu_assert_consistent(loaner);
    print_message("    acquired %u, expired %u, bad descriptor %u, unknown pool %u\n", fz->ok,
                  fz->expired, fz->baddesc, fz->noent);
    /* the generator reached every outcome, so each judgement above was exercised */
    assert_true(fz->ok > 0 && fz->expired > 0 && fz->baddesc > 0);
}

static void mutate(struct fuzz *fz, shmpool_desc *d, uint64_t *s)
{
    switch (tu_rand(s) % 10) {
    case 0: d->pool_id = tu_rand(s) % 2 ? (uint32_t)tu_rand(s) : d->pool_id + 1; break;
    case 1: d->cls = tu_rand(s) % 2 ? (uint16_t)tu_rand(s) : (uint16_t)(tu_rand(s) % 5); break;
    case 2: d->index = tu_rand(s) % 2 ? (uint32_t)tu_rand(s) : (uint32_t)(tu_rand(s) % 10); break;
    case 3: d->gen = (uint16_t)(d->gen + (tu_rand(s) % 2 ? 1 : -1)); break;
    case 4: d->gen = (uint16_t)tu_rand(s); break;
    case 5: d->seq += tu_rand(s) % 5 - 2; break;
    case 6: d->owner_uid = tu_rand(s) % 2 ? tu_rand(s) : d->owner_uid + 1; break;
    case 7: {
        uint64_t cap = d->cls < fz->nclasses ? fz->capacity[d->cls] : 64;
        uint64_t choices[] = {0, 8, cap, cap + 1, UINT64_MAX, tu_rand(s)};
        d->length = choices[tu_rand(s) % 6];
        break;
    }
    case 8: d->timestamp_ns = tu_rand(s); d->user = tu_rand(s); break;
    default: d->seq = tu_rand(s); break;
    }
}

/* Open a loaner d1 and an acquirer d2 of dom, set the fuzz up between them, and return the
 * seed (printed, so that a failure can be replayed). */
static uint64_t fuzz_start(struct fuzz *fz, const char *dom, shmpool_domain **d1,
                           shmpool_domain **d2, uint64_t seed)
{
    *d1 = tu_open_domain(dom);
    *d2 = tu_open_domain(dom);
    fuzz_setup(fz, *d1, *d2);
    print_message("    seed %#llx\n", (unsigned long long)seed);
    return seed;
}

static void test_random_descriptors_never_acquire_anything_but_a_live_block(void **state)
{
    struct fuzz fz;
    shmpool_domain *d1, *d2;
    uint64_t seed = fuzz_start(&fz, TU_DOM(state), &d1, &d2, 0xdecafbad);
    for (int it = 0; it < 100000; it++) {
        shmpool_desc d;
        unsigned kind = (unsigned)(tu_rand(&seed) % 10);
        if (kind < 4) {
            d = fz.live[tu_rand(&seed) % fz.nlive].desc;
        } else if (kind < 7) {
            d = fz.stale[tu_rand(&seed) % fz.nstale];
        } else {
            d = (shmpool_desc){.pool_id = tu_rand(&seed) % 2 ? shmpool_pool_id(fz.p)
                                                               : (uint32_t)tu_rand(&seed),
                               .cls = (uint16_t)(tu_rand(&seed) % 4),
                               .gen = (uint16_t)(tu_rand(&seed) % 4),
                               .index = (uint32_t)(tu_rand(&seed) % 9),
                               .length = tu_rand(&seed) % 70000,
                               .seq = tu_rand(&seed) % 32,
                               .owner_uid = tu_rand(&seed) % 4};
        }
        unsigned nmut = (unsigned)(tu_rand(&seed) % 3);
        for (unsigned m = 0; m < nmut; m++)
            mutate(&fz, &d, &seed);
        acquire_and_judge(&fz, &d, it);
    }
    assert_true(fz.noent > 0);
    fuzz_teardown(&fz, d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_mutated_wire_descriptors_are_rejected_or_name_exactly_a_live_block(void **state)
{
    struct fuzz fz;
    shmpool_domain *d1, *d2;
    uint64_t seed = fuzz_start(&fz, TU_DOM(state), &d1, &d2, 0xfeedf00d);
    unsigned decoded = 0;
    for (int it = 0; it < 100000; it++) {
        uint8_t wire[SHMPOOL_DESC_SIZE], again[SHMPOOL_DESC_SIZE];
        const shmpool_desc *src = tu_rand(&seed) % 2 ? &fz.live[tu_rand(&seed) % fz.nlive].desc
                                                     : &fz.stale[tu_rand(&seed) % fz.nstale];
        shmpool_desc_encode(src, wire);
        unsigned nflip = 1 + (unsigned)(tu_rand(&seed) % 4);
        for (unsigned f = 0; f < nflip; f++)
            wire[tu_rand(&seed) % SHMPOOL_DESC_SIZE] ^= (uint8_t)(1u << (tu_rand(&seed) % 8));
        shmpool_desc d;
        int rc = shmpool_desc_decode(wire, sizeof wire, &d);
        if (rc != 0) {
            assert_rc(rc, SHMBUS_EBADDESC);
            continue;
        }
        shmpool_desc_encode(&d, again);
        assert_memory_equal(again, wire, SHMPOOL_DESC_SIZE);
        decoded++;
        acquire_and_judge(&fz, &d, it);
    }
    print_message("    %u of 100000 mutated descriptors decoded\n", decoded);
    /* the unmutated ones still work */
    for (unsigned i = 0; i < fz.nlive; i++) {
        uint8_t wire[SHMPOOL_DESC_SIZE];
        shmpool_desc d;
        shmbus_block *r = NULL;
        shmpool_desc_encode(&fz.live[i].desc, wire);
        assert_ok(shmpool_desc_decode(wire, sizeof wire, &d));
        assert_ok(shmpool_acquire(d2, &d, &r));
        assert_ok(shmpool_block_release(r));
        fz.ok++;
    }
    fuzz_teardown(&fz, d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_random_descriptors_never_acquire_anything_but_a_live_block),
        TU_TEST(test_mutated_wire_descriptors_are_rejected_or_name_exactly_a_live_block),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
