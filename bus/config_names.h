/* Names and their limits: the one validator of every name a caller gives shmbus (domains,
 * pools, topics, named nodes, participants), used by configuration files and by every entry
 * point of the API. The rules are documented in docs/config.md ("Names"); the public
 * constants in api/shmbus.h equal the limits here. */
#ifndef BUS_CONFIG_NAMES_H
#define BUS_CONFIG_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define BUS_NAME_MAX 31        /* domain, pool and participant names */
#define BUS_TOPIC_NAME_MAX 63
#define BUS_NODE_NAME_MAX 47

enum bus_name_kind {
    BUS_NAME_DOMAIN,      /* 1..31 of A-Z a-z 0-9 _ - (a file-name part: no '.') */
    BUS_NAME_POOL,        /* 1..31 of A-Z a-z 0-9 . _ -, not starting with '.' */
    BUS_NAME_TOPIC,       /* 1..63 of A-Z a-z 0-9 . _ - /, '/'-separated parts, each
                             non-empty and not starting with '.' */
    BUS_NAME_NODE,        /* as a topic, 1..47 */
    BUS_NAME_PARTICIPANT, /* 1..31 of A-Z a-z 0-9 . _ - + */
};

/* Is s (may be NULL) a valid name of this kind? If not and why != NULL, writes the reason:
 * "topic name \"a b\": character ' ' at offset 1 is not allowed (the rule)". */
bool bus_name_valid(enum bus_name_kind kind, const char *s, char *why, size_t len);

/* s quoted for a message: "..." with '"', '\\' and bytes outside printable ASCII escaped,
 * cut after 40 characters ("..."). buf of at least 200 bytes. */
const char *bus_name_quote(char *buf, size_t len, const char *s);

#endif
