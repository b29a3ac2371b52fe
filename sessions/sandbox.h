/*
 * Sandbox containers: made ready to use (created with the hardened spec and
 * our labels, started, its runner channel open), attached to again,
 * inspected and removed.  Sessions make them on demand and the warm pool
 * ahead of time.  The operations sit behind a table of function pointers
 * (as valkey's ConnectionType does): sandboxes_docker_init gives the Engine
 * client's, and the unit tests give a fake one, so slots, exec and the
 * sweeper can be driven without an engine.  The Engine implementation
 * here (containers, and the relay exec under each channel) and reconcile.c
 * (startup) are the only code in sessions/ that calls docker_*.
 */
#ifndef CIP_SANDBOX_H
#define CIP_SANDBOX_H

#include "cfg.h"
#include "channel.h"
#include "docker.h"

/* A session's container carries its id in this label ... */
#define SANDBOX_SESSION_LABEL "cip.session"
/* ... and a pooled one this label (=1) instead. */
#define SANDBOX_POOL_LABEL "cip.pool"

struct sandbox {
	char id[DOCKER_ID_MAX];
	struct channel *ch;
};

/*
 * What a source of sandboxes does.  Each returns DOCKER_OK or a DOCKER_*
 * code with err filled; ctx is the source's own state.
 */
struct sandbox_ops {
	/*
	 * Make a sandbox for session (NULL: for the pool), its channel open;
	 * *at_runner is set when it started but its runner never answered.
	 * Nothing is left behind on failure.
	 */
	int (*make)(void *ctx, const char *session, struct sandbox *out, int *at_runner,
	    struct docker_err *err);
	/* A new channel to the runner of running sandbox id (its runner may be starting). */
	int (*attach)(void *ctx, const char *id, struct channel **ch, struct docker_err *err);
	/* DOCKER_OK with *running set, or DOCKER_ENOTFOUND if sandbox id is gone. */
	int (*running)(void *ctx, const char *id, int *running, struct docker_err *err);
	/* Remove sandbox id, running or not, with its anonymous volumes. */
	int (*remove)(void *ctx, const char *id, struct docker_err *err);
	/* DOCKER_OK if the engine answers. */
	int (*ping)(void *ctx, struct docker_err *err);
	/* Engine calls that have failed since the start. */
	unsigned long long (*errors)(void *ctx);
	/*
	 * Optional: 1 if sandbox id ended because the host's OOM killer stopped
	 * it whole (gVisor: the Sentry holds all of the sandbox's memory).
	 */
	int (*oom_killed)(void *ctx, const char *id);
};

/* A source of sandboxes: its operations and their state (borrowed). */
struct sandboxes {
	const struct sandbox_ops *ops;
	void *ctx;
};

/*
 * A channel to the runner of running container id on dk: a hijacked exec
 * of the relay, then hello.  The runner may still be starting: the open is
 * retried for up to wait_ms.
 */
int sandbox_docker_channel(struct docker *dk, const char *id, int wait_ms,
    struct channel **out, struct docker_err *err);
/* The Engine's sandboxes: containers per c on dk (both borrowed).  0 or -ENOMEM. */
int sandboxes_docker_init(struct sandboxes *sbx, const struct cfg *c, struct docker *dk);
void sandboxes_docker_fini(struct sandboxes *sbx);

/* The operations, called through sbx's table. */
int sandbox_make(const struct sandboxes *sbx, const char *session, struct sandbox *out,
    int *at_runner, struct docker_err *err);
int sandbox_attach(const struct sandboxes *sbx, const char *id, struct channel **ch,
    struct docker_err *err);
int sandbox_running(const struct sandboxes *sbx, const char *id, int *running,
    struct docker_err *err);
int sandbox_remove(const struct sandboxes *sbx, const char *id, struct docker_err *err);
int sandbox_oom_killed(const struct sandboxes *sbx, const char *id);
int sandbox_engine_ping(const struct sandboxes *sbx, struct docker_err *err);
unsigned long long sandbox_engine_errors(const struct sandboxes *sbx);

/* The environment of every run and of every sandbox container; NULL-ended. */
extern const char *const sandbox_run_env[];

#endif
