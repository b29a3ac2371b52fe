/*
 * Sandboxes through their operation table, and the Engine client's
 * implementation of it (see sandbox.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "sandbox.h"

#define RUNNER_START_WAIT_MS 10000
#define RUNNER_PATH "/opt/cip/runner"

/*
 * The Engine's hijacked stream to a container's relay, and what is needed
 * to ask whether the container still runs: under gVisor a sandbox whose
 * Sentry died (the host's OOM killer picks it, as it holds all the
 * sandbox's memory) leaves the stream open, silent, for about 45 s.
 */
struct engine_stream {
	struct docker_stream *s;
	struct docker *dk;
	char id[DOCKER_ID_MAX];
};

/* Send bytes to the relay over the Engine's hijacked stream. */
static int
docker_send(void *st, const void *buf, size_t len, int timeout_ms)
{
	return docker_stream_send(((struct engine_stream *)st)->s, buf, len, timeout_ms);
}

/* Receive the relay's multiplexed bytes from the Engine's hijacked stream. */
static long
docker_recv(void *st, void *buf, size_t cap, int timeout_ms)
{
	return docker_stream_recv(((struct engine_stream *)st)->s, buf, cap, timeout_ms);
}

/* 1 if the Engine's stream has nothing waiting to be read. */
static int
docker_quiet(void *st)
{
	return docker_stream_quiet(((struct engine_stream *)st)->s);
}

/* 0 once the Engine says the container is not running; 1 otherwise, errors included. */
static int
docker_alive(void *st)
{
	struct engine_stream *es = st;
	struct docker_err err;
	int running = 1;

	if (docker_inspect_running(es->dk, es->id, &running, &err) == DOCKER_ENOTFOUND)
		return 0;
	return running != 0;
}

/* Close the Engine's hijacked stream. */
static void
docker_close(void *st)
{
	struct engine_stream *es = st;

	docker_stream_close(es->s);
	free(es);
}

static const struct channel_stream_ops docker_stream_ops = {
	docker_send, docker_recv, docker_quiet, docker_close, docker_alive,
};

/* One try: a hijacked exec of the relay, then hello. */
static int
channel_try_open(struct docker *dk, const char *container_id, struct channel **out,
    struct docker_err *err)
{
	static const char *const argv[] = { RUNNER_PATH, "relay", NULL };
	char exec_id[DOCKER_ID_MAX];
	struct docker_stream *st;
	struct engine_stream *es;
	int rc;

	*out = NULL;
	/* The relay runs as root like the runner: user code cannot signal it. */
	rc = docker_exec_create(dk, container_id, argv, "0:0", 1, exec_id, err);
	if (rc == DOCKER_OK)
		rc = docker_exec_attach(dk, exec_id, &st, err);
	if (rc != DOCKER_OK)
		return rc;
	if (!(es = calloc(1, sizeof(*es)))) {
		docker_stream_close(st);
		return DOCKER_ENOMEM;
	}
	es->s = st;
	es->dk = dk;
	snprintf(es->id, sizeof(es->id), "%s", container_id);
	return channel_open_stream(&docker_stream_ops, es, 10000, out, err);
}

/* A channel to container id's runner, retried while it starts, for up to wait_ms. */
int
sandbox_docker_channel(struct docker *dk, const char *container_id, int wait_ms,
    struct channel **out, struct docker_err *err)
{
	long long deadline = clock_mono_ms() + wait_ms;
	int rc;

	for (;;) {
		rc = channel_try_open(dk, container_id, out, err);
		/* Only a runner not listening yet is worth another try. */
		if (rc != DOCKER_EAPI || clock_mono_ms() >= deadline)
			return rc;
		usleep(20000);
	}
}

/*
 * The environment of every run, and of the container (so the runner starts
 * the pre-loaded Python server in the environment its runs will have).
 */
const char *const sandbox_run_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/mnt/data", "LANG=C.UTF-8", "TMPDIR=/tmp", "USER=sandbox",
	/* Bare plt.show() and plotly's fig.show() write files (docker/sandbox/python). */
	"MPLBACKEND=module://cip_mpl_backend", "MPLCONFIGDIR=/tmp/.matplotlib",
	"PYTHONPATH=/opt/cip/python",
	/* Output written before a timeout kill still reaches the user. */
	"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1",
	/*
	 * Profiles and caches stay out of /mnt/data, the user's files: Debian's
	 * LibreOffice ignores XDG_CONFIG_HOME but reads its bootstrap variable
	 * UserInstallation from the environment.
	 */
	"XDG_CONFIG_HOME=/tmp/.config", "XDG_CACHE_HOME=/tmp/.cache",
	"UserInstallation=file:///tmp/.config/libreoffice",
	/* Go builds offline, its caches in /tmp, not in the user's /mnt/data. */
	"GOCACHE=/tmp/.cache/go-build", "GOPATH=/tmp/go", "GOFLAGS=-buildvcs=false",
	"GO111MODULE=auto", "GOTELEMETRY=off", "CGO_ENABLED=0",
	NULL,
};

/* The Engine implementation's state. */
struct docker_sandboxes {
	const struct cfg *cfg;
	struct docker *dk;
};

/*
 * Under gVisor the host's pids cgroup holds the Sentry's own threads and, on
 * the ptrace platform, a stub process per address space with a thread for
 * each Sentry thread that ran it: a fork bomb held at 128 processes inside
 * measured 1390 host tasks, five in a row 3186 (the stubs of killed
 * processes linger; 128 * 16 + 512 let the second bomb kill the Sentry).  Capped at CI_MAX_PIDS, the host refuses the
 * Sentry a thread and it panics, taking the whole sandbox with it (seen on
 * the second exec of a session, while the Python server forked its spares).
 * So the cap on user processes moves inside, to RLIMIT_NPROC, which gVisor
 * counts per sandbox in its own kernel (runc counts it per host uid, across
 * containers, hence CI_SANDBOX_NPROC's large default there), and the host
 * cap stays, loose enough for the Sentry.
 */
#define GVISOR_HOST_TASKS_PER_PROCESS 64
#define GVISOR_HOST_TASKS_BASE 1024

/* Runtimes named runsc or runsc-*: gVisor, as contrib/setup-runsc.sh registers it. */
static int
runtime_is_gvisor(const char *runtime)
{
	return strncmp(runtime, "runsc", 5) == 0 && (runtime[5] == '\0' || runtime[5] == '-');
}

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
	const char *env[sizeof(sandbox_run_env) / sizeof(sandbox_run_env[0]) + 1];
	char preload[1100];
	struct docker_err rmerr;
	size_t i;
	int rc;

	if (runtime_is_gvisor(c->sandbox_runtime)) {
		spec.nproc = c->max_pids < c->nproc_limit ? c->max_pids : c->nproc_limit;
		spec.pids = c->max_pids * GVISOR_HOST_TASKS_PER_PROCESS + GVISOR_HOST_TASKS_BASE;
	}
	for (i = 0; sandbox_run_env[i]; i++)
		env[i] = sandbox_run_env[i];
	/* The runner starts the server when this names modules (src/runner/pyserver.c). */
	snprintf(preload, sizeof(preload), "CIP_PYTHON_PRELOAD=%s", c->python_preload);
	env[i++] = preload;
	env[i] = NULL;
	spec.env = env;
	if (c->python_preload[0])
		spec.memory_bytes += (long long)c->python_preload_mb << 20;
	snprintf(created, sizeof(created), "%lld", clock_wall_ms() / 1000);
	if ((rc = docker_create(dk, &spec, id, err)) != DOCKER_OK)
		return rc;
	if ((rc = docker_start(dk, id, err)) != DOCKER_OK)
		docker_remove(dk, id, &rmerr);
	return rc;
}

/* The Engine's attach: a channel to the container's runner, waiting for it to start. */
static int
docker_sb_attach(void *ctx, const char *id, struct channel **ch, struct docker_err *err)
{
	struct docker_sandboxes *d = ctx;

	return sandbox_docker_channel(d->dk, id, RUNNER_START_WAIT_MS, ch, err);
}

/* The Engine's make: create, start, open a channel; nothing is left behind on failure. */
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

/* The Engine's running: inspect the container. */
static int
docker_sb_running(void *ctx, const char *id, int *running, struct docker_err *err)
{
	return docker_inspect_running(((struct docker_sandboxes *)ctx)->dk, id, running, err);
}

/*
 * The Engine's oom_killed: the container ended, and the engine says the OOM
 * killer did it.  Asked right after the exec stream broke, the engine may
 * not have seen the container end yet (seen under gVisor): ask again for up
 * to OOM_SETTLE_MS while it still says running.
 */
#define OOM_SETTLE_MS 3000
static int
docker_sb_oom_killed(void *ctx, const char *id)
{
	struct docker *dk = ((struct docker_sandboxes *)ctx)->dk;
	long long until = clock_mono_ms() + OOM_SETTLE_MS;
	struct docker_err err;
	int oom = 0, running = 1;

	for (;;) {
		if (docker_inspect_running(dk, id, &running, &err) != DOCKER_OK)
			return 0;
		if (!running || clock_mono_ms() >= until)
			break;
		usleep(100000);
	}
	if (running || docker_inspect_oom_killed(dk, id, &oom, &err) != DOCKER_OK)
		return 0;
	return oom;
}

/* The Engine's remove: remove the container. */
static int
docker_sb_remove(void *ctx, const char *id, struct docker_err *err)
{
	return docker_remove(((struct docker_sandboxes *)ctx)->dk, id, err);
}

/* The Engine's ping: ping the engine. */
static int
docker_sb_ping(void *ctx, struct docker_err *err)
{
	return docker_ping(((struct docker_sandboxes *)ctx)->dk, err);
}

/* The Engine's errors: the client's count of failed calls. */
static unsigned long long
docker_sb_errors(void *ctx)
{
	return docker_error_count(((struct docker_sandboxes *)ctx)->dk);
}

static const struct sandbox_ops docker_sandbox_ops = {
	.make = docker_sb_make, .attach = docker_sb_attach, .running = docker_sb_running,
	.oom_killed = docker_sb_oom_killed,
	.remove = docker_sb_remove, .ping = docker_sb_ping, .errors = docker_sb_errors,
};

/* Give sbx the Engine's sandboxes, containers per c on dk; 0 or -ENOMEM. */
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

/* Free the state sandboxes_docker_init gave sbx. */
void
sandboxes_docker_fini(struct sandboxes *sbx)
{
	free(sbx->ctx);
	sbx->ctx = NULL;
}

/* Make a sandbox through sbx's table. */
int
sandbox_make(const struct sandboxes *sbx, const char *session, struct sandbox *out,
    int *at_runner, struct docker_err *err)
{
	return sbx->ops->make(sbx->ctx, session, out, at_runner, err);
}

/* Open a new channel to sandbox id through sbx's table. */
int
sandbox_attach(const struct sandboxes *sbx, const char *id, struct channel **ch,
    struct docker_err *err)
{
	return sbx->ops->attach(sbx->ctx, id, ch, err);
}

/* Ask whether sandbox id runs, through sbx's table. */
int
sandbox_running(const struct sandboxes *sbx, const char *id, int *running,
    struct docker_err *err)
{
	return sbx->ops->running(sbx->ctx, id, running, err);
}

/* Remove sandbox id through sbx's table. */
int
sandbox_remove(const struct sandboxes *sbx, const char *id, struct docker_err *err)
{
	return sbx->ops->remove(sbx->ctx, id, err);
}

/* 1 if sandbox id was stopped whole by the OOM killer; 0 if not, or if sbx cannot tell. */
int
sandbox_oom_killed(const struct sandboxes *sbx, const char *id)
{
	return sbx->ops->oom_killed ? sbx->ops->oom_killed(sbx->ctx, id) : 0;
}

/* Ping the engine through sbx's table. */
int
sandbox_engine_ping(const struct sandboxes *sbx, struct docker_err *err)
{
	return sbx->ops->ping(sbx->ctx, err);
}

/* Engine calls failed since the start, through sbx's table. */
unsigned long long
sandbox_engine_errors(const struct sandboxes *sbx)
{
	return sbx->ops->errors(sbx->ctx);
}
