/* Helpers shared by test_isolation.c and test_faults_resources.c, on top of pubsub_common.h:
 * the fixture that gives each test its own domain "iso<pid>x<n>", what is left of a domain in
 * the shm directory, tests that need root, and the children's side of the handshakes. */
#ifndef ISO_COMMON_H
#define ISO_COMMON_H

#include "pubsub_common.h"

#define CHILD_SKIP 77 /* a child's status: this environment cannot run the test */
#define WAIT_MS ps_patience(2000) /* a connection that should form at once: fail after this */

/* ---- fixture ----------------------------------------------------------------------------- */

/* The number of the last domain iso_setup() named (the next one is this + 1). */
extern unsigned iso_last_domain;
/* ps_setup, with domain names "iso<pid>x<n>" (clearing what a crashed earlier run left). */
int iso_setup(void **state);
#define ISO_TEST(f) cmocka_unit_test_setup_teardown(f, iso_setup, ps_teardown)

/* $SHMBUS_SHM_DIR, or /dev/shm. */
const char *shm_dir(void);
/* Entries of dir whose names start with prefix ("" : all), listed into names (may be NULL);
 * how many, or -1 if dir cannot be read. */
int entries(const char *dir, const char *prefix, char *names, size_t len);
/* The same for names that also end with suffix ("" : any). */
int entries_matching(const char *dir, const char *prefix, const char *suffix, char *names,
                     size_t len);
/* shmbus.<dom>.* in the shm directory, listed into names (may be NULL): how many. */
int leftovers(const char *dom, char *names, size_t len);
void remove_leftovers(const char *dom);
/* The test's runtime directory, <tmpdir>/shmbus.<dom>. */
void rundir_of(const ps_env *e, char *buf, size_t len);

/* Append a clause to a "; "-separated list of problems. */
void note(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Skip the test, saying why, unless it runs as root. */
void require_root(const char *why);

/* The groups of tests with other uids: the group of pubsub/iso_group.json, a uid in it, and a
 * uid (and group) outside it. Numeric ids need no entry in /etc/passwd or /etc/group. */
#define ISO_GROUP 4243
#define ISO_MEMBER 4242
#define ISO_STRANGER 4244
/* In a child: become uid/gid with exactly the supplementary groups given (_exit(CHILD_SKIP)
 * if the sandbox refuses), and set the parent-death signal again (changing credentials
 * clears it). */
void iso_become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);

/* ---- children ---------------------------------------------------------------------------- */

/* Wait for a child that may say CHILD_SKIP (then skip the test, giving the reason); its
 * status. */
int iso_wait_or_skip(pid_t pid, const char *skip_reason);
/* In a child: a tmpfs with these mount options on dir, in a mount namespace of the child's
 * own (_exit(CHILD_SKIP) if the sandbox refuses). */
void iso_mount_private_tmpfs(const char *dir, const char *options);
/* Open the test's domain with this config file, runtime and shm directories (NULL: the
 * defaults); *out is NULL on failure. */
int iso_open_with(const ps_env *e, const char *config, const char *runtime_dir,
                  const char *shmdir, shmbus_domain **out);

/* A child's body: its channel and the test's argument; returns its exit status. */
typedef int (*iso_child_fn)(const ps_env *e, ps_chan *c, void *arg);
/* Make a channel for each of n children and fork them: child i keeps only its ends of ch[i]
 * and leaves with _exit(run[i](e, &ch[i], arg)); then the test process takes its ends. */
void iso_fork_children(const ps_env *e, ps_chan *ch, pid_t *pid, unsigned n,
                       const iso_child_fn *run, void *arg);
/* In a child: hear a token from the test process / tell it one (fails the child otherwise). */
void child_hear(ps_chan *c, char token);
void child_tell(ps_chan *c, char token);

#endif
