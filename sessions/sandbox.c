/*
 * Sandbox containers: make, attach, inspect, remove (see sandbox.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sandbox.h"

#define RUNNER_START_WAIT_MS 10000

static int
create_and_start(const struct cfg *c, struct docker *dk, const char *session,
    char id[DOCKER_ID_MAX], struct docker_err *err)
{
	char created[24];
	struct docker_label labels[3] = {
		{ c->sandbox_label, "1" },
		{ session ? "cip.session" : SANDBOX_POOL_LABEL, session ? session : "1" },
		{ "cip.created", created },
	};
	struct docker_create_spec spec = {
		.image = c->sandbox_image, .runtime = c->sandbox_runtime,
		.labels = labels, .nlabels = 3,
		.memory_bytes = (long long)c->max_memory_mb << 20,
		.nano_cpus = (long long)(c->max_cpus * 1e9), .pids = c->max_pids,
		.workspace_mb = c->workspace_mb, .tmp_mb = c->tmp_mb,
		.nofile = c->nofile_limit, .nproc = c->nproc_limit,
	};
	struct docker_err rmerr;
	int rc;

	snprintf(created, sizeof(created), "%lld", clock_wall_ms() / 1000);
	if ((rc = docker_create(dk, &spec, id, err)) != DOCKER_OK)
		return rc;
	if ((rc = docker_start(dk, id, err)) != DOCKER_OK)
		docker_remove(dk, id, &rmerr);
	return rc;
}

int
sandbox_make(const struct cfg *c, struct docker *dk, const char *session,
    struct sandbox *out, int *at_runner, struct docker_err *err)
{
	struct docker_err rmerr;
	int rc;

	*at_runner = 0;
	memset(out, 0, sizeof(*out));
	if ((rc = create_and_start(c, dk, session, out->id, err)) != DOCKER_OK)
		return rc;
	rc = sandbox_attach(dk, out->id, &out->ch, err);
	if (rc != DOCKER_OK) {
		*at_runner = 1;
		if (docker_remove(dk, out->id, &rmerr) != DOCKER_OK)
			log_error("container %.12s: %s", out->id, rmerr.msg);
		out->id[0] = '\0';
	}
	return rc;
}

int
sandbox_attach(struct docker *dk, const char *id, struct channel **ch, struct docker_err *err)
{
	return channel_open(dk, id, RUNNER_START_WAIT_MS, ch, err);
}

int
sandbox_running(struct docker *dk, const char *id, int *running, struct docker_err *err)
{
	return docker_inspect_running(dk, id, running, err);
}

int
sandbox_remove(struct docker *dk, const char *id, struct docker_err *err)
{
	return docker_remove(dk, id, err);
}

int
sandbox_engine_ping(struct docker *dk, struct docker_err *err)
{
	return docker_ping(dk, err);
}

unsigned long long
sandbox_engine_errors(const struct docker *dk)
{
	return docker_error_count(dk);
}
