/*
 * Sandbox containers on the engine: made ready to use (created with the
 * hardened spec and our labels, started, its runner channel open), attached
 * to again, inspected and removed.  Sessions make them on demand and the
 * warm pool ahead of time; with reconcile.c (startup) and channel.c (the
 * runner's byte stream), this is the only code in sessions/ that talks to
 * the Engine client, so these few calls are all a fake engine must provide.
 */
#ifndef CIP_SANDBOX_H
#define CIP_SANDBOX_H

#include "cfg.h"
#include "channel.h"
#include "docker.h"

/* The label of pooled containers: they carry no cip.session label. */
#define SANDBOX_POOL_LABEL "cip.pool"

struct sandbox {
	char id[DOCKER_ID_MAX];
	struct channel *ch;
};

/*
 * Make a sandbox for session (NULL: for the pool).  Returns DOCKER_OK, or
 * the failing call's DOCKER_* code with err filled and *at_runner set when
 * the container started but its runner never answered; nothing is left
 * behind on failure.
 */
int sandbox_make(const struct cfg *c, struct docker *dk, const char *session,
    struct sandbox *out, int *at_runner, struct docker_err *err);
/* A new channel to the runner of the running container id (its runner may be starting). */
int sandbox_attach(struct docker *dk, const char *id, struct channel **ch,
    struct docker_err *err);
/* DOCKER_OK with *running set, or DOCKER_ENOTFOUND if container id is gone. */
int sandbox_running(struct docker *dk, const char *id, int *running, struct docker_err *err);
/* Remove container id, running or not, with its anonymous volumes. */
int sandbox_remove(struct docker *dk, const char *id, struct docker_err *err);
/* DOCKER_OK if the engine answers. */
int sandbox_engine_ping(struct docker *dk, struct docker_err *err);
/* Engine calls that have failed since the start. */
unsigned long long sandbox_engine_errors(const struct docker *dk);

#endif
