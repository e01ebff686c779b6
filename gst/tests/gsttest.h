/* Helpers of the GStreamer plugin tests, on top of the camera tests' fixture
 * (tests/camera/camtest.h: a temporary directory with SHMBUS_RUNTIME_DIR, a domain per test,
 * children killed and the shm directory checked at teardown).
 *
 * Pipelines run two ways: gst-launch-1.0 in a child process (gt_launch), or in the test
 * process (gt_start), where the test can look at buffers, element properties and the pool.
 * Both find the plugin in the build tree (GST_PLUGIN_PATH, set by gt_init). */
#ifndef GSTTEST_H
#define GSTTEST_H

#include <gst/gst.h>
#include <gst/video/video.h>

#include <shmbus.h>
#include <shmbus_frame.h>

#include "camtest.h"

/* In main(): point GStreamer at the build tree's plugin and a registry of this build, init. */
void gt_init(int *argc, char ***argv);

/* Write <test dir>/cfg.json: one pool of `count` blocks of `block` ("1MiB"), and a default
 * topic with that history and max_held (waits 100 ms when the pool is full). */
void gt_config(fixture *f, const char *block, int count, int history, int max_held);

/* "domain=<the test's> config=<test dir>/cfg.json": the properties every element of a test
 * gets (static buffer, one per thread of use). */
const char *gt_props(const fixture *f);
/* <test dir>/cfg.json */
const char *gt_config_path(const fixture *f);

/* Start gst-launch-1.0 -q <pipeline> in a child (stdout/stderr to <tag>.out/.err). */
pid_t gt_launch(fixture *f, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse and set PLAYING a pipeline in this process (fails the test if it cannot). */
GstElement *gt_start(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wait for EOS or an error (at most timeout_ms); returns the message (caller unrefs), NULL on
 * timeout. Other messages are dropped, but the last "*-stats" element message is kept. */
GstMessage *gt_wait_end(GstElement *pipe, int timeout_ms);
/* That last stats message's structure (NULL if none came); valid until the next wait. */
const GstStructure *gt_last_stats(void);
/* Require EOS within timeout_ms; on an error, fail with its text. */
void gt_expect_eos(GstElement *pipe, int timeout_ms);
/* Set NULL and unref. */
void gt_stop(GstElement *pipe);

/* Pull the next sample from appsink `name` (at most timeout_ms); NULL at EOS or timeout. */
GstSample *gt_pull(GstElement *pipe, const char *name, int timeout_ms);

/* A child element's uint64 field of its "stats" structure. */
guint64 gt_stat(GstElement *pipe, const char *element, const char *field);

/* Join the test's domain as a participant of its own (named "gsttest"), which keeps the
 * domain up while the test looks at it. */
shmbus_domain *gt_domain(const fixture *f);
/* Blocks in use in every pool of the domain. */
unsigned gt_pool_used(shmbus_domain *d);
/* Wait (up to timeout_ms) until no block is in use; returns the blocks still in use. */
unsigned gt_wait_pool_empty(shmbus_domain *d, int timeout_ms);

/* Video info of format/width/height at 30 fps. */
void gt_info(GstVideoInfo *info, const char *format, int width, int height);

/* Compare the visible pixels (strides' padding excluded) of two raw files of frames laid out
 * as info says; require exactly `frames` frames in each. */
void gt_assert_same_frames(const char *a, const char *b, const GstVideoInfo *info, int frames);

#endif
