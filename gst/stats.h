/* The counters the elements report: as their read-only "stats" property and as element
 * messages on the bus (structure names "shmbussink-stats" and "shmbussrc-stats").
 *
 * shmbussrc-stats: received, expired, dropped, overflow, invalid (shmbus_sub_stats: every
 *   frame the topic sent that this subscriber lost, by cause), lost (their sum), pushed
 *   (buffers pushed downstream), copied (frames copied because downstream could not take
 *   the block's layout), held (blocks held now, mostly by buffers downstream).
 * shmbussink-stats: published, zero-copy (published in the block upstream rendered into),
 *   copied (copied once into a loaned block first), subscribers (connected now). */
#ifndef GSTSHMBUS_STATS_H
#define GSTSHMBUS_STATS_H

#include <gst/gst.h>
#include <shmbus.h>

typedef struct shmbus_src_counts {
    shmbus_sub_counters sub;
    guint64 pushed, copied;
} shmbus_src_counts;

typedef struct shmbus_sink_counts {
    guint64 published, zero_copy, copied;
    gint subscribers;
} shmbus_sink_counts;

GstStructure *shmbus_stats_src(const shmbus_src_counts *c);
GstStructure *shmbus_stats_sink(const shmbus_sink_counts *c);

/* Losses of a subscriber: expired + dropped + overflow + invalid. */
guint64 shmbus_stats_lost(const shmbus_sub_counters *c);

/* Post s (taken) as an element message of e. */
void shmbus_stats_post(GstElement *e, GstStructure *s);

#endif
