/* The elements' settings (settings.h). */
#include "settings.h"

/* Flags of the elements' settings: changed only while the element is stopped. */
#define SETTING_RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

enum { PROP_TOPIC = 1, PROP_DOMAIN, PROP_CONFIG, PROP_OWN };

static shmbus_where *where_of(const shmbus_settings *s, GObject *obj)
{
    return G_STRUCT_MEMBER_P(obj, s->where_offset);
}

static gchar **where_field(shmbus_where *w, guint id)
{
    return id == PROP_TOPIC    ? &w->topic
           : id == PROP_DOMAIN ? &w->domain
           : id == PROP_CONFIG ? &w->config
                               : NULL;
}

/* The own setting with property id `id`, or NULL. */
static const shmbus_setting *own_of(const shmbus_settings *s, guint id)
{
    return id >= PROP_OWN && id - PROP_OWN < s->n_own ? &s->own[id - PROP_OWN] : NULL;
}

static guint stats_id(const shmbus_settings *s) { return PROP_OWN + s->n_own; }

/* The settings of the class that installed property ps (kept with its type). */
static GQuark settings_quark(void) { return g_quark_from_static_string("shmbus-settings"); }

static const shmbus_settings *settings_of(GParamSpec *ps)
{
    return g_type_get_qdata(ps->owner_type, settings_quark());
}


void shmbus_settings_init(const shmbus_settings *s, GObject *obj)
{
    shmbus_where *w = where_of(s, obj);
    w->topic = g_strdup("camera/front");
    w->domain = w->config = NULL;
    for (guint i = 0; i < s->n_own; i++) {
        const shmbus_setting *o = &s->own[i];
        if (o->type == G_TYPE_BOOLEAN)
            G_STRUCT_MEMBER(gboolean, obj, o->offset) = o->def != 0;
        else
            G_STRUCT_MEMBER(guint, obj, o->offset) = o->def;
    }
}

void shmbus_where_clear(shmbus_where *w)
{
    g_clear_pointer(&w->topic, g_free);
    g_clear_pointer(&w->domain, g_free);
    g_clear_pointer(&w->config, g_free);
}

void shmbus_settings_clear(const shmbus_settings *s, GObject *obj)
{
    shmbus_where_clear(where_of(s, obj));
}

static void set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
    const shmbus_settings *s = settings_of(ps);
    const shmbus_setting *o = own_of(s, id);
    GST_OBJECT_LOCK(obj);
    gchar **f = where_field(where_of(s, obj), id);
    if (f) {
        g_free(*f);
        *f = g_value_dup_string(v);
    } else if (o && o->type == G_TYPE_BOOLEAN) {
        G_STRUCT_MEMBER(gboolean, obj, o->offset) = g_value_get_boolean(v);
    } else if (o) {
        G_STRUCT_MEMBER(guint, obj, o->offset) = g_value_get_uint(v);
    } else {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    }
    GST_OBJECT_UNLOCK(obj);
}

static void get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
    const shmbus_settings *s = settings_of(ps);
    if (id == stats_id(s)) {
        g_value_take_boxed(v, s->stats(obj)); /* takes the object lock itself */
        return;
    }
    const shmbus_setting *o = own_of(s, id);
    GST_OBJECT_LOCK(obj);
    gchar **f = where_field(where_of(s, obj), id);
    if (f)
        g_value_set_string(v, *f);
    else if (o && o->type == G_TYPE_BOOLEAN)
        g_value_set_boolean(v, G_STRUCT_MEMBER(gboolean, obj, o->offset));
    else if (o)
        g_value_set_uint(v, G_STRUCT_MEMBER(guint, obj, o->offset));
    else
        G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
    GST_OBJECT_UNLOCK(obj);
}

void shmbus_settings_install(const shmbus_settings *s, GObjectClass *oc)
{
    g_type_set_qdata(G_OBJECT_CLASS_TYPE(oc), settings_quark(), (gpointer)s);
    oc->set_property = set_property;
    oc->get_property = get_property;
    g_object_class_install_property(oc, PROP_TOPIC, g_param_spec_string("topic", "Topic",
        s->topic_blurb, "camera/front", SETTING_RW));
    g_object_class_install_property(oc, PROP_DOMAIN, g_param_spec_string("domain",
        "Domain", "shmbus domain (NULL: the config's \"domain\", else \"default\")", NULL,
        SETTING_RW));
    g_object_class_install_property(oc, PROP_CONFIG, g_param_spec_string("config",
        "Config", "the domain's JSON configuration file (NULL: the embedded default)", NULL,
        SETTING_RW));
    for (guint i = 0; i < s->n_own; i++) {
        const shmbus_setting *o = &s->own[i];
        GParamSpec *ps = o->type == G_TYPE_BOOLEAN
                             ? g_param_spec_boolean(o->name, o->nick, o->blurb, o->def != 0,
                                                    SETTING_RW)
                             : g_param_spec_uint(o->name, o->nick, o->blurb, o->min, o->max,
                                                 o->def, SETTING_RW);
        g_object_class_install_property(oc, PROP_OWN + i, ps);
    }
    g_object_class_install_property(oc, stats_id(s), g_param_spec_boxed("stats", "Statistics",
        s->stats_blurb, GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}
