/* Descriptors: the wire format, acquiring in another participant, and every way a descriptor
 * can be wrong (stale, wrapped, forged, truncated, random). A descriptor may only ever give a
 * hold on exactly the live block it names (docs/design.md, invariant 2); everything else is an error code,
 * never a crash, hang or wrong data (invariant 6). */
#include <stdlib.h>
#include <string.h>

#include "childutil.h"
#include "testutil.h"

static bool desc_equal(const shmpool_desc *a, const shmpool_desc *b)
{
    return a->pool_id == b->pool_id && a->cls == b->cls && a->gen == b->gen &&
           a->index == b->index && a->length == b->length && a->seq == b->seq &&
           a->timestamp_ns == b->timestamp_ns && a->owner_uid == b->owner_uid &&
           a->user == b->user;
}

static shmpool_desc sample_desc(void)
{
    shmpool_desc d = {.pool_id = 0x01020304u,
                      .cls = 0x0506,
                      .gen = 0x0708,
                      .index = 0x090a0b0cu,
                      .length = 0x1112131415161718ull,
                      .seq = 0x2122232425262728ull,
                      .timestamp_ns = 0x3132333435363738ull,
                      .owner_uid = 0x4142434445464748ull,
                      .user = 0x5152535455565758ull};
    return d;
}

/* ---- wire format ------------------------------------------------------------------------- */

static void test_descriptor_round_trips_through_encode_and_decode(void **state)
{
    (void)state;
    shmpool_desc in = sample_desc(), out;
    uint8_t a[SHMPOOL_DESC_SIZE], b[SHMPOOL_DESC_SIZE];
    memset(a, 0x00, sizeof a);
    memset(b, 0xff, sizeof b);
    shmpool_desc_encode(&in, a);
    shmpool_desc_encode(&in, b);
    assert_memory_equal(a, b, SHMPOOL_DESC_SIZE); /* every byte is written, none left over */
    assert_memory_equal(a, "SHMD", 4);
    memset(&out, 0, sizeof out);
    assert_ok(shmpool_desc_decode(a, sizeof a, &out));
    assert_true(desc_equal(&in, &out));

    /* little-endian: the field bytes appear least significant first */
    static const uint8_t pool_id_le[] = {0x04, 0x03, 0x02, 0x01};
    static const uint8_t seq_le[] = {0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21};
    assert_non_null(memmem(a, sizeof a, pool_id_le, sizeof pool_id_le));
    assert_non_null(memmem(a, sizeof a, seq_le, sizeof seq_le));

    shmpool_desc zero = {0};
    shmpool_desc_encode(&zero, a);
    assert_ok(shmpool_desc_decode(a, sizeof a, &out));
    assert_true(desc_equal(&zero, &out));
}

static void test_decode_rejects_bad_magic_version_size_length_and_reserved_bytes(void **state)
{
    (void)state;
    shmpool_desc in = sample_desc(), out;
    uint8_t good[SHMPOOL_DESC_SIZE], buf[SHMPOOL_DESC_SIZE * 2], again[SHMPOOL_DESC_SIZE];
    shmpool_desc_encode(&in, good);

    /* wrong length: truncated, extended, empty */
    memcpy(buf, good, sizeof good);
    memset(buf + SHMPOOL_DESC_SIZE, 0, SHMPOOL_DESC_SIZE);
    size_t lens[] = {0, 1, 4, 8, 32, SHMPOOL_DESC_SIZE - 1, SHMPOOL_DESC_SIZE + 1,
                     SHMPOOL_DESC_SIZE * 2};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        assert_rc(shmpool_desc_decode(buf, lens[i], &out), SHMBUS_EBADDESC);
    assert_rc(shmpool_desc_decode(NULL, SHMPOOL_DESC_SIZE, &out), SHMBUS_EBADDESC);

    /* Every single-byte change: either rejected, or decoded into a descriptor that encodes
     * back to exactly those bytes (so no byte is ignored: magic, version, size and reserved
     * bytes are all checked). The header bytes are the ones where every change is rejected:
     * the fields take 4+2+2+4+5*8 = 52 bytes, so at least 12 of the 64 must be. */
    static const uint8_t flips[] = {0x01, 0x02, 0x10, 0x80, 0xff};
    int always_rejected = 0;
    for (int pos = 0; pos < SHMPOOL_DESC_SIZE; pos++) {
        int rejected = 0;
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(buf, good, sizeof good);
            buf[pos] ^= flips[f];
            int rc = shmpool_desc_decode(buf, SHMPOOL_DESC_SIZE, &out);
            if (rc == 0) {
                shmpool_desc_encode(&out, again);
                if (memcmp(again, buf, SHMPOOL_DESC_SIZE) != 0)
                    fail_msg("byte %d ^ 0x%02x was accepted but is not part of any field", pos,
                             flips[f]);
            } else {
                assert_rc(rc, SHMBUS_EBADDESC);
                rejected++;
            }
        }
        if (pos < 4 && rejected != (int)sizeof flips)
            fail_msg("a change of magic byte %d was accepted", pos);
        if (rejected == (int)sizeof flips)
            always_rejected++;
    }
    print_message("    %d of %d descriptor bytes are checked header/reserved bytes\n",
                  always_rejected, SHMPOOL_DESC_SIZE);
    assert_true(always_rejected >= SHMPOOL_DESC_SIZE - 52);
    assert_true(always_rejected < SHMPOOL_DESC_SIZE); /* and the fields are not rejected */
}

static void test_random_bytes_never_decode_into_a_descriptor(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed0001;
    print_message("    seed %#llx\n", (unsigned long long)seed);
    uint8_t buf[128];
    shmpool_desc out;
    for (int i = 0; i < 100000; i++) {
        size_t len = tu_rand(&seed) % 4 == 0 ? tu_rand(&seed) % sizeof buf : SHMPOOL_DESC_SIZE;
        for (size_t j = 0; j < sizeof buf; j += 8) {
            uint64_t r = tu_rand(&seed);
            memcpy(buf + j, &r, 8);
        }
        if (i % 2) /* half of them with a valid magic, to get past the first check */
            memcpy(buf, "SHMD", 4);
        int rc = shmpool_desc_decode(buf, len, &out);
        if (rc != SHMBUS_EBADDESC)
            fail_msg("random buffer %d (len %zu) decoded with %d (%s)", i, len, rc,
                     tu_errname(rc));
    }
}

/* ---- acquire ----------------------------------------------------------------------------- */

static void test_describe_records_length_user_owner_and_timestamp(void **state)
{
    shmpool_domain *d = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}, {4096, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 2);
    shmbus_block *b = NULL, *r = NULL;
    assert_ok(shmpool_loan(p, 1000, 0, &b));
    shmpool_block_info before = tu_info(b);
    shmpool_desc desc;
    memset(&desc, 0, sizeof desc);
    assert_rc(shmpool_block_describe(b, shmpool_block_capacity(b) + 1, 0, &desc),
              SHMBUS_EINVAL);
    uint64_t t0 = proc_now_ns();
    assert_ok(shmpool_block_describe(b, 777, 0xabcdef, &desc));
    uint64_t t1 = proc_now_ns();
    assert_int_equal(desc.pool_id, shmpool_pool_id(p));
    assert_int_equal(desc.cls, 1);
    assert_int_equal(desc.cls, before.cls);
    assert_int_equal(desc.index, before.index);
    assert_int_equal(desc.gen, before.gen);
    assert_int_equal(desc.seq, before.seq);
    assert_int_equal(desc.length, 777);
    assert_int_equal(desc.user, 0xabcdef);
    assert_int_equal(desc.owner_uid, shmpool_domain_uid(d));
    assert_true(desc.timestamp_ns >= t0 && desc.timestamp_ns <= t1);

    shmpool_block_info after = tu_info(b);
    assert_int_equal(after.length, 777);
    assert_int_equal(after.user, 0xabcdef);
    assert_int_equal(after.timestamp_ns, desc.timestamp_ns);
    assert_int_equal(after.owner_uid, shmpool_domain_uid(d));

    /* only the loaner describes */
    assert_ok(shmpool_acquire(d2, &desc, &r));
    shmpool_desc other;
    assert_rc(shmpool_block_describe(r, 1, 0, &other), SHMBUS_EINVAL);
    assert_int_equal(tu_info(r).length, 777);
    assert_ok(shmpool_block_release(r));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d));
}

static void test_acquire_in_another_participant_yields_the_same_data_and_info(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}, {65536, 2}};
    shmbus_pool *p = tu_open_pool(d1, "p", c, 2);
    shmbus_block *b = NULL, *r = NULL;
    assert_ok(shmpool_loan(p, 60000, 0, &b));
    for (uint64_t i = 0; i < 60000; i++)
        ((unsigned char *)shmpool_block_data(b))[i] = (unsigned char)(i * 7);
    shmpool_desc desc, got;
    assert_ok(shmpool_block_describe(b, 60000, 42, &desc));
    uint8_t wire[SHMPOOL_DESC_SIZE];
    shmpool_desc_encode(&desc, wire);

    /* d2 never opened the pool: the descriptor alone finds it */
    assert_ok(shmpool_desc_decode(wire, sizeof wire, &got));
    assert_ok(shmpool_acquire(d2, &got, &r));
    assert_non_null(r);
    assert_int_equal(shmpool_block_capacity(r), shmpool_block_capacity(b));
    assert_memory_equal(shmpool_block_data(r), shmpool_block_data(b), 60000);
    shmpool_block_info ib = tu_info(b), ir = tu_info(r);
    assert_int_equal(ir.pool_id, ib.pool_id);
    assert_int_equal(ir.cls, ib.cls);
    assert_int_equal(ir.gen, ib.gen);
    assert_int_equal(ir.index, ib.index);
    assert_int_equal(ir.length, 60000);
    assert_int_equal(ir.seq, ib.seq);
    assert_int_equal(ir.timestamp_ns, ib.timestamp_ns);
    assert_int_equal(ir.owner_uid, shmpool_domain_uid(d1));
    assert_int_equal(ir.user, 42);

    /* acquiring again in the same participant is one more handle on the same hold */
    shmbus_block *r2 = NULL;
    assert_ok(shmpool_acquire(d2, &got, &r2));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_block_release(r));
    assert_int_equal(tu_pool_used(p), 1);
    assert_int_equal(tu_block_holders(p, desc.cls, desc.index), 1ull << shmpool_domain_slot(d2));
    assert_ok(shmpool_block_release(r2));
    assert_int_equal(tu_pool_used(p), 0);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_acquire_in_another_process_yields_the_same_data_and_info(void **state)
{
    const char *dom = TU_DOM(state);
    tu_child ch;
    pid_t pid = tu_child_fork(&ch);
    if (pid == 0) {
        shmpool_desc desc;
        tu_child_recv_desc(ch.to_child[0], &desc);
        shmpool_domain *d = NULL;
        CHILD_OK(shmpool_domain_open(dom, NULL, &d));
        shmbus_block *r = NULL;
        CHILD_OK(shmpool_acquire(d, &desc, &r));
        const unsigned char *data = shmpool_block_data(r);
        for (uint64_t i = 0; i < desc.length; i++)
            CHILD_CHECK(data[i] == (unsigned char)(i ^ 0x5a));
        shmpool_block_info in = tu_info(r);
        CHILD_CHECK(in.seq == desc.seq && in.length == desc.length && in.user == 9);
        CHILD_CHECK(in.owner_uid == desc.owner_uid && in.owner_uid != shmpool_domain_uid(d));
        CHILD_CHECK(proc_tell(ch.to_parent[1], 'r') == 0);
        CHILD_CHECK(proc_hear(ch.to_child[0], 'x', 20000) == 0);
        CHILD_OK(shmpool_block_release(r));
        CHILD_OK(shmpool_domain_close(d));
        _exit(0);
    }
    shmpool_domain *d = tu_open_domain(dom);
    shmpool_class c[] = {{4096, 2}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_block *b = NULL;
    assert_ok(shmpool_loan(p, 3000, 0, &b));
    for (uint64_t i = 0; i < 3000; i++)
        ((unsigned char *)shmpool_block_data(b))[i] = (unsigned char)(i ^ 0x5a);
    shmpool_desc desc;
    assert_ok(shmpool_block_describe(b, 3000, 9, &desc));
    tu_send_desc(ch.to_child[1], &desc);
    assert_int_equal(proc_hear(ch.to_parent[0], 'r', 20000), 0);
    assert_int_equal(__builtin_popcountll(tu_block_holders(p, desc.cls, desc.index)), 2);
    assert_ok(shmpool_block_release(b));
    assert_int_equal(tu_pool_used(p), 1); /* the child still holds it */
    assert_int_equal(proc_tell(ch.to_child[1], 'x'), 0);
    proc_expect_ok(pid, 20000, "reader child");
    assert_int_equal(tu_pool_used(p), 0);
    tu_assert_consistent(d);
    assert_ok(shmpool_domain_close(d));
}

static void test_descriptor_of_a_freed_block_is_expired(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 2}};
    shmbus_pool *p = tu_open_pool(d1, "p", c, 1);
    shmbus_block *b = NULL, *r = NULL;
    assert_ok(shmpool_loan(p, 1, 0, &b));
    shmpool_desc desc;
    assert_ok(shmpool_block_describe(b, 1, 0, &desc));
    assert_ok(shmpool_block_release(b));
    assert_rc(shmpool_acquire(d2, &desc, &r), SHMBUS_EEXPIRED);
    assert_rc(shmpool_acquire(d1, &desc, &r), SHMBUS_EEXPIRED);
    assert_int_equal(tu_pool_used(p), 0); /* not resurrected */
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.loans, 1);
    assert_int_equal(st.frees, 1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_stale_descriptor_is_rejected_after_release_and_reuse(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 1}}; /* one block: the next loan must reuse it */
    shmbus_pool *p = tu_open_pool(d1, "p", c, 1);
    shmbus_block *b = NULL, *r = NULL;
    shmpool_desc old, cur;
    assert_ok(shmpool_loan(p, 1, 0, &b));
    tu_write_pattern(b);
    assert_ok(shmpool_block_describe(b, 8, 0, &old));
    assert_ok(shmpool_block_release(b));

    assert_ok(shmpool_loan(p, 1, 0, &b));
    tu_write_pattern(b);
    assert_ok(shmpool_block_describe(b, 8, 0, &cur));
    assert_int_equal(cur.index, old.index);
    assert_int_not_equal(cur.gen, old.gen);
    assert_int_not_equal(cur.seq, old.seq);

    r = NULL;
    assert_rc(shmpool_acquire(d2, &old, &r), SHMBUS_EEXPIRED);
    assert_null(r);
    assert_int_equal(tu_block_holders(p, cur.cls, cur.index), 1ull << shmpool_domain_slot(d1));
    assert_ok(shmpool_acquire(d2, &cur, &r));
    assert_true(tu_has_pattern(r, cur.seq));
    assert_ok(shmpool_block_release(r));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_stale_descriptor_is_rejected_after_the_generation_wraps(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{64, 1}};
    shmbus_pool *p = tu_open_pool(d1, "p", c, 1);
    shmbus_block *b = NULL, *r = NULL;
    shmpool_desc old, cur;
    assert_ok(shmpool_loan(p, 1, 0, &b));
    assert_ok(shmpool_block_describe(b, 1, 0, &old));
    assert_ok(shmpool_block_release(b));

    /* Loan and release the one block until its generation comes back to old.gen: 16 bits,
     * so after 65536 frees. */
    unsigned cycles = 1;
    for (;;) {
        assert_ok(shmpool_loan(p, 1, 0, &b));
        if (tu_info(b).gen == old.gen)
            break;
        assert_ok(shmpool_block_release(b));
        if (++cycles > 3 * 65536)
            fail_msg("the generation never came back to %u", old.gen);
    }
    print_message("    generation %u came back after %u loan/release cycles\n", old.gen, cycles);
    assert_int_equal(cycles, 65536);
    tu_write_pattern(b);
    assert_ok(shmpool_block_describe(b, 1, 0, &cur));
    assert_int_equal(cur.gen, old.gen);
    assert_int_equal(cur.index, old.index);
    assert_int_not_equal(cur.seq, old.seq);

    /* the state word matches the old descriptor exactly; the sequence check must catch it */
    r = NULL;
    assert_rc(shmpool_acquire(d2, &old, &r), SHMBUS_EEXPIRED);
    assert_null(r);
    assert_int_equal(tu_block_holders(p, 0, cur.index), 1ull << shmpool_domain_slot(d1));
    shmpool_class_stats st;
    tu_class_stats(p, 0, &st);
    assert_int_equal(st.used, 1);
    assert_int_equal(st.loans, 65537);
    assert_int_equal(st.frees, 65536);
    /* with the same generation and sequence but another owner it is still not that block */
    shmpool_desc forged = cur;
    forged.owner_uid ^= 1;
    assert_rc(shmpool_acquire(d2, &forged, &r), SHMBUS_EEXPIRED);
    assert_ok(shmpool_acquire(d2, &cur, &r));
    assert_true(tu_has_pattern(r, cur.seq));
    assert_ok(shmpool_block_release(r));
    assert_ok(shmpool_block_release(b));
    tu_assert_consistent(d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_forged_descriptors_are_rejected_with_precise_codes(void **state)
{
    shmpool_domain *d1 = tu_open_domain(TU_DOM(state)), *d2 = tu_open_domain(TU_DOM(state));
    shmpool_class c[] = {{256, 4}, {4096, 2}};
    shmbus_pool *p = tu_open_pool(d1, "p", c, 2);
    shmbus_block *b = NULL, *r = NULL;
    assert_ok(shmpool_loan(p, 300, 0, &b));
    tu_write_pattern(b);
    shmpool_desc good, f;
    assert_ok(shmpool_block_describe(b, 300, 0, &good));
    uint64_t cap = shmpool_block_capacity(b);
    uint64_t me = 1ull << shmpool_domain_slot(d1);

#define EXPECT_FORGED(field_change, want)                                                   \
    do {                                                                                    \
        f = good;                                                                           \
        field_change;                                                                       \
        r = NULL;                                                                           \
        int rc_ = shmpool_acquire(d2, &f, &r);                                              \
        if (rc_ != (want))                                                                  \
            fail_msg("forged (%s): acquire returned %d (%s), expected %s", #field_change,   \
                     rc_, tu_errname(rc_), tu_errname(want));                               \
        assert_null(r);                                                                     \
    } while (0)

    EXPECT_FORGED(f.cls = 2, SHMBUS_EBADDESC);
    EXPECT_FORGED(f.cls = 0xffff, SHMBUS_EBADDESC);
    EXPECT_FORGED(f.index = 2, SHMBUS_EBADDESC); /* class 1 has 2 blocks */
    EXPECT_FORGED(f.index = UINT32_MAX, SHMBUS_EBADDESC);
    EXPECT_FORGED(f.length = cap + 1, SHMBUS_EBADDESC);
    EXPECT_FORGED(f.length = UINT64_MAX, SHMBUS_EBADDESC);
    EXPECT_FORGED(f.gen = (uint16_t)(good.gen + 1), SHMBUS_EEXPIRED);
    EXPECT_FORGED(f.gen = (uint16_t)(good.gen - 1), SHMBUS_EEXPIRED);
    EXPECT_FORGED(f.seq = good.seq + 1, SHMBUS_EEXPIRED);
    EXPECT_FORGED(f.owner_uid = good.owner_uid + 1, SHMBUS_EEXPIRED);
    EXPECT_FORGED(f.index = good.index ^ 1, SHMBUS_EEXPIRED); /* a free block of the class */
    EXPECT_FORGED((f.cls = 0, f.length = 8), SHMBUS_EEXPIRED);
#undef EXPECT_FORGED

    /* an unknown pool id: ENOENT (the API's code for it) or EBADDESC */
    f = good;
    f.pool_id = good.pool_id + 1;
    int rc = shmpool_acquire(d2, &f, &r);
    if (rc != SHMBUS_ENOENT && rc != SHMBUS_EBADDESC)
        fail_msg("unknown pool id: acquire returned %d (%s)", rc, tu_errname(rc));
    /* sequence 0 is never loaned: stale or malformed, both say no */
    f = good;
    f.seq = 0;
    rc = shmpool_acquire(d2, &f, &r);
    if (rc != SHMBUS_EEXPIRED && rc != SHMBUS_EBADDESC)
        fail_msg("sequence 0: acquire returned %d (%s)", rc, tu_errname(rc));

    /* none of that touched the block */
    assert_int_equal(tu_block_holders(p, good.cls, good.index), me);
    assert_int_equal(tu_pool_used(p), 1);

    /* The exact descriptor is accepted. One that names the live block but misstates what the
     * loaner described (length within capacity, timestamp, user) may be accepted or refused
     * as EBADDESC, but if accepted it must be exactly that block. */
    assert_ok(shmpool_acquire(d2, &good, &r));
    assert_true(tu_has_pattern(r, good.seq));
    assert_ok(shmpool_block_release(r));
    for (int i = 0; i < 4; i++) {
        f = good;
        if (i == 0)
            f.length = 0;
        else if (i == 1)
            f.length = cap;
        else if (i == 2)
            f.timestamp_ns ^= 1;
        else
            f.user ^= 1;
        r = NULL;
        rc = shmpool_acquire(d2, &f, &r);
        if (rc == 0) {
            assert_true(tu_has_pattern(r, good.seq));
            assert_ok(shmpool_block_release(r));
        } else {
            assert_rc(rc, SHMBUS_EBADDESC);
            assert_null(r);
        }
    }
    assert_int_equal(tu_block_holders(p, good.cls, good.index), me);
    assert_ok(shmpool_block_release(b));
    tu_assert_consistent(d1);
    assert_ok(shmpool_domain_close(d2));
    assert_ok(shmpool_domain_close(d1));
}

static void test_descriptor_of_an_earlier_incarnation_of_the_pool_is_rejected(void **state)
{
    const char *dom = TU_DOM(state);
    shmpool_domain *d = tu_open_domain(dom);
    shmpool_class c[] = {{256, 1}};
    shmbus_pool *p = tu_open_pool(d, "p", c, 1);
    shmbus_pool *q = tu_open_pool(d, "q", c, 1);
    assert_int_not_equal(shmpool_pool_id(p), shmpool_pool_id(q));
    shmbus_block *b = NULL, *r = NULL;
    assert_ok(shmpool_loan(p, 1, 0, &b));
    shmpool_desc old;
    assert_ok(shmpool_block_describe(b, 1, 0, &old));
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d)); /* the last one out: the pool is gone */

    d = tu_open_domain(dom);
    p = tu_open_pool(d, "p", c, 1);
    assert_int_not_equal(shmpool_pool_id(p), old.pool_id);
    assert_ok(shmpool_loan(p, 1, 0, &b)); /* same class, index and (maybe) generation */
    assert_rc(shmpool_acquire(d, &old, &r), SHMBUS_ENOENT);
    assert_ok(shmpool_block_release(b));
    assert_ok(shmpool_domain_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_descriptor_round_trips_through_encode_and_decode),
        TU_TEST(test_decode_rejects_bad_magic_version_size_length_and_reserved_bytes),
        TU_TEST(test_random_bytes_never_decode_into_a_descriptor),
        TU_TEST(test_describe_records_length_user_owner_and_timestamp),
        TU_TEST(test_acquire_in_another_participant_yields_the_same_data_and_info),
        TU_TEST(test_acquire_in_another_process_yields_the_same_data_and_info),
        TU_TEST(test_descriptor_of_a_freed_block_is_expired),
        TU_TEST(test_stale_descriptor_is_rejected_after_release_and_reuse),
        TU_TEST(test_stale_descriptor_is_rejected_after_the_generation_wraps),
        TU_TEST(test_forged_descriptors_are_rejected_with_precise_codes),
        TU_TEST(test_descriptor_of_an_earlier_incarnation_of_the_pool_is_rejected),
    };
    tu_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
