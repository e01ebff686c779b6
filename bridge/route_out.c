/* Local -> DDS: the route's thread takes each message of its shmbus topic and writes one DDS
 * sample. The sample's data sequence points at the pixels (or payload) in the shared block,
 * held while dds_write serializes it: the only copy is Cyclone's own into its datagrams.
 *
 * It never slows the local bus: the bridge is just one more subscriber, and a publisher never
 * waits for subscribers. If DDS is slow (a reliable writer out of room for longer than
 * max_blocking_ms) the write fails and the message is counted as busy; messages the bridge
 * could not take in time are the subscriber's expired/dropped counts (local_lost). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "image_map.h"
#include "ros2_image.h"
#include "shmbus_frame.h"
#include "shmbus_message.h"

static bool own_message(const bridge *b, const shmbus_msg *m)
{
    uint64_t id = shmbus_msg_publisher(m);
    for (unsigned i = 0; i < b->nown; i++)
        if (b->own_pubs[i] == id) return true;
    return false;
}

static void count_write(route *r, dds_return_t rc)
{
    if (rc == DDS_RETCODE_OK) {
        counter_add(&r->c.forwarded);
    } else if (rc == DDS_RETCODE_TIMEOUT || rc == DDS_RETCODE_OUT_OF_RESOURCES) {
        counter_add(&r->c.busy);
        bridge_note(r, atomic_load(&r->c.busy), "DDS writer busy (%s): sample dropped",
                    dds_strretcode(rc));
    } else {
        counter_add(&r->c.errors);
        bridge_note(r, atomic_load(&r->c.errors), "dds_write: %s", dds_strretcode(rc));
    }
}

static void forward_image(route *r, const shmbus_msg *m)
{
    const shmbus_frame_hdr *h;
    if (shmbus_frame_get(m, &h) != 0) {
        counter_add(&r->c.invalid);
        bridge_note(r, atomic_load(&r->c.invalid), "not a frame: %s", shmbus_last_error());
        return;
    }
    char why[160];
    const char *enc = image_encoding_of((int)h->format, why, sizeof why);
    if (!enc || h->nplanes != 1) {
        counter_add(&r->c.refused);
        bridge_note(r, atomic_load(&r->c.refused), "%s", why);
        return;
    }
    /* One plane: stride x height bytes, the row padding included (it is the image's step). */
    uint64_t size = h->plane_size[0];
    if (size > r->cfg->max_sample_size || size > UINT32_MAX) {
        counter_add(&r->c.too_large);
        bridge_note(r, atomic_load(&r->c.too_large), "frame of %llu bytes > max_sample_size %llu",
                    (unsigned long long)size, (unsigned long long)r->cfg->max_sample_size);
        return;
    }
    sensor_msgs_msg_dds__Image_ s;
    memset(&s, 0, sizeof s);
    image_stamp_of(h->capture_ns, &s.header.stamp.sec, &s.header.stamp.nanosec);
    s.header.frame_id = (char *)r->cfg->frame_id;
    s.height = h->height;
    s.width = h->width;
    s.encoding = (char *)enc;
    s.is_bigendian = 0;
    s.step = h->stride[0];
    s.data._maximum = s.data._length = (uint32_t)size;
    s.data._buffer = (uint8_t *)shmbus_frame_plane(h, 0); /* the block itself, no copy */
    s.data._release = false;
    count_write(r, dds_write(r->writer, &s));
}

static void forward_message(route *r, const shmbus_msg *m)
{
    uint64_t len = shmbus_msg_length(m);
    if (len > r->cfg->max_sample_size || len > UINT32_MAX) {
        counter_add(&r->c.too_large);
        bridge_note(r, atomic_load(&r->c.too_large), "message of %llu bytes > max_sample_size %llu",
                    (unsigned long long)len, (unsigned long long)r->cfg->max_sample_size);
        return;
    }
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    uint64_t now_mono = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
    uint64_t now_real = (uint64_t)real.tv_sec * 1000000000ull + (uint64_t)real.tv_nsec;
    uint64_t age = now_mono - shmbus_msg_timestamp_ns(m);
    shmbus_msg_dds__Message_ s = {
        .seq = shmbus_msg_seq(m),
        .publish_ns = age < now_real ? now_real - age : 0,
        .publisher = shmbus_msg_publisher(m),
        .data = {._maximum = (uint32_t)len,
                 ._length = (uint32_t)len,
                 ._buffer = (uint8_t *)shmbus_msg_data(m),
                 ._release = false},
    };
    count_write(r, dds_write(r->writer, &s));
}

void *route_out_run(void *arg)
{
    route *r = arg;
    bridge *b = r->b;
    while (!atomic_load(&b->stop)) {
        shmbus_msg *m;
        int rc = shmbus_sub_recv(r->sub, 200, &m);
        if (rc == SHMBUS_ETIMEDOUT || rc == SHMBUS_EAGAIN || rc == SHMBUS_EINTR) continue;
        if (rc != 0) {
            counter_add(&r->c.errors);
            bridge_note(r, atomic_load(&r->c.errors), "receive: %s (%s)", shmbus_strerror(rc),
                        shmbus_last_error());
            struct timespec pause = {0, 100 * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        if (own_message(b, m)) {
            counter_add(&r->c.looped); /* taken in from DDS by this bridge: never sent back */
        } else {
            counter_add(&r->c.received);
            if (r->cfg->type == BRIDGE_TYPE_IMAGE)
                forward_image(r, m);
            else
                forward_message(r, m);
        }
        shmbus_msg_release(m);
    }
    return NULL;
}
