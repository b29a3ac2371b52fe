/*
 * Sandboxes through their operation table, and the Engine client's
 * implementation of it (see sandbox.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sandbox.h"

#define RUNNER_START_WAIT_MS 10000

/* The Engine implementation's state. */
struct docker_sandboxes {
	const struct cfg *cfg;
	struct docker *dk;
};

/* Create and start a container for session (NULL: pooled); removed again if it will not start. */
static int
create_and_start(const struct cfg *c, struct docker *dk, const char *session,
    char id[DOCKER_ID_MAX], struct docker_err *err)
{
	char created[24];
	struct docker_label labels[3] = {
		{ c->sandbox_label, "1" },
		{ session ? SANDBOX_SESSION_LABEL : SANDBOX_POOL_LABEL, session ? session : "1" },
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

static int
docker_sb_attach(void *ctx, const char *id, struct channel **ch, struct docker_err *err)
{
	struct docker_sandboxes *d = ctx;

	return channel_open(d->dk, id, RUNNER_START_WAIT_MS, ch, err);
}

static int
docker_sb_make(void *ctx, const char *session, struct sandbox *out, int *at_runner,
    struct docker_err *err)
{
	struct docker_sandboxes *d = ctx;
	struct docker_err rmerr;
	int rc;

	*at_runner = 0;
	memset(out, 0, sizeof(*out));
	if ((rc = create_and_start(d->cfg, d->dk, session, out->id, err)) != DOCKER_OK)
		return rc;
	rc = docker_sb_attach(ctx, out->id, &out->ch, err);
	if (rc != DOCKER_OK) {
		*at_runner = 1;
		if (docker_remove(d->dk, out->id, &rmerr) != DOCKER_OK)
			log_error("container %.12s: %s", out->id, rmerr.msg);
		out->id[0] = '\0';
	}
	return rc;
}

static int
docker_sb_running(void *ctx, const char *id, int *running, struct docker_err *err)
{
	return docker_inspect_running(((struct docker_sandboxes *)ctx)->dk, id, running, err);
}

static int
docker_sb_remove(void *ctx, const char *id, struct docker_err *err)
{
	return docker_remove(((struct docker_sandboxes *)ctx)->dk, id, err);
}

static int
docker_sb_ping(void *ctx, struct docker_err *err)
{
	return docker_ping(((struct docker_sandboxes *)ctx)->dk, err);
}

static unsigned long long
docker_sb_errors(void *ctx)
{
	return docker_error_count(((struct docker_sandboxes *)ctx)->dk);
}

static const struct sandbox_ops docker_sandbox_ops = {
	.make = docker_sb_make, .attach = docker_sb_attach, .running = docker_sb_running,
	.remove = docker_sb_remove, .ping = docker_sb_ping, .errors = docker_sb_errors,
};

int
sandboxes_docker_init(struct sandboxes *sbx, const struct cfg *c, struct docker *dk)
{
	struct docker_sandboxes *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->cfg = c;
	d->dk = dk;
	sbx->ops = &docker_sandbox_ops;
	sbx->ctx = d;
	return 0;
}

void
sandboxes_docker_fini(struct sandboxes *sbx)
{
	free(sbx->ctx);
	sbx->ctx = NULL;
}

int
sandbox_make(const struct sandboxes *sbx, const char *session, struct sandbox *out,
    int *at_runner, struct docker_err *err)
{
	return sbx->ops->make(sbx->ctx, session, out, at_runner, err);
}

int
sandbox_attach(const struct sandboxes *sbx, const char *id, struct channel **ch,
    struct docker_err *err)
{
	return sbx->ops->attach(sbx->ctx, id, ch, err);
}

int
sandbox_running(const struct sandboxes *sbx, const char *id, int *running,
    struct docker_err *err)
{
	return sbx->ops->running(sbx->ctx, id, running, err);
}

int
sandbox_remove(const struct sandboxes *sbx, const char *id, struct docker_err *err)
{
	return sbx->ops->remove(sbx->ctx, id, err);
}

int
sandbox_engine_ping(const struct sandboxes *sbx, struct docker_err *err)
{
	return sbx->ops->ping(sbx->ctx, err);
}

unsigned long long
sandbox_engine_errors(const struct sandboxes *sbx)
{
	return sbx->ops->errors(sbx->ctx);
}
