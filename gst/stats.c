/* The elements' counters as GstStructures (stats.h). */
#include "stats.h"

guint64 shmbus_stats_lost(const shmbus_sub_counters *c)
{
    return c->expired + c->dropped + c->overflow + c->invalid;
}

GstStructure *shmbus_stats_src(const shmbus_src_counts *c)
{
    const shmbus_sub_counters *s = &c->sub;
    return gst_structure_new("shmbussrc-stats", "received", G_TYPE_UINT64, s->received,
                             "expired", G_TYPE_UINT64, s->expired, "dropped", G_TYPE_UINT64,
                             s->dropped, "overflow", G_TYPE_UINT64, s->overflow, "invalid",
                             G_TYPE_UINT64, s->invalid, "lost", G_TYPE_UINT64,
                             shmbus_stats_lost(s), "pushed", G_TYPE_UINT64, c->pushed,
                             "copied", G_TYPE_UINT64, c->copied, "held", G_TYPE_UINT64,
                             s->held, NULL);
}

GstStructure *shmbus_stats_sink(const shmbus_sink_counts *c)
{
    return gst_structure_new("shmbussink-stats", "published", G_TYPE_UINT64, c->published,
                             "zero-copy", G_TYPE_UINT64, c->zero_copy, "copied", G_TYPE_UINT64,
                             c->copied, "subscribers", G_TYPE_INT, c->subscribers, NULL);
}

void shmbus_stats_post(GstElement *e, GstStructure *s)
{
    gst_element_post_message(e, gst_message_new_element(GST_OBJECT(e), s));
}
