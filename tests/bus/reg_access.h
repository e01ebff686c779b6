/* For tests that forge or corrupt registry entries as another process of the domain could:
 * a read-write mapping of a domain's registry segment, and a wait for the reaper. */
#ifndef REG_ACCESS_H
#define REG_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "registry.h"

typedef struct reg_map {
    void *base;
    size_t len;
    struct reg_hdr *r; /* NULL if the segment could not be mapped (errno says why) */
} reg_map;

/* Map shmbus.<dom>.reg of the shm directory read-write (as the caller's access permits). */
reg_map reg_map_open(const char *dom);
void reg_map_close(reg_map *m);
/* Map shmbus.<dom>.rings (shm delivery's rings) read-write; *rings NULL if it is not there. */
reg_map reg_rings_open(const char *dom, struct reg_rings **rings);

/* Wait (a hang guard of timeout_ms, not a timing check) until the publisher entries
 * idx[0..n) are free: true if they all are. */
bool reg_wait_pubs_free(const struct reg_hdr *r, const unsigned *idx, unsigned n,
                        int timeout_ms);

/* A participant uid that no process of a test's domain has: its entries are a dead owner's. */
#define REG_DEAD_UID 0x3fffffffffull

#endif
