/* ros2-image-peer: a stand-in for a ROS 2 node, built only from the ROS 2 message IDL
 * (bridge/idl/ros2_image.idl) and Cyclone DDS. It does not link shmbus: what it accepts, a
 * ROS 2 node on Cyclone would accept (same type names, plain CDR, topic "rt/...").
 *
 *   ros2-image-peer sub --topic rt/T --count N --width W --height H --encoding E
 *                       [--frame-id F] [--reliable] [--timeout S]
 *       Takes N images and checks each one: width, height, encoding, frame_id, step
 *       (= width x bytes per pixel), is_bigendian 0, data length, the stamp against the
 *       capture time the pixels carry, every pixel (pixel_pattern.h), and that indices only
 *       increase. Prints
 *       a JSON summary; exit 0 if N good images came in order, 1 otherwise.
 *   ros2-image-peer pub --topic rt/T --count N --width W --height H --encoding E
 *                       [--reliable] [--rate HZ] [--sequence g,s,e,...]
 *       Waits for a reader, then publishes N images (index 0..N-1, stamp = now) at HZ
 *       (default 50). --sequence gives the kind of each image: g good, s step*height not the
 *       data length, e unknown encoding ("bayer_rggb8"), z zero width, r a row longer than
 *       step; the count is then the sequence's length.
 * The DDS domain is $SHMBUS_TEST_DDS_DOMAIN (default 0); Cyclone's configuration comes from
 * $CYCLONEDDS_URI. Exit 2 on a usage error or DDS failure. */
#include <dds/dds.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixel_pattern.h"
#include "ros2_image.h"

typedef struct opts {
    bool pub;
    const char *topic, *encoding, *sequence, *frame_id;
    unsigned count, width, height, rate, timeout_s;
    bool reliable;
} opts;

static unsigned bytes_per_pixel(const char *enc)
{
    if (!strcmp(enc, "rgb8") || !strcmp(enc, "bgr8")) return 3;
    if (!strcmp(enc, "yuv422_yuy2") || !strcmp(enc, "yuyv")) return 2;
    return 1;
}

static int die(const char *what, dds_return_t rc)
{
    fprintf(stderr, "ros2-image-peer: %s: %s\n", what, dds_strretcode(rc));
    return 2;
}

static int run_sub(dds_entity_t pp, dds_entity_t topic, dds_qos_t *q, const opts *o)
{
    dds_entity_t rd = dds_create_reader(pp, topic, q, NULL);
    if (rd < 0) return die("reader", rd);
    dds_entity_t ws = dds_create_waitset(pp);
    dds_entity_t cond = dds_create_readcondition(rd, DDS_ANY_STATE);
    dds_waitset_attach(ws, cond, 0);
    unsigned received = 0, bad_fields = 0, bad_pixels = 0, out_of_order = 0;
    int64_t first = -1, last = -1;
    double max_stamp_err_us = 0;
    dds_time_t deadline = dds_time() + DDS_SECS(o->timeout_s);
    size_t step = (size_t)o->width * bytes_per_pixel(o->encoding);
    while (received < o->count && dds_time() < deadline) {
        dds_waitset_wait(ws, NULL, 0, DDS_MSECS(100));
        void *samples[1] = {NULL};
        dds_sample_info_t info;
        while (received < o->count && dds_take(rd, samples, &info, 1, 1) > 0) {
            const sensor_msgs_msg_dds__Image_ *im = samples[0];
            if (info.valid_data) {
                received++;
                if (im->width != o->width || im->height != o->height ||
                    strcmp(im->encoding, o->encoding) != 0 || im->step != step ||
                    im->is_bigendian != 0 || im->data._length != step * o->height ||
                    (o->frame_id && strcmp(im->header.frame_id, o->frame_id) != 0)) {
                    bad_fields++;
                    fprintf(stderr, "ros2-image-peer: image %ux%u %s step %u length %u frame %s\n",
                            im->width, im->height, im->encoding, im->step, im->data._length,
                            im->header.frame_id);
                } else {
                    uint64_t idx = 0, real = 0;
                    if (!pp_check(im->data._buffer, im->data._length, &idx, &real)) bad_pixels++;
                    if (first < 0) first = (int64_t)idx;
                    if ((int64_t)idx <= last) out_of_order++;
                    last = (int64_t)idx;
                    double stamp = (double)im->header.stamp.sec * 1e9 + im->header.stamp.nanosec;
                    double err = (stamp - (double)real) / 1e3;
                    if (err < 0) err = -err;
                    if (err > max_stamp_err_us) max_stamp_err_us = err;
                }
            }
            dds_return_loan(rd, samples, 1);
            samples[0] = NULL;
        }
    }
    printf("{\"received\": %u, \"bad_fields\": %u, \"bad_pixels\": %u, \"out_of_order\": %u, "
           "\"first\": %" PRId64 ", \"last\": %" PRId64 ", \"max_stamp_error_us\": %.1f}\n",
           received, bad_fields, bad_pixels, out_of_order, first, last, max_stamp_err_us);
    return received == o->count && bad_fields + bad_pixels + out_of_order == 0 ? 0 : 1;
}

static int run_pub(dds_entity_t pp, dds_entity_t topic, dds_qos_t *q, const opts *o)
{
    dds_entity_t wr = dds_create_writer(pp, topic, q, NULL);
    if (wr < 0) return die("writer", wr);
    dds_time_t deadline = dds_time() + DDS_SECS(o->timeout_s);
    dds_publication_matched_status_t st = {0};
    while (dds_get_publication_matched_status(wr, &st) == 0 && st.current_count < 1 &&
           dds_time() < deadline)
        dds_sleepfor(DDS_MSECS(20));
    if (st.current_count < 1) return die("no reader matched", DDS_RETCODE_TIMEOUT);
    dds_sleepfor(DDS_MSECS(200)); /* let the reader's side finish matching too */
    unsigned n = o->sequence ? (unsigned)(strlen(o->sequence) + 1) / 2 : o->count;
    size_t step = (size_t)o->width * bytes_per_pixel(o->encoding);
    uint8_t *pix = malloc(step * o->height + 64);
    if (!pix) return die("out of memory", DDS_RETCODE_OUT_OF_RESOURCES);
    unsigned sent = 0;
    for (unsigned i = 0; i < n; i++) {
        char kind = o->sequence ? o->sequence[2 * i] : 'g';
        uint64_t real = pp_realtime_ns();
        pp_fill(pix, step * o->height, i, real);
        sensor_msgs_msg_dds__Image_ im = {
            .header = {.stamp = {.sec = (int32_t)(real / 1000000000u),
                                 .nanosec = (uint32_t)(real % 1000000000u)},
                       .frame_id = "peer"},
            .height = o->height,
            .width = o->width,
            .encoding = (char *)o->encoding,
            .is_bigendian = 0,
            .step = (uint32_t)step,
            .data = {._maximum = (uint32_t)(step * o->height),
                     ._length = (uint32_t)(step * o->height),
                     ._buffer = pix,
                     ._release = false}};
        if (kind == 's')
            im.data._length -= 1; /* step * height != length */
        else if (kind == 'e')
            im.encoding = "bayer_rggb8";
        else if (kind == 'z')
            im.width = 0;
        else if (kind == 'r')
            im.step = (uint32_t)(step / 2); /* a row longer than step */
        dds_return_t rc = dds_write(wr, &im);
        if (rc != 0)
            fprintf(stderr, "ros2-image-peer: write %u: %s\n", i, dds_strretcode(rc));
        else
            sent++;
        dds_sleepfor(DDS_SECS(1) / (o->rate ? o->rate : 50));
    }
    if (o->reliable) dds_wait_for_acks(wr, DDS_SECS(10));
    dds_sleepfor(DDS_MSECS(300));
    free(pix);
    printf("{\"sent\": %u}\n", sent);
    return sent == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    opts o = {
        .count = 10, .width = 64, .height = 48, .encoding = "rgb8", .rate = 50, .timeout_s = 30};
    if (argc < 2 || (strcmp(argv[1], "sub") && strcmp(argv[1], "pub"))) {
        fprintf(stderr, "usage: ros2-image-peer sub|pub --topic rt/T [options]\n");
        return 2;
    }
    o.pub = strcmp(argv[1], "pub") == 0;
    static const struct option lo[] = {{"topic", 1, 0, 't'},
                                       {"count", 1, 0, 'n'},
                                       {"width", 1, 0, 'w'},
                                       {"height", 1, 0, 'H'},
                                       {"encoding", 1, 0, 'e'},
                                       {"rate", 1, 0, 'r'},
                                       {"sequence", 1, 0, 's'},
                                       {"timeout", 1, 0, 'T'},
                                       {"reliable", 0, 0, 'R'},
                                       {"frame-id", 1, 0, 'f'},
                                       {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 't': o.topic = optarg; break;
        case 'n': o.count = (unsigned)atoi(optarg); break;
        case 'w': o.width = (unsigned)atoi(optarg); break;
        case 'H': o.height = (unsigned)atoi(optarg); break;
        case 'e': o.encoding = optarg; break;
        case 'r': o.rate = (unsigned)atoi(optarg); break;
        case 's': o.sequence = optarg; break;
        case 'T': o.timeout_s = (unsigned)atoi(optarg); break;
        case 'R': o.reliable = true; break;
        case 'f': o.frame_id = optarg; break;
        default: return 2;
        }
    }
    if (!o.topic || o.width == 0 || o.height == 0 || (size_t)o.width * o.height * 3 < 16) {
        fprintf(stderr,
                "ros2-image-peer: --topic is required, and an image of at least 16 bytes\n");
        return 2;
    }
    const char *dom = getenv("SHMBUS_TEST_DDS_DOMAIN");
    dds_entity_t pp = dds_create_participant(dom ? (dds_domainid_t)atoi(dom) : 0, NULL, NULL);
    if (pp < 0) return die("participant", pp);
    dds_entity_t topic =
        dds_create_topic(pp, &sensor_msgs_msg_dds__Image__desc, o.topic, NULL, NULL);
    if (topic < 0) return die("topic", topic);
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, o.reliable ? DDS_RELIABILITY_RELIABLE : DDS_RELIABILITY_BEST_EFFORT,
                         DDS_SECS(1));
    /* a writer keeps the last few; this reader keeps all it has not taken yet */
    if (o.pub)
        dds_qset_history(q, DDS_HISTORY_KEEP_LAST, o.reliable ? 10 : 5);
    else
        dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
    int rc = o.pub ? run_pub(pp, topic, q, &o) : run_sub(pp, topic, q, &o);
    dds_delete_qos(q);
    dds_delete(pp);
    return rc;
}
