/* The bridge's configuration file (docs/bridge.md): which shmbus domain to join, which DDS
 * domain, and the routes: topics sent out (local -> DDS) and taken in (DDS -> local), each with
 * its type mapping and QoS. Parsed with cJSON; every mistake is one line
 * "<file>: <json path>: <reason>" (or "<file>:<line>:<col>: syntax error ..."). */
#ifndef BRIDGE_CONFIG_H
#define BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRIDGE_MAX_ROUTES 32
#define BRIDGE_NAME_MAX 64 /* shmbus topic names: up to 63 characters */
#define BRIDGE_DDS_TOPIC_MAX 256

typedef enum bridge_dir { BRIDGE_OUT, BRIDGE_IN } bridge_dir;
/* image: sensor_msgs/msg/Image (camera topics, frames in shmbus_frame.h layout);
 * message: shmbus::msg::dds_::Message_ (any other topic, the payload as bytes). */
typedef enum bridge_type { BRIDGE_TYPE_IMAGE, BRIDGE_TYPE_MESSAGE } bridge_type;

typedef struct bridge_qos {
    bool reliable;            /* else best effort */
    uint32_t depth;           /* keep last N */
    uint32_t max_blocking_ms; /* reliable writer: longest a write may wait for acks */
} bridge_qos;

typedef struct bridge_route {
    bridge_dir dir;
    bridge_type type;
    char topic[BRIDGE_NAME_MAX];          /* the shmbus topic */
    char dds_topic[BRIDGE_DDS_TOPIC_MAX]; /* default "rt/<topic>" */
    char frame_id[128];                   /* image out: header.frame_id */
    bridge_qos qos;
    uint64_t max_sample_size; /* out: larger messages are dropped (counted) */
    bool checksum;            /* image in: set the frame checksum (shmbus_frame_publish) */
} bridge_route;

typedef struct bridge_config {
    char domain[32];         /* shmbus domain; "" : the domain config's */
    char domain_config[512]; /* shmbus domain JSON; "" : the embedded default */
    char name[32];           /* participant name on both sides */
    uint32_t dds_domain_id;
    char cyclone_config[4096];         /* Cyclone XML or file:// URI; "" : $CYCLONEDDS_URI, else the
                                  bridge's built-in default */
    char stats_topic[BRIDGE_NAME_MAX]; /* "" : none */
    char stats_file[512];              /* "" : none */
    uint32_t stats_interval_ms;
    unsigned nroutes;
    bridge_route routes[BRIDGE_MAX_ROUTES];
} bridge_config;

/* Parse the file at path into *out (defaults filled in). Returns 0, or -1 with the one-line
 * reason in err. A path relative to the file's folder is taken for "config" keys. */
int bridge_config_load(const char *path, bridge_config *out, char *err, size_t errlen);
/* The same for a JSON text; src names it in errors. */
int bridge_config_parse(const char *text, const char *src, bridge_config *out, char *err,
                        size_t errlen);

const char *bridge_type_name(bridge_type t);

#endif
