/* shmbussink's buffer pool: every buffer is a freshly loaned block of the sink's publisher with
 * the frame header already written, so an upstream element that renders into downstream
 * buffers (videotestsrc, videoconvert, ...) writes its pixels straight into shared memory and
 * the sink publishes the block as it is. A published block cannot be reused (subscribers read
 * it), so buffers are never recycled: each acquire loans a new block and a released buffer
 * frees its memory, which releases the block (or the publisher's hold on it). */
#ifndef GSTSHMBUS_POOL_H
#define GSTSHMBUS_POOL_H

#include <gst/video/video.h>

#include "conn.h"

/* A pool loaning from conn's publisher (the pool holds a reference on conn). */
GstBufferPool *shmbus_pool_new(shmbus_conn *conn);

#endif
