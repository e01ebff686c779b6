/* shmbus status codes: the one list every layer returns.
 *
 * Public: shmbus.h includes this file, so the codes are part of the supported API. Every
 * layer (shmpool, bus) returns these codes and includes this plain header from the public
 * include folder. 0 is success; every error is a negative SHMBUS_E* value.
 * Never renumber a code: tools print the numbers and users match on them.
 */
#ifndef SHMBUS_ERRORS_H
#define SHMBUS_ERRORS_H

/* X(name, value, sentence), once per code */
#define SHMBUS_ERRORS(X)                                                                   \
    X(SHMBUS_OK, 0, "success")                                                             \
    X(SHMBUS_EINVAL, -1, "invalid argument")                                               \
    X(SHMBUS_ENOMEM, -2, "out of memory")                                                  \
    X(SHMBUS_EACCES, -3, "permission denied")                                              \
    X(SHMBUS_ENOSPC, -4, "no space left in shared memory (/dev/shm too small?)")           \
    X(SHMBUS_EEXIST, -5, "already exists")                                                 \
    X(SHMBUS_ENOENT, -6, "no such domain, pool, topic or node")                            \
    X(SHMBUS_EBADSEG, -7, "shared segment has wrong magic, layout version or size")        \
    X(SHMBUS_EINCOMPAT, -8, "existing object was created with an incompatible definition") \
    X(SHMBUS_EFULL, -9, "pool exhausted: no free block of that size")                      \
    X(SHMBUS_ETIMEDOUT, -10, "timed out")                                                  \
    X(SHMBUS_EEXPIRED, -11, "message expired: its block was released and reused")          \
    X(SHMBUS_EBADDESC, -12, "malformed or forged descriptor")                              \
    X(SHMBUS_ETOOBIG, -13, "message larger than the largest block")                        \
    X(SHMBUS_ELIMIT, -14, "participant, pool or node table is full")                       \
    X(SHMBUS_EBUSY, -15, "object still has live loans or handles")                        \
    X(SHMBUS_EFORKED, -16, "used in a forked child: open the domain again after fork()")   \
    X(SHMBUS_EOWNERDEAD, -17, "lock acquired, but its previous holder died holding it")    \
    X(SHMBUS_ESYS, -18, "operating system error (see errno)")                              \
    X(SHMBUS_ECONFIG, -19, "invalid configuration")                                        \
    X(SHMBUS_ETRANSPORT, -20, "transport (nng) error")                                     \
    X(SHMBUS_ECLOSED, -21, "object is closed")                                             \
    X(SHMBUS_EAGAIN, -22, "nothing available right now")                                   \
    X(SHMBUS_EINTR, -23, "interrupted")

enum shmbus_status {
#define SHMBUS_X_ENUM(name, value, msg) name = value,
    SHMBUS_ERRORS(SHMBUS_X_ENUM)
#undef SHMBUS_X_ENUM
};

/* The sentence and the name of a code: shmbus_strerror() and shmbus_errname() (shmbus.h). */

#endif
