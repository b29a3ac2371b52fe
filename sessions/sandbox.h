/*
 * One sandbox container, ready to use: created with the hardened spec and
 * our labels, started, and its runner channel open.  Sessions make them on
 * demand; the warm pool makes them ahead of time.
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

#endif
