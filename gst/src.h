/* shmbussrc: a live source of the camera frames on a shmbus topic (docs/gstreamer.md). */
#ifndef GSTSHMBUS_SRC_H
#define GSTSHMBUS_SRC_H

#include <gst/gst.h>

GType shmbus_src_get_type(void);

#endif
