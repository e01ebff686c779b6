/* gstshmbus: the plugin's entry point (docs/gstreamer.md). */
#include <gst/gst.h>

#include "sink.h"
#include "src.h"

GST_DEBUG_CATEGORY(shmbus_gst_debug);

static gboolean plugin_init(GstPlugin *plugin)
{
    GST_DEBUG_CATEGORY_INIT(shmbus_gst_debug, "shmbus", 0, "shmbus elements");
    return gst_element_register(plugin, "shmbussink", GST_RANK_NONE, shmbus_sink_get_type()) &&
           gst_element_register(plugin, "shmbussrc", GST_RANK_NONE, shmbus_src_get_type());
}

#define PACKAGE "shmbus"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, shmbus,
                  "Zero-copy video over shmbus: shmbussink publishes frames, shmbussrc receives "
                  "them", plugin_init, "0.1.0", "unknown", "shmbus", "shmbus")
