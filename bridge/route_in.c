/* DDS -> local: the route's thread takes each DDS sample (loaned by Cyclone, no copy) and
 * publishes it into a block loaned on the local bus: the one copy on the receiving host.
 * Images become frames (api/shmbus_frame.h) with the header filled from the Image fields;
 * an Image whose fields do not match its data, or whose encoding has no frame format, is
 * counted and skipped before anything is loaned. Samples of this bridge's own writers never
 * arrive (ignore-local QoS). */
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "image_map.h"
#include "ros2_image.h"
#include "shmbus_frame.h"
#include "shmbus_message.h"

/* A loan or publish that failed: pool full (counted as such), too big, or anything else. */
static void count_failure(route *r, int rc, const char *what)
{
    _Atomic uint64_t *c = rc == SHMBUS_EFULL || rc == SHMBUS_ETIMEDOUT  ? &r->c.pool_full
                          : rc == SHMBUS_ETOOBIG || rc == SHMBUS_EINVAL ? &r->c.too_large
                                                                        : &r->c.errors;
    counter_add(c);
    bridge_note(r, atomic_load(c), "%s: %s (%s)", what, shmbus_strerror(rc), shmbus_last_error());
}

static void publish_image(route *r, const sensor_msgs_msg_dds__Image_ *s)
{
    bool swap, refused;
    char why[200];
    shmbus_pixfmt fmt = image_check(s->width, s->height, s->encoding, s->step, s->data._length,
                                    &swap, &refused, why, sizeof why);
    shmbus_frame_hdr g;
    if (fmt != SHMBUS_PIXFMT_NONE &&
        shmbus_frame_init_stride(&g, fmt, s->width, s->height, s->step) != 0) {
        snprintf(why, sizeof why, "%ux%u %s with step %u is not a valid frame", s->width, s->height,
                 s->encoding, s->step);
        fmt = SHMBUS_PIXFMT_NONE;
    }
    if (fmt == SHMBUS_PIXFMT_NONE ||
        (fmt != SHMBUS_PIXFMT_NONE && g.plane_size[0] != s->data._length)) {
        _Atomic uint64_t *c = refused ? &r->c.refused : &r->c.invalid;
        counter_add(c);
        bridge_note(r, atomic_load(c), "Image skipped: %s", why);
        return;
    }
    shmbus_msg *m;
    shmbus_frame_hdr *h;
    int rc = shmbus_frame_loan(r->pub, &g, &m, &h);
    if (rc != 0) {
        count_failure(r, rc, "loan");
        return;
    }
    uint8_t *dst = shmbus_frame_plane_mut(h, 0);
    if (swap)
        image_copy_swap_rb(dst, s->data._buffer, s->width, s->height, s->step);
    else
        memcpy(dst, s->data._buffer, s->data._length);
    h->frame_number = r->frames_in++;
    h->capture_ns = image_mono_of(s->header.stamp.sec, s->header.stamp.nanosec);
    rc = shmbus_frame_publish(r->pub, m, r->cfg->checksum);
    if (rc != 0) {
        if (rc != SHMBUS_ETRANSPORT) shmbus_msg_release(m);
        count_failure(r, rc, "publish");
        return;
    }
    counter_add(&r->c.forwarded);
}

static void publish_message(route *r, const shmbus_msg_dds__Message_ *s)
{
    shmbus_msg *m;
    uint32_t len = s->data._length;
    int rc = shmbus_pub_loan(r->pub, len ? len : 1, &m);
    if (rc != 0) {
        count_failure(r, rc, "loan");
        return;
    }
    if (len) memcpy(shmbus_msg_data(m), s->data._buffer, len);
    rc = shmbus_pub_publish(r->pub, m, len);
    if (rc != 0) {
        if (rc != SHMBUS_ETRANSPORT) shmbus_msg_release(m);
        count_failure(r, rc, "publish");
        return;
    }
    counter_add(&r->c.forwarded);
}

void *route_in_run(void *arg)
{
    route *r = arg;
    bridge *b = r->b;
    while (!atomic_load(&b->stop)) {
        dds_waitset_wait(r->waitset, NULL, 0, DDS_MSECS(200));
        for (;;) {
            void *samples[1] = {NULL};
            dds_sample_info_t info;
            dds_return_t n = dds_take(r->reader, samples, &info, 1, 1);
            if (n <= 0) break;
            if (info.valid_data) {
                counter_add(&r->c.received);
                if (r->cfg->type == BRIDGE_TYPE_IMAGE)
                    publish_image(r, samples[0]);
                else
                    publish_message(r, samples[0]);
            }
            dds_return_loan(r->reader, samples, n);
            if (atomic_load(&b->stop)) break;
        }
    }
    return NULL;
}
