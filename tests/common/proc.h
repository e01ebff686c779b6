/* The test programs' child processes, the pipes they talk through and the clock they wait
 * with. No shmbus dependency: testutil.h (the pool's tests) and pubsub_common.h (the bus's
 * tests, public API only) both build on it.
 *
 * Children: proc_fork() returns 0 in the child, which dies with its parent, has default
 * handlers for crash signals (cmocka's must not run in a child), must leave with _exit() and
 * reports a failure only through its exit status (PROC_FAIL) and a line on stderr. The parent
 * collects it with proc_wait(), which never hangs: a child still running at the deadline is
 * killed. proc_kill_children() (from a teardown) kills whatever a failed test left.
 */
#ifndef SHMBUS_TEST_PROC_H
#define SHMBUS_TEST_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The exit status of a child whose check failed. */
#define PROC_FAIL 10

/* fork() that records the child; asserts (cmocka) in the parent if fork fails. */
pid_t proc_fork(void);
/* Wait for a child: its exit code, 128 + signal if a signal ended it, or -1 if it was still
 * running after timeout_ms (it is then killed and reaped). */
int proc_wait(pid_t pid, int timeout_ms);
/* Like proc_wait but asserts the child exited 0, naming what is being waited for. */
void proc_expect_ok(pid_t pid, int timeout_ms, const char *what);
/* SIGSTOP a child and wait until it has stopped, every thread of it (kill() returns before
 * they do; waitpid WUNTRACED reports the finished group stop). Fails the test if it has not
 * stopped within timeout_ms. */
void proc_stop(pid_t pid, int timeout_ms);
/* SIGKILL and reap every recorded child still running. */
void proc_kill_children(void);
/* Forget a child reaped by other means. */
void proc_forget(pid_t pid);

/* pipe(), asserting success. */
void proc_pipe(int fds[2]);
/* 0 on success, -1 on error or EOF. proc_read_all waits at most timeout_ms in total. */
int proc_write_all(int fd, const void *buf, size_t len);
int proc_read_all(int fd, void *buf, size_t len, int timeout_ms);
/* One byte tokens, for "ready"/"go" handshakes: send one (0 or -1); wait for `expect` (0, or
 * -1 on timeout, EOF or another token). */
int proc_tell(int fd, char c);
int proc_hear(int fd, char expect, int timeout_ms);

/* CLOCK_MONOTONIC in ns. */
uint64_t proc_now_ns(void);
void proc_sleep_ms(unsigned ms);

#endif
