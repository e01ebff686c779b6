/* Which delivery path a test run exercises (docs/config.md, "delivery"). ctest registers the
 * pub/sub, isolation, fault and camera pipeline tests twice (shmbus_add_test BOTH_DELIVERIES,
 * cmake/testing.cmake): NAME as the configs are written (nng), NAME_shm with
 * SHMBUS_TEST_DELIVERY=shm. The helpers that load a config file (ps_use_config, ct_spawn) pass
 * it through delivery_config(), so the same test runs on either path, unchanged. */
#ifndef SHMBUS_TEST_DELIVERY_H
#define SHMBUS_TEST_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

/* $SHMBUS_TEST_DELIVERY ("nng" or "shm"), or NULL when it is unset or empty. */
const char *delivery_wanted(void);
/* Whether this run is on the shm delivery path (for the tests about nng itself: they skip). */
bool delivery_is_shm(void);

/* The config file to use for src: src itself when no delivery is wanted; else a copy of src
 * written into dir (as "delivery-<name of src>") with "delivery" set to the wanted path on every
 * topic of "topics" and on "default_topic" if there is one. The path goes into out. 0, or -1
 * with the reason on stderr (unreadable or malformed src, no room in out, cannot write). */
int delivery_config(const char *src, const char *dir, char *out, size_t len);

#endif
