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

#include "settings.h"

typedef struct shmbus_conn {
    gint refs;
    shmbus_domain *domain;
    shmbus_pub *pub; /* one of pub, sub */
    shmbus_sub *sub;
    gchar *topic;
} shmbus_conn;

/* Open the domain as participant "gst.<pipeline>.<element>" and a publisher (publish) or a
 * subscriber (history: starting with the frames the publishers hold) on where's topic, read
 * under element's object lock. Returns NULL and posts an error on element's bus if it fails. */
shmbus_conn *shmbus_conn_open(GstElement *element, const shmbus_where *where, gboolean publish,
                              gboolean history);
shmbus_conn *shmbus_conn_ref(shmbus_conn *c);
void shmbus_conn_unref(shmbus_conn *c);

#endif
