/* A connection to a shmbus topic shared by an element and the buffers it hands out: the
 * domain and one publisher or subscriber, with a reference count. The element takes it in
 * start() and drops it in stop(); every buffer whose memory is a block of the topic holds a
 * reference too, so a buffer that outlives its element (downstream keeps it, the pipeline
 * stops) keeps the publisher or subscriber open until it is freed. The last reference
 * closes the publisher or subscriber, then the domain. */
#ifndef GSTSHMBUS_CONN_H
#define GSTSHMBUS_CONN_H

#include <gst/gst.h>
#include <shmbus.h>

typedef struct shmbus_conn {
    gint refs;
    shmbus_domain *domain;
    shmbus_pub *pub; /* one of pub, sub */
    shmbus_sub *sub;
    gchar *topic;
} shmbus_conn;

/* Where an element connects: its properties "topic", "domain" and "config" (property ids
 * SHMBUS_PROP_TOPIC..SHMBUS_PROP_CONFIG; an element's own properties follow). Guarded by the
 * element's object lock. */
typedef struct shmbus_where {
    gchar *topic;  /* default "camera/front" */
    gchar *domain; /* NULL: the config's "domain", else "default" */
    gchar *config; /* the domain's JSON file; NULL: the embedded default */
} shmbus_where;

/* Flags of the elements' settings: changed only while the element is stopped. */
#define SHMBUS_PARAM_RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

enum { SHMBUS_PROP_TOPIC = 1, SHMBUS_PROP_DOMAIN, SHMBUS_PROP_CONFIG, SHMBUS_PROP_OWN };

void shmbus_where_install(GObjectClass *oc, const char *topic_blurb);
void shmbus_where_init(shmbus_where *w);
void shmbus_where_clear(shmbus_where *w);
/* Set or get one of the three (object lock held); FALSE for another property id. */
gboolean shmbus_where_set(shmbus_where *w, guint id, const GValue *v);
gboolean shmbus_where_get(const shmbus_where *w, guint id, GValue *v);

/* Open the domain as participant "gst.<pipeline>.<element>" and a publisher (publish) or a
 * subscriber (history: starting with the frames the publishers hold) on where's topic, read
 * under element's object lock. Returns NULL and posts an error on element's bus if it fails. */
shmbus_conn *shmbus_conn_open(GstElement *element, const shmbus_where *where, gboolean publish,
                              gboolean history);
shmbus_conn *shmbus_conn_ref(shmbus_conn *c);
void shmbus_conn_unref(shmbus_conn *c);

#endif
