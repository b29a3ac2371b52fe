/*
 * Exec orchestration: resolve the session, make sure its container runs and
 * its runner channel is open, write the code file, run it, collect results.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "channel.h"
#include "log.h"
#include "mime.h"
#include "pool.h"
#include "sandbox.h"
#include "sessions.h"
#include "workspace.h"
#include "../storage/files.h"

#define NBUCKETS 256
/* Beyond the run timeout: the runner's kill and drain, and the channel. */
#define RUN_GRACE_MS 15000
#define CONTROL_TIMEOUT_MS 30000
/* Reopening a channel to a running container: its runner may be starting. */
#define RUNNER_START_WAIT_MS 10000

struct session {
	char id[ID_LEN + 1];
	char user[DB_USER_MAX];
	pthread_mutex_t lock;		/* held for a whole exec */
	char container_id[DOCKER_ID_MAX];
	struct channel *ch;
	struct workspace *ws;		/* /mnt/data after the last run, or NULL */
	struct session *next;
	int refs;	/* the table's (while listed) and each request's; under sm->mu */
	int gone;	/* ended: out of the table; written holding both locks */
};

struct sessions {
	const struct cfg *cfg;
	struct docker *dk;
	struct db *db;
	struct blobs *blobs;
	struct metrics *mx;
	struct pool *pool;		/* NULL with CI_POOL_SIZE=0 */
	pthread_mutex_t cap_mu;		/* guards creating */
	int creating;			/* container slots reserved, not yet recorded */
	pthread_mutex_t mu;		/* guards the table, not the sessions */
	struct session *table[NBUCKETS];
	pthread_t sweeper;
	int sweeping, stopping;		/* under sweep_mu */
	pthread_mutex_t sweep_mu;
	pthread_cond_t sweep_cv;
};

static unsigned
bucket_of(const char *id)
{
	unsigned h = 5381;

	while (*id)
		h = h * 33 + (unsigned char)*id++;
	return h % NBUCKETS;
}

struct sessions *
sessions_new(const struct cfg *cfg, struct docker *dk, struct db *db, struct blobs *blobs,
    struct metrics *mx)
{
	struct sessions *sm = calloc(1, sizeof(*sm));

	if (!sm)
		return NULL;
	sm->cfg = cfg;
	sm->dk = dk;
	sm->db = db;
	sm->blobs = blobs;
	sm->mx = mx;
	pthread_mutex_init(&sm->cap_mu, NULL);
	pthread_mutex_init(&sm->mu, NULL);
	pthread_mutex_init(&sm->sweep_mu, NULL);
	pthread_cond_init(&sm->sweep_cv, NULL);
	return sm;
}

void
sessions_free(struct sessions *sm)
{
	struct session *s, *next;
	int i;

	if (!sm)
		return;
	/* No request is left at this point: the table holds the only references. */
	for (i = 0; i < NBUCKETS; i++)
		for (s = sm->table[i]; s; s = next) {
			next = s->next;
			channel_close(s->ch);
			workspace_free(s->ws);
			pthread_mutex_destroy(&s->lock);
			free(s);
		}
	pool_free(sm->pool);
	pthread_mutex_destroy(&sm->cap_mu);
	pthread_mutex_destroy(&sm->mu);
	pthread_mutex_destroy(&sm->sweep_mu);
	pthread_cond_destroy(&sm->sweep_cv);
	free(sm);
}

void
exec_result_free(struct exec_result *res)
{
	size_t i;

	free(res->out);
	free(res->err);
	for (i = 0; i < res->nfiles; i++)
		free(res->files[i].name);
	free(res->files);
	res->out = res->err = NULL;
	res->files = NULL;
	res->nfiles = 0;
}

static struct session *
table_find(struct sessions *sm, const char *id)
{
	struct session *s;

	for (s = sm->table[bucket_of(id)]; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

/*
 * The cached session for row, added if absent, with a reference the caller
 * gives back with session_release.  Caller holds sm->mu.
 */
static struct session *
table_get(struct sessions *sm, const struct db_session *row)
{
	unsigned b = bucket_of(row->id);
	struct session *s;

	if ((s = table_find(sm, row->id))) {
		s->refs++;
		return s;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
	s->refs = 2;	/* the table's and the caller's */
	memcpy(s->id, row->id, sizeof(s->id));
	snprintf(s->user, sizeof(s->user), "%s", row->user_id);
	snprintf(s->container_id, sizeof(s->container_id), "%s", row->container_id);
	pthread_mutex_init(&s->lock, NULL);
	s->next = sm->table[b];
	sm->table[b] = s;
	return s;
}

static void
session_release(struct sessions *sm, struct session *s)
{
	int last;

	pthread_mutex_lock(&sm->mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&sm->mu);
	if (!last)
		return;
	channel_close(s->ch);
	workspace_free(s->ws);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Take s out of the table; the table's reference goes.  Caller holds sm->mu. */
static void
table_unlink(struct sessions *sm, struct session *s)
{
	struct session **pp = &sm->table[bucket_of(s->id)];

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = s->next;
		s->refs--;
	}
	s->gone = 1;
}

/* A usable row of user's for id: it exists, is active and is the user's. */
static int
find_row(struct sessions *sm, const char *user, const char *id, struct db_session *row)
{
	if (!id_valid(id) || db_session_get(sm->db, id, row) < 0)
		return -1;
	if (strcmp(row->user_id, user) != 0 || strcmp(row->state, "active") != 0)
		return -1;
	return 0;
}

/*
 * The design's order: runtime_session_hint, body session_id, the bucket of
 * the files[] refs, else a new session.
 */
static int
resolve_row(struct sessions *sm, const char *user, const struct exec_req *req,
    struct db_session *row)
{
	size_t i;

	if (req->hint && req->hint[0] && strlen(req->hint) < DB_HINT_MAX &&
	    db_session_by_hint(sm->db, user, req->hint, row) == 0)
		return 0;
	if (req->session_id && find_row(sm, user, req->session_id, row) == 0)
		return 0;
	for (i = 0; i < req->nfiles; i++)
		if (find_row(sm, user, req->files[i].bucket, row) == 0)
			return 0;
	memset(row, 0, sizeof(*row));
	if (id_new(row->id) < 0)
		return -1;
	snprintf(row->user_id, sizeof(row->user_id), "%s", user);
	if (req->hint && strlen(req->hint) < DB_HINT_MAX)
		snprintf(row->hint, sizeof(row->hint), "%s", req->hint);
	row->created_at = row->last_used_at = clock_wall_ms();
	strcpy(row->state, "active");
	if (db_session_insert(sm->db, row) < 0)
		return -1;
	metrics_session_created(sm->mx);
	log_info("session %s created for user %s", row->id, user);
	return 0;
}

static int
docker_to_sess(int rc)
{
	return rc == DOCKER_EUNAVAIL ? SESS_EUNAVAIL : rc == DOCKER_ENOMEM ? SESS_EINTERNAL :
	    SESS_EENGINE;
}

/* s now holds sb: recorded in memory and in the database. */
static void
hold_sandbox(struct sessions *sm, struct session *s, struct sandbox *sb, const char *how)
{
	memcpy(s->container_id, sb->id, sizeof(s->container_id));
	s->ch = sb->ch;
	if (db_session_set_container(sm->db, s->id, sb->id) < 0)
		log_warn("session %s: could not record container %.12s", s->id, sb->id);
	log_info("session %s: container %.12s %s", s->id, sb->id, how);
}

static int
sandbox_failure(struct sessions *sm, struct session *s, int rc, int at_runner,
    const struct docker_err *err, char *why, size_t whylen)
{
	const struct cfg *c = sm->cfg;

	log_error("session %s: cannot start a sandbox%s: %s", s->id,
	    at_runner ? " (its runner did not answer)" : "", err->msg);
	if (rc == DOCKER_EUNAVAIL) {
		snprintf(why, whylen, "docker engine unavailable");
		return SESS_EUNAVAIL;
	}
	if (at_runner) {
		snprintf(why, whylen, "the sandbox did not start");
		return SESS_ESANDBOX;
	}
	if (rc == DOCKER_ENOTFOUND)
		snprintf(why, whylen, "sandbox image %s not found", c->sandbox_image);
	else
		snprintf(why, whylen, "the docker engine refused to start a sandbox");
	return docker_to_sess(rc);
}

/*
 * Forget the channel and what it told us, but not the container: after an
 * engine (or Podman service) restart the container often runs on, and the
 * next call inspects it and opens a new channel, or replaces it.
 */
static void
forget_channel(struct session *s)
{
	channel_close(s->ch);
	s->ch = NULL;
	workspace_free(s->ws);
	s->ws = NULL;
}

static void
drop_container(struct sessions *sm, struct session *s, const char *reason)
{
	struct docker_err err = { 0, "" };
	int rc;

	forget_channel(s);
	if (!s->container_id[0])
		return;
	log_warn("session %s: removing container %.12s: %s", s->id, s->container_id, reason);
	if ((rc = docker_remove(sm->dk, s->container_id, &err)) != DOCKER_OK) {
		log_error("session %s: %s", s->id, err.msg);
		/* Unreachable engine: keep the id, so the container is not orphaned. */
		if (rc == DOCKER_EUNAVAIL)
			return;
	}
	s->container_id[0] = '\0';
	db_session_set_container(sm->db, s->id, NULL);
	/* A slot is free: the pool may refill. */
	pool_kick(sm->pool);
}

static int restore_workspace(struct sessions *sm, struct session *s);

/* ---- containers: the cap, the warm pool, eviction ---- */

/*
 * A slot for one more container, under CI_MAX_LIVE_CONTAINERS: the
 * sessions holding one (the database says), the pooled ones and those
 * being made count.  1 if granted; give it back with release_slot once the
 * container is recorded (or was not made).
 */
static int
reserve_slot(void *ctx)
{
	struct sessions *sm = ctx;
	int held, granted = 0;

	pthread_mutex_lock(&sm->cap_mu);
	held = db_count_holding(sm->db);
	if (held >= 0 && held + pool_size(sm->pool) + sm->creating < sm->cfg->max_live) {
		sm->creating++;
		granted = 1;
	}
	pthread_mutex_unlock(&sm->cap_mu);
	return granted;
}

static void
release_slot(void *ctx)
{
	struct sessions *sm = ctx;

	pthread_mutex_lock(&sm->cap_mu);
	sm->creating--;
	pthread_mutex_unlock(&sm->cap_mu);
}

struct evict_ctx {
	struct sessions *sm;
	const char *reason;
	int evicted, busy;
	int one;		/* stop after the first */
};

/*
 * Take row's container away if its session is idle (its lock is free): the
 * files stay in storage and the next call re-creates and re-hydrates it.
 * A session mid-run is never touched.
 */
static int
evict_one(const struct db_session *row, long files, long long bytes, void *ctxv)
{
	struct evict_ctx *e = ctxv;
	struct sessions *sm = e->sm;
	struct db_session now;
	struct session *s;

	pthread_mutex_lock(&sm->mu);
	s = table_get(sm, row);
	pthread_mutex_unlock(&sm->mu);
	if (!s)
		return 0;
	if (pthread_mutex_trylock(&s->lock) != 0) {
		e->busy++;
		session_release(sm, s);
		return 0;
	}
	if (!s->gone && (db_session_get(sm->db, s->id, &now) < 0 ||
	    strcmp(now.state, "active") != 0)) {
		/* Ended meanwhile: table_get must not have brought it back. */
		pthread_mutex_lock(&sm->mu);
		table_unlink(sm, s);
		s->gone = 1;
		pthread_mutex_unlock(&sm->mu);
	}
	if (!s->gone && s->container_id[0]) {
		drop_container(sm, s, e->reason);
		if (!s->container_id[0])
			e->evicted++;
	}
	pthread_mutex_unlock(&s->lock);
	session_release(sm, s);
	return e->one && e->evicted;
}

/* Free one slot from the least recently used idle session; 1 if one was freed. */
static int
evict_lru(struct sessions *sm)
{
	struct evict_ctx e = { sm, "evicted: CI_MAX_LIVE_CONTAINERS reached and it was "
	    "the least recently used", 0, 0, 1 };

	/* No limit: a long run leaves its session's last use old, so the oldest
	 * rows may all be busy while a newer one is idle. */
	db_session_holding(sm->db, LLONG_MAX, INT_MAX, evict_one, &e);
	metrics_evicted(sm->mx, "lru", e.evicted);
	return e.evicted;
}

#define SLOT_TRIES 8

/*
 * A pooled sandbox for s, if one is ready.  A slot is reserved across the
 * hand-over, so the container is counted (pool, reservation, then the
 * database) at every moment and the refill cannot overshoot the cap.
 */
static int
take_pooled(struct sessions *sm, struct session *s)
{
	struct sandbox sb;
	int rc;

	if (!sm->pool)
		return -1;
	pthread_mutex_lock(&sm->cap_mu);
	sm->creating++;
	pthread_mutex_unlock(&sm->cap_mu);
	if ((rc = pool_take(sm->pool, &sb)) == 0)
		hold_sandbox(sm, s, &sb, "taken from the warm pool");
	release_slot(sm);
	return rc;
}

/*
 * A sandbox for s, which has none: from the warm pool, else made now, with
 * a slot under the cap (evicting the least recently used idle session if
 * need be).  SESS_EBUSY when every container is in use.
 */
static int
acquire_sandbox(struct sessions *sm, struct session *s, char *why, size_t whylen)
{
	struct docker_err err = { 0, "" };
	struct sandbox sb;
	long long t0 = clock_mono_ms();
	int rc, at_runner, tries;

	if (take_pooled(sm, s) == 0) {
		metrics_pool_take(sm->mx, 1);
		return SESS_OK;
	}
	if (sm->pool)
		metrics_pool_take(sm->mx, 0);
	for (tries = 0; !reserve_slot(sm); tries++) {
		/* The pool may have filled the last slots meanwhile. */
		if (take_pooled(sm, s) == 0)
			return SESS_OK;
		if (tries == SLOT_TRIES || !evict_lru(sm)) {
			log_warn("session %s: no container: all %d are busy (CI_MAX_LIVE_CONTAINERS)",
			    s->id, sm->cfg->max_live);
			snprintf(why, whylen, "every sandbox container is busy "
			    "(CI_MAX_LIVE_CONTAINERS=%d); try again shortly", sm->cfg->max_live);
			metrics_busy(sm->mx);
			return SESS_EBUSY;
		}
	}
	rc = sandbox_make(sm->cfg, sm->dk, s->id, &sb, &at_runner, &err);
	if (rc == DOCKER_OK)
		hold_sandbox(sm, s, &sb, "started");
	release_slot(sm);
	if (rc != DOCKER_OK)
		return sandbox_failure(sm, s, rc, at_runner, &err, why, whylen);
	metrics_container_started(sm->mx, (double)(clock_mono_ms() - t0) / 1000);
	return SESS_OK;
}

/* Make sure s has a running container with an open channel.  Caller holds s->lock. */
static int
ensure_channel(struct sessions *sm, struct session *s, char *why, size_t whylen)
{
	struct docker_err err = { 0, "" };
	int running = 0, rc;

	if (s->ch && channel_idle_ok(s->ch))
		return SESS_OK;
	channel_close(s->ch);
	s->ch = NULL;
	if (s->container_id[0]) {
		/* After a proxy restart, or a lost channel: reuse it if it runs. */
		rc = docker_inspect_running(sm->dk, s->container_id, &running, &err);
		if (rc == DOCKER_EUNAVAIL) {
			log_error("session %s: %s", s->id, err.msg);
			snprintf(why, whylen, "docker engine unavailable");
			return SESS_EUNAVAIL;
		}
		if (rc == DOCKER_OK && running &&
		    channel_open(sm->dk, s->container_id, RUNNER_START_WAIT_MS, &s->ch, &err) == DOCKER_OK)
			return SESS_OK;
		drop_container(sm, s, rc == DOCKER_ENOTFOUND ? "it is gone" :
		    running ? err.msg : "it is not running");
	}
	if ((rc = acquire_sandbox(sm, s, why, whylen)) != SESS_OK)
		return rc;
	/*
	 * A session that had files gets them back: the container is only a
	 * cache.  Otherwise /mnt/data is empty, and need not be listed.
	 */
	if (restore_workspace(sm, s) == 0)
		s->ws = workspace_empty();
	return SESS_OK;
}

/* One request and its reply; an error reply or a lost channel is an error. */
static int
runner_call(struct session *s, const struct proto_msg *req, struct proto_msg **rep,
    int timeout_ms, char *detail, size_t detlen)
{
	int r = channel_call(s->ch, req, rep, timeout_ms);

	if (r < 0) {
		snprintf(detail, detlen, "runner channel: %s (%.200s)", strerror(-r),
		    channel_stderr(s->ch));
		return -1;
	}
	if (proto_msg_type(*rep) != PROTO_OK) {
		const char *e = proto_get(*rep, "error", NULL);
		snprintf(detail, detlen, "runner: %.300s", e ? e : "unknown error");
		return -2;
	}
	return 0;
}

static const char *const run_env[] = {
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

static struct proto_msg *
build_run(const struct cfg *c, const struct exec_req *req, const char *file)
{
	struct proto_msg *m = proto_msg_new(PROTO_RUN);
	size_t i;
	int bad = !m;

	for (i = 0; !bad && req->lang->run[i]; i++)
		bad |= proto_add_str(m, "argv", strcmp(req->lang->run[i], "{file}") == 0 ?
		    file : req->lang->run[i]);
	for (i = 0; !bad && i < req->nargs; i++)
		bad |= proto_add_str(m, "argv", req->args[i]);
	for (i = 0; !bad && run_env[i]; i++)
		bad |= proto_add_str(m, "env", run_env[i]);
	if (!bad)
		bad |= proto_add_str(m, "cwd", "/mnt/data") |
		    proto_add_u64(m, "timeout_ms", (uint64_t)c->max_run_timeout_s * 1000) |
		    proto_add_u64(m, "max_output", (uint64_t)c->max_output_bytes);
	if (bad) {
		proto_msg_free(m);
		return NULL;
	}
	return m;
}

static struct proto_msg *
build_put(const struct exec_req *req, const char *file)
{
	struct proto_msg *m = proto_msg_new(PROTO_PUT);

	if (m && (proto_add_str(m, "path", file) < 0 ||
	    proto_add(m, "data", req->code, req->code_len) < 0)) {
		proto_msg_free(m);
		return NULL;
	}
	return m;
}

/* Copy one output stream out of the reply, with a marker if it was cut. */
static int
take_stream(const struct proto_msg *rep, const char *key, const char *totkey,
    char **out, size_t *len, unsigned long long *total)
{
	const char *v = proto_get(rep, key, len);
	uint64_t tot = 0;
	char note[96];
	size_t nl = 0;

	if (!v) {
		v = "";
		*len = 0;
	}
	proto_get_u64(rep, totkey, &tot);
	*total = tot;
	if (tot > *len)
		nl = (size_t)snprintf(note, sizeof(note),
		    "\n[output truncated: %llu of %llu bytes shown]\n",
		    (unsigned long long)*len, (unsigned long long)tot);
	if (!(*out = malloc(*len + nl + 1)))
		return -1;
	memcpy(*out, v, *len);
	memcpy(*out + *len, note, nl);
	*len += nl;
	(*out)[*len] = '\0';
	return 0;
}

/* Append a line for the model to the stderr of res. */
static int
append_note(struct exec_result *res, const char *note)
{
	size_t n = strlen(note), sep = res->err_len && res->err[res->err_len - 1] != '\n';
	char *grown = realloc(res->err, res->err_len + sep + n + 1);

	if (!grown)
		return -1;
	res->err = grown;
	if (sep)
		res->err[res->err_len++] = '\n';
	memcpy(res->err + res->err_len, note, n + 1);
	res->err_len += n;
	return 0;
}

static int
fill_result(const struct cfg *c, const struct proto_msg *rep, struct exec_result *res)
{
	uint64_t v;
	char note[200];

	if (take_stream(rep, "stdout", "stdout_total", &res->out, &res->out_len, &res->out_total) < 0 ||
	    take_stream(rep, "stderr", "stderr_total", &res->err, &res->err_len, &res->err_total) < 0)
		return -1;
	res->exit_code = proto_get_u64(rep, "exit_code", &v) == 0 && v < 256 ? (int)v : 255;
	res->signal = proto_get_u64(rep, "signal", &v) == 0 && v < 65 ? (int)v : 0;
	res->timed_out = proto_get_u64(rep, "timed_out", &v) == 0 && v;
	res->wall_ms = proto_get_u64(rep, "wall_ms", &v) == 0 && v < 1000000000 ? (long)v : 0;
	if (res->timed_out)
		snprintf(note, sizeof(note), "Execution timed out after %d s: every process of "
		    "the run was stopped.\n", c->max_run_timeout_s);
	else if (res->signal == 9)
		/* Nobody else sends SIGKILL in the sandbox: it is the OOM killer. */
		snprintf(note, sizeof(note), "Killed by SIGKILL: most likely the program ran out of memory (the sandbox "
		    "limit is %d MiB).\n", c->max_memory_mb);
	else
		return 0;
	return append_note(res, note);
}

/* List /mnt/data as the capture rules see it. */
static int
list_workspace(const struct cfg *c, struct session *s, struct workspace **out,
    char *detail, size_t detlen)
{
	struct proto_msg *req = proto_msg_new(PROTO_LIST), *rep = NULL;
	int r = -2;

	*out = NULL;
	if (req && proto_add_u64(req, "max_depth", 10) == 0 &&
	    proto_add_u64(req, "max_entries", 10000) == 0 &&
	    proto_add_u64(req, "hash_max", (uint64_t)c->max_file_bytes) == 0 &&
	    proto_add_u64(req, "hidden", 0) == 0) {
		r = runner_call(s, req, &rep, CONTROL_TIMEOUT_MS, detail, detlen);
		if (r == 0 && !(*out = workspace_parse(rep)))
			r = -2;
	}
	proto_msg_free(req);
	proto_msg_free(rep);
	return r;
}

/* The files[] ref placed at path by this request, or NULL. */
static const struct exec_file_ref *
input_at(const struct exec_req *req, const char *path)
{
	size_t i;

	for (i = req->nfiles; i-- > 0; )	/* the last ref of a name wins */
		if (strcmp(req->files[i].name, path) == 0)
			return &req->files[i];
	return NULL;
}

/* Fetch one file from the sandbox and store it; 0 or -1 (logged). */
static int
store_output(struct sessions *sm, struct session *s, const char *user, const char *path,
    const struct exec_file_ref *from, struct exec_file *out)
{
	struct proto_msg *req = proto_msg_new(PROTO_GET), *rep = NULL;
	struct db_file row;
	char detail[600];
	const char *data;
	size_t len;
	int rc = -1;

	if (!req || proto_add_str(req, "path", path) < 0 ||
	    proto_add_u64(req, "max", (uint64_t)sm->cfg->max_file_bytes) < 0 ||
	    runner_call(s, req, &rep, CONTROL_TIMEOUT_MS, detail, sizeof(detail)) < 0) {
		log_warn("session %s: output %s not fetched: %s", s->id, path,
		    req ? detail : "out of memory");
		goto out;
	}
	data = proto_get(rep, "data", &len);
	memset(&row, 0, sizeof(row));
	if (!data || !(out->name = strdup(path)))
		goto out;
	memcpy(row.bucket, s->id, sizeof(row.bucket));
	memcpy(row.session_id, s->id, sizeof(row.session_id));
	if (from) {
		snprintf(row.from_id, sizeof(row.from_id), "%s", from->id);
		snprintf(row.from_bucket, sizeof(row.from_bucket), "%s", from->bucket);
		memcpy(out->from_id, row.from_id, sizeof(out->from_id));
		memcpy(out->from_bucket, row.from_bucket, sizeof(out->from_bucket));
	}
	snprintf(row.name, sizeof(row.name), "%s", path);
	snprintf(row.owner, sizeof(row.owner), "%s", user);
	mime_guess(data, len, path, row.mime, sizeof(row.mime));
	if (files_store(sm->db, sm->blobs, &row, data, len) < 0) {
		log_error("session %s: output %s not stored", s->id, path);
		free(out->name);
		out->name = NULL;
		goto out;
	}
	memcpy(out->id, row.id, sizeof(out->id));
	memcpy(out->bucket, row.bucket, sizeof(out->bucket));
	log_info("session %s: captured %s (%zu bytes, %s) as %s", s->id, path, len, row.mime, row.id);
	rc = 0;
out:
	proto_msg_free(req);
	proto_msg_free(rep);
	return rc;
}

/* Inputs uploaded read-only are infrastructure: never reported as changed. */
static int
is_read_only_input(struct sessions *sm, const struct exec_req *req, const char *path)
{
	const struct exec_file_ref *ref = input_at(req, path);
	struct db_file row;

	return ref && db_file_get(sm->db, ref->bucket, ref->id, &row) == 0 && row.read_only;
}

/* Unchanged inputs, echoed as inherited in the slots the outputs left. */
static void
echo_inherited(const struct exec_req *req, const struct workspace *after,
    struct exec_result *res, size_t max)
{
	const struct exec_file_ref *ref;
	const struct ws_entry *e;
	struct exec_file *f;
	size_t i, j;
	int dup;

	for (i = 0; i < req->nfiles && res->nfiles < max; i++) {
		ref = &req->files[i];
		if (input_at(req, ref->name) != ref || !(e = workspace_find(after, ref->name)) ||
		    e->type != 'f')
			continue;
		for (j = 0, dup = 0; j < res->nfiles; j++)
			dup |= strcmp(res->files[j].name, ref->name) == 0;
		if (dup)	/* changed: reported above, with modified_from */
			continue;
		f = &res->files[res->nfiles];
		if (!(f->name = strdup(ref->name)))
			return;
		snprintf(f->id, sizeof(f->id), "%s", ref->id);
		snprintf(f->bucket, sizeof(f->bucket), "%s", ref->bucket);
		f->inherited = 1;
		res->nfiles++;
	}
}

/*
 * The files the run created or changed (regular files only: a symlink is
 * never followed), within the size and count caps, are stored in the
 * session's bucket and listed in res.
 */
static void
capture_outputs(struct sessions *sm, struct session *s, const char *user,
    const struct exec_req *req, const char *file, const struct workspace *after,
    struct exec_result *res)
{
	const struct cfg *c = sm->cfg;
	const struct ws_entry *e;
	size_t i;

	if (c->max_files_per_run > 0 &&
	    !(res->files = calloc((size_t)c->max_files_per_run, sizeof(*res->files))))
		return;
	for (i = 0; i < after->n; i++) {
		e = &after->e[i];
		if (!workspace_changed(s->ws, e) || strcmp(e->path, file) == 0 ||
		    is_read_only_input(sm, req, e->path))
			continue;
		if (e->size > c->max_file_bytes) {
			log_info("session %s: output %s skipped: %lld bytes is over "
			    "CI_MAX_FILE_SIZE_BYTES", s->id, e->path, e->size);
			continue;
		}
		if (res->nfiles == (size_t)c->max_files_per_run) {
			log_info("session %s: more than %d outputs; the rest are not captured",
			    s->id, c->max_files_per_run);
			break;
		}
		if (store_output(sm, s, user, e->path, input_at(req, e->path),
		    &res->files[res->nfiles]) == 0)
			res->nfiles++;
	}
	echo_inherited(req, after, res, (size_t)c->max_files_per_run);
}

/* Read a stored file's bytes; NULL (logged) if the blob cannot be read. */
static char *
read_blob(struct sessions *sm, const struct db_file *f, size_t *len)
{
	char *data = NULL;
	off_t size;
	ssize_t n;
	size_t got = 0;
	int fd;

	if (blobs_open_read(sm->blobs, f->bucket, f->id, &fd, &size) < 0)
		return NULL;
	if ((data = malloc((size_t)size + 1)))
		while (got < (size_t)size && (n = read(fd, data + got, (size_t)size - got)) > 0)
			got += (size_t)n;
	close(fd);
	if (data && got != (size_t)size) {
		free(data);
		data = NULL;
	}
	*len = got;
	return data;
}

/* Restore batches: one PUT carries at most this many bytes of files. */
#define RESTORE_BATCH (32u << 20)

struct restore {
	struct db_file *rows;
	size_t n, alloc;
};

static int
collect_row(const struct db_file *f, void *ctx)
{
	struct restore *r = ctx;
	struct db_file *grown;

	if (r->n == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 16;
		if (!(grown = realloc(r->rows, r->alloc * sizeof(*grown))))
			return 1;
		r->rows = grown;
	}
	r->rows[r->n++] = *f;
	return 0;
}

/* Send a restore batch; 0, or -1 with the channel lost. */
static int
flush_restore(struct session *s, struct proto_msg **put, size_t *bytes)
{
	struct proto_msg *rep = NULL;
	char detail[600];
	int r = 0;

	if (*put && runner_call(s, *put, &rep, CONTROL_TIMEOUT_MS, detail, sizeof(detail)) < 0) {
		log_error("session %s: restore: %s", s->id, detail);
		r = -1;
	}
	proto_msg_free(*put);
	proto_msg_free(rep);
	*put = NULL;
	*bytes = 0;
	return r;
}

/*
 * Put the newest stored version of every file of the session's bucket back
 * in /mnt/data of its new container.  Files too old to be kept are gone
 * for good; inputs from other buckets come back with the next call's refs.
 */
/* Files restored; -1 when something failed (the workspace is unknown). */
static int
restore_workspace(struct sessions *sm, struct session *s)
{
	struct restore r = { NULL, 0, 0 };
	struct proto_msg *put = NULL;
	size_t i, j, len, bytes = 0, restored = 0;
	char *data;
	int newer, rc = -1;

	if (db_file_list(sm->db, s->id, collect_row, &r) < 0)
		goto out;
	if (r.n == 0) {
		rc = 0;
		goto out;
	}
	for (i = r.n; i-- > 0; ) {	/* newest first: the first of a name wins */
		for (j = i + 1, newer = 0; j < r.n && !newer; j++)
			newer = strcmp(r.rows[j].name, r.rows[i].name) == 0;
		if (newer || !(data = read_blob(sm, &r.rows[i], &len)))
			continue;
		if ((!put && !(put = proto_msg_new(PROTO_PUT))) ||
		    proto_add_str(put, "path", r.rows[i].name) < 0 ||
		    proto_add(put, "data", data, len) < 0) {
			free(data);
			goto out;
		}
		free(data);
		restored++;
		if ((bytes += len) >= RESTORE_BATCH && flush_restore(s, &put, &bytes) < 0)
			goto out;
	}
	if (flush_restore(s, &put, &bytes) == 0) {
		if (restored)
			log_info("session %s re-hydrated: %zu file(s) restored from storage", s->id,
			    restored);
		rc = restored ? (int)restored : -1;
	}
out:
	proto_msg_free(put);
	free(r.rows);
	return rc;
}

/*
 * Put every files[] ref at /mnt/data/<name>, skipping those already there
 * with the same content.  One PUT carries them all.  SESS_EINPUT if a ref
 * names no stored file.
 */
static int
put_inputs(struct sessions *sm, struct session *s, const char *user, const struct exec_req *req,
    char *why, size_t whylen, char *detail, size_t detlen)
{
	struct proto_msg *put = NULL, *rep = NULL;
	const struct exec_file_ref *ref;
	const struct ws_entry *e;
	struct db_file row;
	size_t i, len, n = 0;
	char *data;
	int r = 0;

	for (i = 0; i < req->nfiles; i++) {
		ref = &req->files[i];
		if (input_at(req, ref->name) != ref)
			continue;	/* a later ref of the same name wins */
		/* A user's file is only that user's; agent and skill files are shared. */
		if (db_file_get(sm->db, ref->bucket, ref->id, &row) < 0 ||
		    ((!ref->kind || strcmp(ref->kind, "user") == 0) && strcmp(row.owner, user) != 0)) {
			snprintf(why, whylen, "files[%zu] (%s) does not exist or has expired", i,
			    ref->name);
			r = SESS_EINPUT;
			goto out;
		}
		e = workspace_find(s->ws, ref->name);
		if (e && e->type == 'f' && strcmp(e->sha256, row.sha256) == 0)
			continue;	/* already there, same bytes */
		if (!(data = read_blob(sm, &row, &len))) {
			snprintf(why, whylen, "files[%zu] (%s) cannot be read from storage", i,
			    ref->name);
			r = SESS_EINPUT;
			goto out;
		}
		if ((!put && !(put = proto_msg_new(PROTO_PUT))) ||
		    proto_add_str(put, "path", ref->name) < 0 ||
		    proto_add(put, "data", data, len) < 0 ||
		    workspace_set(s->ws, ref->name, row.size, row.sha256) < 0) {
			free(data);
			snprintf(why, whylen, "out of memory");
			r = SESS_EINTERNAL;
			goto out;
		}
		free(data);
		n++;
	}
	if (put && (r = runner_call(s, put, &rep, CONTROL_TIMEOUT_MS, detail, detlen)) < 0) {
		/* The snapshot no longer tells the truth about those paths. */
		workspace_free(s->ws);
		s->ws = NULL;
	}
	if (n)
		log_info("session %s: %zu input file(s) put in place", s->id, n);
out:
	proto_msg_free(put);
	proto_msg_free(rep);
	return r;
}

/* Write the code and run it.  Caller holds s->lock; s has a channel. */
static int
run_in_session(struct sessions *sm, struct session *s, const char *user,
    const struct exec_req *req, struct exec_result *res, int *lost, char *why, size_t whylen)
{
	const struct cfg *c = sm->cfg;
	char namebuf[300];
	const char *file = lang_file(req->lang, req->code, namebuf, sizeof(namebuf));
	struct proto_msg *put = build_put(req, file), *run = build_run(c, req, file), *rep = NULL;
	struct workspace *after = NULL;
	char detail[600];
	int r, rc = SESS_OK;

	*lost = 0;
	if (!put || !run) {
		snprintf(why, whylen, "out of memory");
		rc = SESS_EINTERNAL;
		goto out;
	}
	r = runner_call(s, put, &rep, CONTROL_TIMEOUT_MS, detail, sizeof(detail));
	proto_msg_free(rep);
	rep = NULL;
	/* What was there before, unless the last run already told us. */
	if (r == 0 && !s->ws)
		r = list_workspace(c, s, &s->ws, detail, sizeof(detail));
	if (r == 0 && (r = put_inputs(sm, s, user, req, why, whylen, detail, sizeof(detail))) < -2) {
		rc = r;		/* a bad ref, not a sandbox failure */
		goto out;
	}
	if (r < 0) {
		*lost = r == -1;	/* before the run: safe to retry */
		goto sandbox_failed;
	}
	r = runner_call(s, run, &rep, c->max_run_timeout_s * 1000 + RUN_GRACE_MS,
	    detail, sizeof(detail));
	if (r < 0)
		goto sandbox_failed;
	if (fill_result(c, rep, res) < 0) {
		snprintf(why, whylen, "out of memory");
		rc = SESS_EINTERNAL;
		goto out;
	}
	/* Outputs are captured whatever the exit status or a timeout. */
	if ((r = list_workspace(c, s, &after, detail, sizeof(detail))) < 0) {
		log_error("session %s: outputs not listed: %s", s->id, detail);
		if (r == -1)
			forget_channel(s);
		goto out;
	}
	capture_outputs(sm, s, user, req, file, after, res);
	workspace_free(s->ws);
	s->ws = after;
	goto out;
sandbox_failed:
	log_error("session %s: %s", s->id, detail);
	if (r == -1)
		forget_channel(s);
	snprintf(why, whylen, "the sandbox failed during the run; try again");
	rc = SESS_ESANDBOX;
out:
	proto_msg_free(put);
	proto_msg_free(run);
	proto_msg_free(rep);
	return rc;
}

int
sessions_exec(struct sessions *sm, const char *user, const struct exec_req *req,
    struct exec_result *res, char *why, size_t whylen)
{
	struct db_session row;
	struct session *s;
	int rc, lost, attempt;

	memset(res, 0, sizeof(*res));
	for (attempt = 0;; attempt++) {
		if (resolve_row(sm, user, req, &row) < 0) {
			snprintf(why, whylen, "session store unavailable");
			return SESS_EINTERNAL;
		}
		pthread_mutex_lock(&sm->mu);
		s = table_get(sm, &row);
		pthread_mutex_unlock(&sm->mu);
		if (!s) {
			snprintf(why, whylen, "out of memory");
			return SESS_EINTERNAL;
		}
		pthread_mutex_lock(&s->lock);
		/* Ended (deleted, expired) while we waited: resolve again. */
		if (!s->gone)
			break;
		pthread_mutex_unlock(&s->lock);
		session_release(sm, s);
		if (attempt == 3) {
			snprintf(why, whylen, "the session ended while this call waited; try again");
			return SESS_EINTERNAL;
		}
	}
	memcpy(res->session_id, s->id, sizeof(res->session_id));
	/* A channel that died between calls is found out on first use: retry once. */
	for (attempt = 0; attempt < 2; attempt++) {
		if ((rc = ensure_channel(sm, s, why, whylen)) != SESS_OK)
			break;
		rc = run_in_session(sm, s, user, req, res, &lost, why, whylen);
		if (rc == SESS_OK || !lost)
			break;
		exec_result_free(res);
	}
	pthread_mutex_unlock(&s->lock);
	/* Answered: now a pool that gave a sandbox may make the next. */
	pool_kick(sm->pool);
	if (rc == SESS_OK) {
		db_session_touch(sm->db, s->id, clock_wall_ms());
		log_info("session %s: exec %s exit=%d%s %ldms, %zu file(s)", s->id, req->lang->id,
		    res->exit_code, res->timed_out ? " timeout" : "", res->wall_ms, res->nfiles);
	}
	session_release(sm, s);
	return rc;
}

/* ---- lifecycle: list, delete, sweep ---- */

static long long
ttl_ms(const struct cfg *c)
{
	return (long long)(c->session_ttl_min * 60000.0);
}

struct list_ctx {
	struct sessions *sm;
	const char *user;	/* NULL: everyone's */
	session_info_cb cb;
	void *ctx;
};

static int
list_one(const struct db_session *row, long files, long long bytes, void *ctxv)
{
	struct list_ctx *l = ctxv;
	const struct cfg *c = l->sm->cfg;

	if (l->user && strcmp(l->user, row->user_id) != 0)
		return 0;
	{
	struct session_info info = { row, (c->session_ttl_idle ? row->last_used_at :
	    row->created_at) + ttl_ms(c), files, bytes, row->container_id[0] != '\0' };

	return l->cb(&info, l->ctx);
	}
}

int
sessions_list(struct sessions *sm, const char *user, session_info_cb cb, void *ctx)
{
	struct list_ctx l = { sm, user, cb, ctx };

	return db_session_list(sm->db, list_one, &l);
}

/*
 * End s: out of the table, container removed, row in state.  Caller holds
 * a reference and s->lock.
 */
static void
retire(struct sessions *sm, struct session *s, const char *state, const char *why)
{
	pthread_mutex_lock(&sm->mu);
	if (!s->gone)
		table_unlink(sm, s);
	pthread_mutex_unlock(&sm->mu);
	drop_container(sm, s, why);
	db_session_set_state(sm->db, s->id, state);
	log_info("session %s %s", s->id, strcmp(state, "expired") == 0 ? "expired" : "ended");
}

/* The cached session for id with a reference, or NULL if not cached. */
static struct session *
cached(struct sessions *sm, const char *id)
{
	struct session *s;

	pthread_mutex_lock(&sm->mu);
	if ((s = table_find(sm, id)))
		s->refs++;
	pthread_mutex_unlock(&sm->mu);
	return s;
}

/* A session the table does not hold (after a restart): its container by id. */
static void
remove_uncached(struct sessions *sm, const struct db_session *row)
{
	struct docker_err err = { 0, "" };

	if (row->container_id[0] && docker_remove(sm->dk, row->container_id, &err) != DOCKER_OK)
		log_error("session %s: %s", row->id, err.msg);
}

static int
delete_file_row(const struct db_file *f, void *ctx)
{
	struct sessions *sm = ctx;

	files_delete(sm->db, sm->blobs, f->bucket, f->id);
	return 0;
}

int
sessions_delete(struct sessions *sm, const char *id, const char *user)
{
	struct db_session row;
	struct session *s;

	if (!id_valid(id) || db_session_get(sm->db, id, &row) < 0 ||
	    strcmp(row.state, "active") != 0 || (user && strcmp(user, row.user_id) != 0))
		return -ENOENT;
	if ((s = cached(sm, id))) {
		pthread_mutex_lock(&s->lock);
		retire(sm, s, "deleted", "the session was deleted");
		pthread_mutex_unlock(&s->lock);
		session_release(sm, s);
	} else {
		remove_uncached(sm, &row);
	}
	db_file_list(sm->db, id, delete_file_row, sm);
	db_session_delete(sm->db, id);
	metrics_sessions_ended(sm->mx, 0, 1);
	log_info("session %s deleted with its files", id);
	return 0;
}

struct sweep_count {
	struct sessions *sm;
	int expired, busy;
	long files;
};

static int
expire_one(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct sweep_count *n = ctx;
	struct sessions *sm = n->sm;
	struct session *s = cached(sm, row->id);

	if (!s) {
		remove_uncached(sm, row);
		db_session_set_state(sm->db, row->id, "expired");
		log_info("session %s expired", row->id);
		n->expired++;
		return 0;
	}
	/* Mid-run: never cut short; the next sweep takes it. */
	if (pthread_mutex_trylock(&s->lock) == 0) {
		retire(sm, s, "expired", "its TTL ran out");
		pthread_mutex_unlock(&s->lock);
		n->expired++;
	} else {
		n->busy++;
	}
	session_release(sm, s);
	return 0;
}

static int
expire_file(const struct db_file *f, void *ctx)
{
	struct sweep_count *n = ctx;

	if (files_delete(n->sm->db, n->sm->blobs, f->bucket, f->id) == 0)
		n->files++;
	return 0;
}

/* Sessions unused since cutoff_ms lose their container (not their files). */
static void
evict_idle(struct sessions *sm, long long cutoff_ms)
{
	struct evict_ctx e = { sm, "idle for CI_CONTAINER_IDLE_MINUTES", 0, 0, 0 };

	db_session_holding(sm->db, cutoff_ms, INT_MAX, evict_one, &e);
	metrics_evicted(sm->mx, "idle", e.evicted);
	if (e.evicted)
		log_info("sweep: %d idle session(s) gave back their container", e.evicted);
}

void
sessions_sweep(struct sessions *sm)
{
	const struct cfg *c = sm->cfg;
	struct sweep_count n = { sm, 0, 0, 0 };
	long long now = clock_wall_ms();

	db_session_expired(sm->db, now, ttl_ms(c), c->session_ttl_idle, expire_one, &n);
	if (c->container_idle_min > 0)
		evict_idle(sm, now - (long long)(c->container_idle_min * 60000.0));
	db_file_older(sm->db, now - (long long)(c->file_retention_h * 3600000.0),
	    expire_file, &n);
	metrics_sessions_ended(sm->mx, n.expired, 0);
	metrics_sweep_done(sm->mx);
	if (n.expired || n.busy || n.files)
		log_info("sweep: %d session(s) expired, %d mid-run left for the next sweep, "
		    "%ld file(s) past retention deleted", n.expired, n.busy, n.files);
}

int
sessions_sample(struct sessions *sm, struct metrics_sample *out)
{
	struct db_totals t;

	out->docker_errors = docker_error_count(sm->dk);
	out->pool_size = sm->pool ? pool_size(sm->pool) : -1;
	if (db_totals(sm->db, &t) < 0) {
		out->sessions_active = out->containers_live = out->files_stored = -1;
		out->bytes_stored = -1;
		return -1;
	}
	out->sessions_active = (long)t.sessions_active;
	out->containers_live = (long)t.containers;
	out->files_stored = (long)t.files;
	out->bytes_stored = t.bytes;
	return 0;
}

int
sessions_health(struct sessions *sm, char *why, size_t whylen)
{
	struct docker_err err = { 0, "" };
	char dberr[256];

	if (docker_ping(sm->dk, &err) != DOCKER_OK) {
		snprintf(why, whylen, "docker engine unavailable: %s", err.msg);
		return -1;
	}
	if (db_check_writable(sm->db, dberr, sizeof(dberr)) < 0) {
		snprintf(why, whylen, "database not writable: %s", dberr);
		return -1;
	}
	return 0;
}

static void *
sweeper_main(void *arg)
{
	struct sessions *sm = arg;
	long long ns = (long long)(sm->cfg->sweep_interval_s * 1e9);
	struct timespec until;

	pthread_mutex_lock(&sm->sweep_mu);
	while (!sm->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(ns / 1000000000LL);
		until.tv_nsec += (long)(ns % 1000000000LL);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&sm->sweep_cv, &sm->sweep_mu, &until);
		if (sm->stopping)
			break;
		pthread_mutex_unlock(&sm->sweep_mu);
		sessions_sweep(sm);
		pthread_mutex_lock(&sm->sweep_mu);
	}
	pthread_mutex_unlock(&sm->sweep_mu);
	return NULL;
}

int
sessions_start_pool(struct sessions *sm)
{
	struct pool_hooks hooks = { reserve_slot, release_slot, sm };

	if (sm->cfg->pool_size == 0)
		return 0;
	if (!(sm->pool = pool_new(sm->cfg, sm->dk, &hooks)))
		return -ENOMEM;
	return pool_start(sm->pool);
}

void
sessions_stop_pool(struct sessions *sm)
{
	/* No request is left and the sweeper has stopped: only the pool's thread
	 * used it, and pool_free joins that first. */
	pool_free(sm->pool);
	sm->pool = NULL;
}

int
sessions_start_sweeper(struct sessions *sm)
{
	int rc = pthread_create(&sm->sweeper, NULL, sweeper_main, sm);

	if (rc == 0)
		sm->sweeping = 1;
	return -rc;
}

void
sessions_stop_sweeper(struct sessions *sm)
{
	if (!sm->sweeping)
		return;
	pthread_mutex_lock(&sm->sweep_mu);
	sm->stopping = 1;
	pthread_cond_signal(&sm->sweep_cv);
	pthread_mutex_unlock(&sm->sweep_mu);
	pthread_join(sm->sweeper, NULL);
	sm->sweeping = 0;
}

static int
close_one(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct sessions *sm = ctx;
	struct session *s = cached(sm, row->id);

	if (!s) {
		if (row->container_id[0]) {
			remove_uncached(sm, row);
			db_session_set_container(sm->db, row->id, NULL);
		}
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	drop_container(sm, s, "the proxy is shutting down");
	pthread_mutex_unlock(&s->lock);
	session_release(sm, s);
	return 0;
}

void
sessions_close_all(struct sessions *sm)
{
	db_session_list(sm->db, close_one, sm);
}

/* ---- startup reconcile ---- */

struct seen {
	char (*ids)[DOCKER_ID_MAX];
	size_t n, alloc;
};

static int
remember(struct seen *v, const char *id)
{
	char (*grown)[DOCKER_ID_MAX];

	if (v->n == v->alloc) {
		v->alloc = v->alloc ? v->alloc * 2 : 32;
		if (!(grown = realloc(v->ids, v->alloc * sizeof(*grown))))
			return -1;
		v->ids = grown;
	}
	snprintf(v->ids[v->n++], DOCKER_ID_MAX, "%s", id);
	return 0;
}

struct reconcile {
	struct sessions *sm;
	struct seen kept;
	int adopted, removed;
};

static void
remove_container(struct reconcile *rc, const char *id, const char *why)
{
	struct docker_err err = { 0, "" };

	if (docker_remove(rc->sm->dk, id, &err) != DOCKER_OK) {
		log_error("startup: cannot remove container %.12s: %s", id, err.msg);
		return;
	}
	log_info("startup: removed container %.12s (%s)", id, why);
	rc->removed++;
}

static int
reconcile_labelled(const struct docker_container *c, void *ctx)
{
	struct reconcile *rc = ctx;
	struct sessions *sm = rc->sm;
	struct db_session row;

	if (c->pooled && !c->session[0]) {
		/* From a warm pool: a session's if the database says so, else unused. */
		if (db_session_by_container(sm->db, c->id, &row) < 0) {
			remove_container(rc, c->id, "an unused warm-pool container");
			return 0;
		}
	} else if (!id_valid(c->session) || db_session_get(sm->db, c->session, &row) < 0) {
		remove_container(rc, c->id, "no such session");
		return 0;
	}
	if (strcmp(row.state, "active") != 0) {
		remove_container(rc, c->id, "its session has ended");
		return 0;
	}
	if (row.container_id[0] && strcmp(row.container_id, c->id) != 0) {
		remove_container(rc, c->id, "its session has another container");
		return 0;
	}
	if (strcmp(c->state, "running") != 0) {
		remove_container(rc, c->id, "not running");
		return 0;
	}
	if (!row.container_id[0])
		db_session_set_container(sm->db, row.id, c->id);
	remember(&rc->kept, c->id);
	rc->adopted++;
	return 0;
}

/* The image name without the registry prefixes engines add. */
static const char *
bare_image(const char *image)
{
	static const char *const strip[] = { "localhost/", "docker.io/library/", "docker.io/" };
	size_t i, n;

	for (i = 0; i < sizeof(strip) / sizeof(strip[0]); i++) {
		n = strlen(strip[i]);
		if (strncmp(image, strip[i], n) == 0)
			return image + n;
	}
	return image;
}

static int
reconcile_by_image(const struct docker_container *c, void *ctx)
{
	struct reconcile *rc = ctx;
	const char *list = rc->sm->cfg->image_prefixes, *p = list, *image = bare_image(c->image);
	size_t n;

	if (c->labelled)
		return 0;	/* handled by label */
	while (*p) {
		n = strcspn(p, ",");
		if (n && strncmp(image, p, n) == 0) {
			remove_container(rc, c->id, "its image matches CI_SANDBOX_IMAGE_PREFIXES");
			break;
		}
		p += n + (p[n] == ',');
	}
	return 0;
}

static int
forget_gone(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct reconcile *rc = ctx;
	size_t i;

	if (!row->container_id[0])
		return 0;
	for (i = 0; i < rc->kept.n; i++)
		if (strcmp(rc->kept.ids[i], row->container_id) == 0)
			return 0;
	db_session_set_container(rc->sm->db, row->id, NULL);
	log_info("startup: session %s lost its container; its next call re-creates it", row->id);
	return 0;
}

void
sessions_reconcile(struct sessions *sm)
{
	struct reconcile rc = { sm, { NULL, 0, 0 }, 0, 0 };
	struct docker_err err = { 0, "" };

	if (docker_list_containers(sm->dk, sm->cfg->sandbox_label, "1", reconcile_labelled, &rc,
	    &err) != DOCKER_OK) {
		log_error("startup: cannot list containers: %s", err.msg);
		goto out;
	}
	if (sm->cfg->image_prefixes[0] &&
	    docker_list_containers(sm->dk, sm->cfg->sandbox_label, NULL, reconcile_by_image, &rc,
	    &err) != DOCKER_OK)
		log_error("startup: cannot list containers: %s", err.msg);
	db_session_list(sm->db, forget_gone, &rc);
	log_info("startup: %d container(s) adopted, %d removed", rc.adopted, rc.removed);
out:
	free(rc.kept.ids);
}
