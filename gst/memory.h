/* GstMemory over a shmbus block: the pixels of a frame in shared memory, handed to GStreamer
 * without a copy. The memory holds one message handle and a reference on the connection; the
 * block goes back to its pool (or to the other holders) when the memory is freed.
 *
 *   block:   [ frame header | pad | pixels ........................ ]
 *   memory:                        ^ offset = payload_offset, size = the pixels
 *
 * A received block is read-only. A loaned block (shmbussink's buffer pool) is writable until
 * it is published; the memory then keeps a clone of the handle so the pixels stay valid for
 * as long as GStreamer references the buffer. */
#ifndef GSTSHMBUS_MEMORY_H
#define GSTSHMBUS_MEMORY_H

#include <gst/gst.h>
#include <shmbus.h>
#include <shmbus_frame.h>

#include "conn.h"

#define SHMBUS_MEMORY_TYPE "ShmbusMemory"

typedef struct shmbus_memory {
    GstMemory mem;
    shmbus_conn *conn;
    shmbus_msg *msg;  /* one handle on the block */
    gboolean loaned;  /* loaned by conn's publisher and not published yet */
} shmbus_memory;

/* Wrap message m (the caller's handle passes to the memory) as [offset, offset + size) of the
 * block; read-only unless loaned. */
GstMemory *shmbus_memory_wrap(shmbus_conn *conn, shmbus_msg *m, gsize offset, gsize size,
                              gboolean loaned);

/* The memory if buf consists of exactly one shmbus memory, else NULL. */
shmbus_memory *shmbus_memory_of(GstBuffer *buf);

/* The frame header at the start of the memory's block. */
static inline shmbus_frame_hdr *shmbus_memory_header(shmbus_memory *m)
{
    return (shmbus_frame_hdr *)shmbus_msg_data(m->msg);
}

/* Publish a loaned memory's block on its connection's publisher; the memory keeps a handle
 * and becomes read-only. 0 or a negative SHMBUS_E* code. */
int shmbus_memory_publish(shmbus_memory *m, gboolean checksum);


#endif
