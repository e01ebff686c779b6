/* The DDS side of the bridge: the Cyclone domain and participant, and each route's topic,
 * writer or reader with its QoS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "ros2_image.h"
#include "shmbus_message.h"

/* Large frames over UDP: 64 KB datagrams (fewer fragments per frame); the largest socket
 * receive buffer the kernel gives (net.core.rmem_max caps it: `shmbus doctor` checks it), as
 * a best-effort reader loses any frame larger than its socket buffer; and room for 64 MB of
 * unacknowledged data per writer (Cyclone's default of 500 kB makes a reliable writer wait
 * for acknowledgements several times per frame). Multicast and interfaces are left at
 * Cyclone's defaults. */
static const char default_config[] =
    "<CycloneDDS><Domain id=\"any\">"
    "<General><MaxMessageSize>65500B</MaxMessageSize>"
    "<FragmentSize>62000B</FragmentSize></General>"
    "<Internal><SocketReceiveBufferSize min=\"default\" max=\"64MiB\"/>"
    "<SocketSendBufferSize min=\"default\" max=\"8MiB\"/>"
    "<Watermarks><WhcHigh>64MB</WhcHigh><WhcHighInit>64MB</WhcHighInit></Watermarks></Internal>"
    "</Domain></CycloneDDS>";

int dds_session_open(bridge *b, char *err, size_t errlen)
{
    const char *xml = b->cfg.cyclone_config;
    if (!xml[0] && !getenv("CYCLONEDDS_URI")) xml = default_config;
    if (xml[0]) {
        b->domain = dds_create_domain(b->cfg.dds_domain_id, xml);
        if (b->domain < 0) {
            snprintf(err, errlen, "DDS domain %u: the Cyclone configuration was refused (%s)",
                     b->cfg.dds_domain_id, dds_strretcode(b->domain));
            return -1;
        }
    }
    dds_qos_t *q = dds_create_qos();
    dds_qset_entity_name(q, b->cfg.name);
    b->participant = dds_create_participant(b->cfg.dds_domain_id, q, NULL);
    dds_delete_qos(q);
    if (b->participant < 0) {
        snprintf(err, errlen, "DDS domain %u: cannot create the participant (%s)",
                 b->cfg.dds_domain_id, dds_strretcode(b->participant));
        return -1;
    }
    b->stop_guard = dds_create_guardcondition(b->participant);
    if (b->stop_guard < 0) {
        snprintf(err, errlen, "DDS: cannot create a guard condition (%s)",
                 dds_strretcode(b->stop_guard));
        return -1;
    }
    return 0;
}

static dds_qos_t *route_qos(const route *r)
{
    const bridge_qos *s = &r->cfg->qos;
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, s->reliable ? DDS_RELIABILITY_RELIABLE : DDS_RELIABILITY_BEST_EFFORT,
                         DDS_MSECS(s->max_blocking_ms));
    if (s->reliable) {
        /* Reliable keeps every sample until it is acknowledged (writer) or taken (reader; at
         * most depth, then the remote writer resends). A writer with more unacknowledged
         * bytes than Cyclone's WhcHigh waits (up to max_blocking_ms) and fails: the bridge
         * counts the frame as busy, instead of Cyclone replacing it unseen (keep-last). */
        dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
        dds_qset_resource_limits(q, (int32_t)s->depth, DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED);
    } else {
        dds_qset_history(q, DDS_HISTORY_KEEP_LAST, (int32_t)s->depth);
    }
    dds_qset_durability(q, DDS_DURABILITY_VOLATILE);
    /* No loops: this participant's readers never see its own writers' samples. */
    dds_qset_ignorelocal(q, DDS_IGNORELOCAL_PARTICIPANT);
    dds_qset_entity_name(q, r->b->cfg.name);
    return q;
}

int dds_session_route(bridge *b, route *r, char *err, size_t errlen)
{
    const dds_topic_descriptor_t *desc = r->cfg->type == BRIDGE_TYPE_IMAGE
                                             ? &sensor_msgs_msg_dds__Image__desc
                                             : &shmbus_msg_dds__Message__desc;
    r->topic = dds_create_topic(b->participant, desc, r->cfg->dds_topic, NULL, NULL);
    if (r->topic < 0) {
        snprintf(err, errlen, "DDS topic \"%s\" (%s): %s", r->cfg->dds_topic, desc->m_typename,
                 dds_strretcode(r->topic));
        return -1;
    }
    dds_qos_t *q = route_qos(r);
    dds_entity_t e;
    if (r->cfg->dir == BRIDGE_OUT) {
        e = r->writer = dds_create_writer(b->participant, r->topic, q, NULL);
    } else {
        e = r->reader = dds_create_reader(b->participant, r->topic, q, NULL);
        if (e >= 0) {
            r->waitset = dds_create_waitset(b->participant);
            dds_entity_t rc = dds_create_readcondition(r->reader, DDS_ANY_STATE);
            if (r->waitset < 0 || rc < 0 || dds_waitset_attach(r->waitset, rc, 0) < 0 ||
                dds_waitset_attach(r->waitset, b->stop_guard, 1) < 0)
                e = r->waitset < 0 ? r->waitset : rc < 0 ? rc : DDS_RETCODE_ERROR;
        }
    }
    dds_delete_qos(q);
    if (e < 0) {
        snprintf(err, errlen, "DDS %s on \"%s\": %s",
                 r->cfg->dir == BRIDGE_OUT ? "writer" : "reader", r->cfg->dds_topic,
                 dds_strretcode(e));
        return -1;
    }
    return 0;
}

uint32_t dds_session_matched(const route *r)
{
    if (r->writer > 0) {
        dds_publication_matched_status_t st;
        return dds_get_publication_matched_status(r->writer, &st) == 0 ? st.current_count : 0;
    }
    if (r->reader > 0) {
        dds_subscription_matched_status_t st;
        return dds_get_subscription_matched_status(r->reader, &st) == 0 ? st.current_count : 0;
    }
    return 0;
}

void dds_session_close(bridge *b)
{
    /* Deleting the domain (or the participant) deletes every entity in it. */
    if (b->participant > 0) dds_delete(b->participant);
    if (b->domain > 0) dds_delete(b->domain);
    b->participant = b->domain = 0;
}
