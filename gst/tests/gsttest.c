/* Helpers of the GStreamer plugin tests (gsttest.h). */
#include "gsttest.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmbus.h>

#include "format.h"

void gt_init(int *argc, char ***argv)
{
    setenv("GST_PLUGIN_PATH", GST_TEST_PLUGIN_DIR, 1);
    setenv("GST_REGISTRY", GST_TEST_REGISTRY, 1);
    gst_init(argc, argv);
    const char *only = getenv("SHMBUS_TEST_FILTER"); /* a cmocka pattern: run only those */
    if (only && *only)
        cmocka_set_test_filter(only);
}

const char *gt_config_path(const fixture *f)
{
    static __thread char p[128];
    ct_path(f, "cfg.json", p, sizeof p);
    return p;
}

void gt_config(fixture *f, const char *block, int count, int history, int max_held)
{
    FILE *fp = fopen(gt_config_path(f), "w");
    assert_non_null(fp);
    fprintf(fp,
            "{\"pools\": [{\"name\": \"frames\", \"block_size\": \"%s\", \"count\": %d}],\n"
            " \"default_topic\": {\"pool\": \"frames\", \"history\": %d, \"max_message_size\": "
            "\"%s\", \"max_held\": %d, \"on_full\": \"wait\", \"wait_ms\": 100, "
            "\"queue_depth\": 256}}\n",
            block, count, history, block, max_held);
    assert_int_equal(fclose(fp), 0);
}

const char *gt_props(const fixture *f)
{
    static __thread char s[256];
    snprintf(s, sizeof s, "domain=%s config=%s", f->dom, gt_config_path(f));
    return s;
}

pid_t gt_launch(fixture *f, const char *tag, const char *fmt, ...)
{
    char desc[2048], out[128], err[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    /* gst-launch takes the pipeline word by word (it escapes spaces inside an argument) */
    char *args[256];
    int n = 0;
    args[n++] = "gst-launch-1.0";
    args[n++] = "-q";
    for (char *save = NULL, *w = strtok_r(desc, " ", &save); w && n < 255;
         w = strtok_r(NULL, " ", &save))
        args[n++] = w;
    args[n] = NULL;
    snprintf(out, sizeof out, "%s/%s.out", f->dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", f->dir, tag);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    /* Under ASan (runtimes preloaded, see CMakeLists.txt) gst-launch is GStreamer's own
     * program: its leaks at exit are not ours to report. A later option wins. */
    char **env = g_get_environ();
    const char *asan = g_environ_getenv(env, "ASAN_OPTIONS");
    gchar *opts = g_strdup_printf("%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");
    env = g_environ_setenv(env, "ASAN_OPTIONS", opts, TRUE);
    g_free(opts);
    pid_t pid;
    int rc = posix_spawnp(&pid, "gst-launch-1.0", &fa, NULL, args, env);
    g_strfreev(env);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot start gst-launch-1.0: %s", strerror(rc));
    int i = 0; /* a slot of a child already waited for (0), else a new one */
    while (i < f->nchild && f->child[i] != 0)
        i++;
    assert_true(i < MAX_CHILDREN);
    f->child[i] = pid;
    snprintf(f->tag[i], sizeof f->tag[0], "%s", tag);
    if (i == f->nchild)
        f->nchild++;
    return pid;
}

GstElement *gt_start(const char *fmt, ...)
{
    char desc[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    GError *err = NULL;
    GstElement *pipe = gst_parse_launch(desc, &err);
    if (!pipe || err)
        fail_msg("%s: %s", desc, err ? err->message : "cannot parse");
    if (gst_element_set_state(pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        GstMessage *m = gt_wait_end(pipe, 1000);
        GError *e = NULL;
        if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
            gst_message_parse_error(m, &e, NULL);
        fail_msg("%s does not start: %s", desc, e ? e->message : "(no error message)");
    }
    return pipe;
}

static GstStructure *last_stats;

GstMessage *gt_wait_end(GstElement *pipe, int timeout_ms)
{
    GstBus *bus = gst_element_get_bus(pipe);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    GstMessage *m = NULL;
    for (gint64 now; !m && (now = g_get_monotonic_time()) < deadline;) {
        m = gst_bus_timed_pop(bus, (GstClockTime)(deadline - now) * GST_USECOND);
        if (!m)
            break;
        const GstStructure *s = gst_message_get_structure(m);
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT && s &&
            g_str_has_suffix(gst_structure_get_name(s), "-stats")) {
            if (last_stats)
                gst_structure_free(last_stats);
            last_stats = gst_structure_copy(s);
        }
        if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_EOS && GST_MESSAGE_TYPE(m) != GST_MESSAGE_ERROR) {
            gst_message_unref(m);
            m = NULL;
        }
    }
    gst_object_unref(bus);
    return m;
}

const GstStructure *gt_last_stats(void) { return last_stats; }

void gt_expect_eos(GstElement *pipe, int timeout_ms)
{
    GstMessage *m = gt_wait_end(pipe, timeout_ms);
    if (!m)
        fail_msg("no EOS within %d ms", timeout_ms);
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gchar *dbg = NULL;
        gst_message_parse_error(m, &e, &dbg);
        fail_msg("error from %s: %s (%s)", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), e->message,
                 dbg ? dbg : "");
    }
    gst_message_unref(m);
}

void gt_stop(GstElement *pipe)
{
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
}

GstSample *gt_pull(GstElement *pipe, const char *name, int timeout_ms)
{
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), name);
    assert_non_null(sink);
    GstSample *sample = NULL;
    g_signal_emit_by_name(sink, "try-pull-sample", (GstClockTime)timeout_ms * GST_MSECOND,
                          &sample);
    gst_object_unref(sink);
    return sample;
}

guint64 gt_stat(GstElement *pipe, const char *element, const char *field)
{
    GstElement *e = gst_bin_get_by_name(GST_BIN(pipe), element);
    assert_non_null(e);
    GstStructure *s = NULL;
    g_object_get(e, "stats", &s, NULL);
    gst_object_unref(e);
    assert_non_null(s);
    guint64 v = 0;
    if (!gst_structure_get_uint64(s, field, &v))
        fail_msg("%s stats have no %s", element, field);
    gst_structure_free(s);
    return v;
}

shmbus_domain *gt_domain(const fixture *f)
{
    shmbus_domain_opts o;
    shmbus_domain_opts_init(&o);
    o.config_path = gt_config_path(f);
    o.name = "gsttest";
    shmbus_domain *d;
    int rc = shmbus_domain_open(f->dom, &o, &d);
    if (rc)
        fail_msg("domain %s: %s", f->dom, shmbus_last_error());
    return d;
}

unsigned gt_pool_used(shmbus_domain *d)
{
    shmbus_snapshot *s;
    assert_int_equal(shmbus_snapshot_take(d, &s), 0);
    unsigned used = 0;
    for (unsigned p = 0; p < s->npools; p++)
        for (unsigned c = 0; c < s->pools[p].nclasses; c++)
            used += s->pools[p].classes[c].used;
    shmbus_snapshot_free(s);
    return used;
}

unsigned gt_wait_pool_empty(shmbus_domain *d, int timeout_ms)
{
    unsigned used;
    for (int waited = 0; (used = gt_pool_used(d)) != 0 && waited < timeout_ms; waited += 20)
        g_usleep(20000);
    return used;
}

void gt_info(GstVideoInfo *info, const char *format, int width, int height)
{
    gst_video_info_init(info);
    assert_true(gst_video_info_set_format(info, gst_video_format_from_string(format),
                                          (guint)width, (guint)height));
    GST_VIDEO_INFO_FPS_N(info) = 30;
    GST_VIDEO_INFO_FPS_D(info) = 1;
}

void gt_assert_same_frames(const char *a, const char *b, const GstVideoInfo *info, int frames)
{
    size_t na, nb;
    char *x = ct_slurp(a, &na), *y = ct_slurp(b, &nb);
    if (!x || !y)
        fail_msg("%s or %s was not written", a, b);
    size_t fs = GST_VIDEO_INFO_SIZE(info);
    if (na != fs * (size_t)frames || nb != fs * (size_t)frames)
        fail_msg("%s has %zu bytes, %s %zu: expected %d frames of %zu", a, na, b, nb, frames, fs);
    shmbus_frame_hdr h; /* the visible bytes of each row, from the frame format */
    char why[160];
    assert_true(shmbus_format_header(info, &h, why, sizeof why));
    /* YUY2 of an odd width: the luma of the missing last pixel is nobody's */
    bool odd_yuy2 = h.format == SHMBUS_PIXFMT_YUYV422 && h.width % 2;
    for (int k = 0; k < frames; k++)
        for (unsigned p = 0; p < h.nplanes; p++)
            for (uint32_t r = 0; r < shmbus_frame_rows(&h, p); r++) {
                size_t at = fs * (size_t)k + h.plane_offset[p] + (size_t)r * h.stride[p];
                for (uint32_t i = 0; i < shmbus_frame_row_bytes(&h, p); i++)
                    if (x[at + i] != y[at + i] && !(odd_yuy2 && i == h.width * 2))
                        fail_msg("%s and %s differ in frame %d, plane %u, row %u, byte %u", a,
                                 b, k, p, r, i);
            }
    free(x);
    free(y);
}
