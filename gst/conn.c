/* The shared, counted connection to a topic (conn.h). */
#include "conn.h"

#include <string.h>

GST_DEBUG_CATEGORY_EXTERN(shmbus_gst_debug);
#define GST_CAT_DEFAULT shmbus_gst_debug

/* "gst.<pipeline>.<element>": how shmbus-monitor lists the element. A participant name is
 * 1..31 of A-Z a-z 0-9 . _ - + (shmbus.h, "names"): other characters become '_', and a longer
 * name is cut. */
static gchar *participant_name(GstElement *element)
{
    GstObject *top = GST_OBJECT(element);
    GstObject *parent;
    while ((parent = GST_OBJECT_PARENT(top)) != NULL)
        top = parent;
    gchar *el = gst_object_get_name(GST_OBJECT(element));
    gchar *pl = top == GST_OBJECT(element) ? g_strdup("-") : gst_object_get_name(top);
    gchar *name = g_strdup_printf("gst.%s.%s", pl, el);
    g_free(el);
    g_free(pl);
    for (gchar *c = name; *c; c++)
        if (!g_ascii_isalnum(*c) && !strchr("._-+", *c))
            *c = '_';
    if (strlen(name) > SHMBUS_PARTICIPANT_NAME_MAX)
        name[SHMBUS_PARTICIPANT_NAME_MAX] = '\0';
    return name;
}

static void conn_close(shmbus_conn *c)
{
    GST_DEBUG("closing topic %s", c->topic);
    int rc = 0;
    if (c->pub)
        rc = shmbus_pub_close(c->pub);
    if (c->sub)
        rc = shmbus_sub_close(c->sub);
    if (rc == 0 && c->domain)
        rc = shmbus_domain_close(c->domain);
    if (rc)
        GST_WARNING("closing topic %s: %s (%s); the process keeps it until it exits",
                    c->topic, shmbus_strerror(rc), shmbus_last_error());
    g_free(c->topic);
    g_free(c);
}

static shmbus_conn *conn_open(GstElement *element, const shmbus_where *o, gboolean publish,
                              gboolean history)
{
    if (!o->topic || !*o->topic) {
        GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("No topic set"),
                          ("set the element's topic property, e.g. topic=camera/front"));
        return NULL;
    }
    shmbus_conn *c = g_new0(shmbus_conn, 1);
    c->refs = 1;
    c->topic = g_strdup(o->topic);
    gchar *name = participant_name(element);
    shmbus_domain_opts dopts;
    shmbus_domain_opts_init(&dopts);
    dopts.config_path = o->config;
    dopts.name = name;
    const char *what = "opening the domain";
    int rc = shmbus_domain_open(o->domain, &dopts, &c->domain);
    if (rc == 0 && publish) {
        what = "opening a publisher";
        rc = shmbus_pub_open(c->domain, o->topic, &c->pub);
    } else if (rc == 0) {
        what = "opening a subscriber";
        shmbus_sub_opts sopts = {.history = history != FALSE};
        rc = shmbus_sub_open(c->domain, o->topic, &sopts, &c->sub);
    }
    if (rc) {
        GST_ELEMENT_ERROR(element, RESOURCE, OPEN_READ_WRITE,
                          ("shmbus: %s on topic %s failed: %s", what, o->topic,
                           shmbus_strerror(rc)),
                          ("%s: %s", shmbus_errname(rc), shmbus_last_error()));
        conn_close(c); /* closes the domain if it was opened */
        c = NULL;
    } else {
        GST_INFO_OBJECT(element, "joined domain %s as %s, %s topic %s",
                        shmbus_domain_name(c->domain), name,
                        publish ? "publishing on" : "subscribed to", o->topic);
    }
    g_free(name);
    return c;
}

shmbus_conn *shmbus_conn_open(GstElement *element, const shmbus_where *where, gboolean publish,
                              gboolean history)
{
    GST_OBJECT_LOCK(element);
    shmbus_where w = {g_strdup(where->topic), g_strdup(where->domain), g_strdup(where->config)};
    GST_OBJECT_UNLOCK(element);
    shmbus_conn *c = conn_open(element, &w, publish, history);
    shmbus_where_clear(&w);
    return c;
}

shmbus_conn *shmbus_conn_ref(shmbus_conn *c)
{
    g_atomic_int_inc(&c->refs);
    return c;
}

void shmbus_conn_unref(shmbus_conn *c)
{
    if (c && g_atomic_int_dec_and_test(&c->refs))
        conn_close(c);
}
