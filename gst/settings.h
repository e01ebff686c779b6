/* The elements' settings (GObject properties), one implementation for shmbussink and
 * shmbussrc: the three that say where to connect ("topic", "domain", "config"), each element's
 * own gboolean and guint settings described by a table of fields, and a read-only "stats".
 * All of them are guarded by the element's object lock. */
#ifndef GSTSHMBUS_SETTINGS_H
#define GSTSHMBUS_SETTINGS_H

#include <gst/gst.h>

/* Where an element connects: its properties "topic", "domain" and "config". */
typedef struct shmbus_where {
    gchar *topic;  /* default "camera/front" */
    gchar *domain; /* NULL: the config's "domain", else "default" */
    gchar *config; /* the domain's JSON file; NULL: the embedded default */
} shmbus_where;

void shmbus_where_clear(shmbus_where *w);

/* One of an element's own settings: a gboolean or guint field of its instance struct. */
typedef struct shmbus_setting {
    const char *name, *nick, *blurb;
    GType type;          /* G_TYPE_BOOLEAN or G_TYPE_UINT */
    gsize offset;        /* of the field in the instance struct */
    guint min, max, def; /* min and max for G_TYPE_UINT only */
} shmbus_setting;

/* An element class's settings: its instance holds a shmbus_where at where_offset; own[] get
 * the property ids after the where-properties, "stats" (stats() of the instance, a new
 * structure) the id after them. */
typedef struct shmbus_settings {
    const char *topic_blurb;
    gsize where_offset;
    const shmbus_setting *own;
    guint n_own;
    const char *stats_blurb;
    GstStructure *(*stats)(GObject *obj);
} shmbus_settings;

/* class_init: install the properties and the class's set_property and get_property (s must
 * outlive the class: a static). */
void shmbus_settings_install(const shmbus_settings *s, GObjectClass *oc);
/* instance init: the defaults. finalize: shmbus_settings_clear. */
void shmbus_settings_init(const shmbus_settings *s, GObject *obj);
void shmbus_settings_clear(const shmbus_settings *s, GObject *obj);

#endif
