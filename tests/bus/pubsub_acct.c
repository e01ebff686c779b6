/* Helpers of the pub/sub tests: the exact loss accounting of a subscriber's (publisher,
 * subscriber) pairs (pubsub_common.h, "exact loss accounting"). Child side. */
#include "pubsub_common.h"

#include <stdlib.h>
#include <string.h>

#define PS_MAX_PAIRS 256

int ps_check_accounting(shmbus_sub *s, bool all_closed)
{
    shmbus_peer_counters pc[PS_MAX_PAIRS];
    shmbus_sub_counters st;
    int n = shmbus_sub_peer_counters(s, pc, PS_MAX_PAIRS);
    if (n < 0 || n > PS_MAX_PAIRS || shmbus_sub_stats(s, &st) != 0) {
        fprintf(stderr, "child %d: peer counters: %s\n", (int)getpid(), shmbus_errname(n));
        return -1;
    }
    uint64_t sum[5] = {0}, hist = 0;
    for (int i = 0; i < n; i++) {
        const shmbus_peer_counters *p = &pc[i];
        uint64_t counted = p->received + p->expired + p->dropped + p->overflow + p->invalid;
        if (p->last_seq < p->base || p->last_seq - p->base != counted ||
            (all_closed && !p->closed)) {
            fprintf(stderr, "child %d: publisher %llu: %llu messages after base, %llu counted%s: "
                    PS_PAIR_FMT "\n", (int)getpid(), (unsigned long long)p->publisher,
                    (unsigned long long)(p->last_seq - p->base), (unsigned long long)counted,
                    all_closed && !p->closed ? ", end not accounted" : "", PS_PAIR_ARGS(*p));
            return -1;
        }
        sum[0] += p->received, sum[1] += p->expired, sum[2] += p->dropped;
        sum[3] += p->overflow, sum[4] += p->invalid + p->forged, hist += p->history;
    }
    /* the subscriber's own counters: the pairs' sums; invalid may add descriptors that came
     * over no publisher's connection */
    if (st.received != sum[0] + hist || st.expired != sum[1] || st.dropped != sum[2] ||
        st.overflow != sum[3] || st.invalid < sum[4]) {
        fprintf(stderr, "child %d: the pairs add up to received %llu expired %llu dropped %llu "
                "overflow %llu invalid %llu, the subscriber says " PS_SUB_FMT "\n",
                (int)getpid(), (unsigned long long)(sum[0] + hist), (unsigned long long)sum[1],
                (unsigned long long)sum[2], (unsigned long long)sum[3],
                (unsigned long long)sum[4], PS_SUB_ARGS(st));
        return -1;
    }
    return n;
}

int64_t ps_drain_until_closed(shmbus_sub *s, unsigned pairs)
{
    uint64_t deadline = proc_now_ns() + (uint64_t)PS_SAFETY_MS * 1000000u;
    int64_t got = 0;
    for (;;) {
        shmbus_msg *m = NULL;
        int rc = shmbus_sub_recv(s, 20, &m);
        if (rc == 0) {
            ps_hdr h;
            if (ps_check_msg(m, &h) != 0)
                return -1;
            shmbus_msg_release(m);
            got++;
            continue;
        }
        if (rc != SHMBUS_ETIMEDOUT) {
            fprintf(stderr, "child %d: recv: %s (%s)\n", (int)getpid(), shmbus_errname(rc),
                    shmbus_last_error());
            return -1;
        }
        shmbus_peer_counters pc[PS_MAX_PAIRS];
        int n = shmbus_sub_peer_counters(s, pc, PS_MAX_PAIRS);
        bool closed = n == (int)pairs;
        for (int i = 0; i < n && i < PS_MAX_PAIRS; i++)
            closed &= pc[i].closed;
        if (closed)
            return ps_check_accounting(s, true) < 0 ? -1 : got;
        if (proc_now_ns() > deadline) {
            fprintf(stderr, "child %d: %d of %u pairs, not all closed after %d ms\n",
                    (int)getpid(), n, pairs, PS_SAFETY_MS);
            ps_check_accounting(s, true);
            return -1;
        }
    }
}

shmbus_peer_counters ps_pair(shmbus_sub *s, uint64_t id)
{
    shmbus_peer_counters pc[PS_MAX_PAIRS];
    int n = shmbus_sub_peer_counters(s, pc, PS_MAX_PAIRS);
    for (int i = 0; i < n && i < PS_MAX_PAIRS; i++)
        if (pc[i].publisher == id)
            return pc[i];
    PS_CHECK(false, "no pair with publisher %llu among %d", (unsigned long long)id, n);
    return pc[0];
}
