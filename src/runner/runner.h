/*
 * The runner: PID 1 of every sandbox container.  It listens on a unix socket
 * in a root-only directory, runs user code as the sandbox user, and moves
 * files in and out of the workspace.  The proxy reaches it through a relay
 * (`runner relay`) started with a hijacked exec.  libc only, linked static.
 */
#ifndef CIP_RUNNER_H
#define CIP_RUNNER_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "proto.h"

#define RUNNER_DIR	"/run/cip"
#define RUNNER_SOCK	RUNNER_DIR "/runner.sock"
/* The fuzz target of the request handlers points it at a scratch directory. */
#ifndef RUNNER_WORKDIR
#define RUNNER_WORKDIR	"/mnt/data"
#else
extern const char *RUNNER_WORKDIR;
#endif
#define SANDBOX_UID	1000
#define SANDBOX_GID	1000
#define RUNNER_VERSION	"1"

/* rerr.c: why a request failed, for its error reply */
struct rerr {
	char msg[512];
};
/* Say why in e; returns -1, what a failed handler returns. */
int rerr_set(struct rerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* run.c: processes */
/*
 * Request handlers (run.c, fsops.c) fill rep and return 0, or return -1
 * with the reason in e; dispatch (runner.c) alone chooses the reply.
 */
/*
 * The connection a RUN came on, watched while it runs: a CANCEL from the
 * proxy, or the connection's end (nobody is waiting for the result any
 * more), stops the run as a timeout does.
 */
struct run_watch {
	int fd;
	struct proto_decoder *dec;
};
/* Run the request's argv as the sandbox user; fill rep.  sigfd: SIGCHLD. */
int run_command(const struct proto_msg *req, struct proto_msg *rep, struct rerr *e, int sigfd,
    const struct run_watch *w);
/* Reap exited children; if one is `watch`, store its status. */
void reap_children(pid_t watch, int *status, int *reaped);

/* hcache.c: hashes of unchanged files, kept between listings */
struct hash_cache;
struct hash_cache *hash_cache_new(void);
void hash_cache_free(struct hash_cache *hc);
/* A listing starts: what it does not see again is dropped at its end. */
void hash_cache_begin(struct hash_cache *hc);
/* The listing saw every file: forget those it did not. */
void hash_cache_end(struct hash_cache *hc);
void hash_cache_put(struct hash_cache *hc, const char *path, const struct stat *st,
    const char *hex);
/* path's hash if the file is unchanged since it was put (by stat), else NULL. */
const char *hash_cache_get(struct hash_cache *hc, const char *path, const struct stat *st);

/* fsops.c: the workspace, never following a symlink */
int fs_put(const struct proto_msg *req, struct proto_msg *rep, struct rerr *e);
int fs_get(const struct proto_msg *req, struct proto_msg *rep, struct rerr *e);
/* hc: the listing's hash cache (hcache.c), kept from one listing to the next. */
int fs_list(const struct proto_msg *req, struct proto_msg *rep, struct hash_cache *hc,
    struct rerr *e);

/* pyserver.c: the pre-loaded Python server (docker/sandbox/pyserver) */
struct pyserver;
/* From CIP_PYTHON_PRELOAD; "off" when it names nothing.  NULL if out of memory. */
struct pyserver *pyserver_new(void);
void pyserver_free(struct pyserver *ps);
/* Start it if it should run and does not (a back-off after early deaths); never waits. */
void pyserver_tend(struct pyserver *ps);
/* Its status pipe, to poll for reading; -1 when it is not running. */
int pyserver_fd(const struct pyserver *ps);
/* The status pipe is readable: take its lines, or see it ended. */
void pyserver_readable(struct pyserver *ps);
/* How long until it should be started again (a poll timeout); -1: not waiting to. */
int pyserver_wait_ms(const struct pyserver *ps);
/* "off", "warming", "ready", "restarting" or "stopped". */
const char *pyserver_state(const struct pyserver *ps);

/* relay.c */
int relay_main(void);

#endif
