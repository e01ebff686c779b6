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

typedef struct shmbus_conn_opts {
    const gchar *domain;      /* NULL: the config's, else "default" */
    const gchar *config_path; /* NULL: the embedded default */
    const gchar *topic;
    gboolean publish;         /* a publisher, else a subscriber */
    gboolean history;         /* subscriber: start with the publishers' held frames */
} shmbus_conn_opts;

/* Open the domain as participant "gst:<pipeline>/<element>" and the publisher or subscriber.
 * Returns NULL and posts an error on element's bus if it fails. */
shmbus_conn *shmbus_conn_open(GstElement *element, const shmbus_conn_opts *o);
shmbus_conn *shmbus_conn_ref(shmbus_conn *c);
void shmbus_conn_unref(shmbus_conn *c);

#endif
