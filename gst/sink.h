/* shmbussink: publishes raw video on a shmbus topic as camera frames (docs/gstreamer.md). */
#ifndef GSTSHMBUS_SINK_H
#define GSTSHMBUS_SINK_H

#include <gst/gst.h>

GType shmbus_sink_get_type(void);

#endif
