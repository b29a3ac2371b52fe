/*
 * Programmatic tool calling runs (see ptc.h): a table of runs, each with
 * a worker thread that executes the program through sessions_exec and a
 * mailbox between that worker and the HTTP requests of the loop.  The
 * worker publishes a round of calls (or the end) and waits for results;
 * a request hands results in and waits for the next publication.  r->mu
 * guards a run's mailbox; p->mu the table.  A finished run stays listed a
 * while, so that a late cancel learns it had completed.
 */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "log.h"
#include "ptc.h"

/* How long a finished run is remembered for cancel's "already_completed". */
#define PTC_KEEP_DONE_MS (10 * 60 * 1000)
/* How often a waiting request looks whether its client went away. */
#define PTC_POLL_MS 100

struct ptc_run {
	struct ptc *p;
	struct ptc_run *next;
	int refs;			/* under p->mu */
	char owner[DB_USER_MAX];
	struct caller who;		/* who.user points at owner, or is NULL */
	struct exec_req *req;
	int bash;
	struct ptc_tool *tools;
	size_t ntools;
	char *env;			/* CIP_PTC_TOOLS=... */
	char ids[PTC_MAX_ROUNDS + 1][64];	/* the request ids sent so far */
	size_t nids;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* The mailbox, under mu. */
	unsigned gen;			/* bumped at every publication */
	enum ptc_state state;		/* 0: running */
	char token[PTC_TOKEN_LEN + 1];
	long long token_expires;	/* monotonic ms */
	struct json_object *tool_calls;
	char *results;			/* for the worker: the next line of results */
	size_t results_len;
	int cancel;
	int rounds;
	char error[256];
	long long done_at;
	int rc;
	char why[512];
	struct exec_result res;
};

struct ptc {
	const struct cfg *cfg;
	struct sessions *sm;
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* a worker ended */
	struct ptc_run *runs;
	int workers;
};

struct ptc *
ptc_new(const struct cfg *cfg, struct sessions *sm)
{
	struct ptc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cfg = cfg;
	p->sm = sm;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

/* Free a run no one refers to. */
static void
run_free(struct ptc_run *r)
{
	ptc_tools_free(r->tools, r->ntools);
	free(r->env);
	free(r->results);
	json_object_put(r->tool_calls);
	exec_result_free(&r->res);
	exec_req_free(r->req);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

/* Drop a reference to r; the last one, once it is out of the table, frees it. */
static void
run_release(struct ptc *p, struct ptc_run *r)
{
	int last;

	pthread_mutex_lock(&p->mu);
	last = --r->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (last)
		run_free(r);
}

/* Take finished runs past their keeping time out of the table.  Caller holds p->mu. */
static void
reap_done(struct ptc *p)
{
	struct ptc_run **pp = &p->runs, *r;
	long long now = clock_mono_ms();

	while ((r = *pp)) {
		if (r->state == PTC_DONE && now - r->done_at > PTC_KEEP_DONE_MS) {
			*pp = r->next;
			if (--r->refs == 0)
				run_free(r);
			continue;
		}
		pp = &r->next;
	}
}

void
ptc_free(struct ptc *p)
{
	struct ptc_run *r;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	for (r = p->runs; r; r = r->next) {
		pthread_mutex_lock(&r->mu);
		r->cancel = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	while (p->workers)
		pthread_cond_wait(&p->cv, &p->mu);
	while ((r = p->runs)) {
		p->runs = r->next;
		if (--r->refs == 0)
			run_free(r);
	}
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* Publish a state change to the requests waiting on r.  Caller holds r->mu. */
static void
publish(struct ptc_run *r)
{
	r->gen++;
	pthread_cond_broadcast(&r->cv);
}

/*
 * tool_hooks.answer, on the worker: publish the round of calls under a
 * fresh token and wait (the program blocked, its clock stopped) for the
 * results, a cancel, or the token's expiry.
 */
static char *
answer_calls(void *ctx, const char *calls, size_t len, size_t *outlen)
{
	struct ptc_run *r = ctx;
	struct json_object *tc = ptc_calls_parse(r->tools, r->ntools, calls, len, r->error,
	    sizeof(r->error));
	struct timespec until;
	char *results = NULL;
	char a[ID_LEN + 1], b[ID_LEN + 1];

	pthread_mutex_lock(&r->mu);
	if (!tc || r->cancel)
		goto out;
	if (++r->rounds > PTC_MAX_ROUNDS) {
		snprintf(r->error, sizeof(r->error), "more than %d rounds of tool calls",
		    PTC_MAX_ROUNDS);
		goto out;
	}
	if (id_new(a) < 0 || id_new(b) < 0)
		goto out;
	snprintf(r->token, sizeof(r->token), "%s%s", a, b);
	r->token_expires = clock_mono_ms() + (long long)r->p->cfg->ptc_wait_s * 1000;
	json_object_put(r->tool_calls);
	r->tool_calls = tc;
	tc = NULL;
	r->state = PTC_TOOL_CALLS;
	publish(r);
	while (!r->results && !r->cancel && clock_mono_ms() < r->token_expires) {
		until = clock_realtime_in(PTC_POLL_MS * 10);
		pthread_cond_timedwait(&r->cv, &r->mu, &until);
	}
	r->token[0] = '\0';
	r->state = 0;
	if (r->results) {
		results = r->results;
		*outlen = r->results_len;
		r->results = NULL;
	} else if (!r->cancel) {
		snprintf(r->error, sizeof(r->error), "Execution failed or timed out");
		log_warn("ptc: no tool results within CI_PTC_CONTINUATION_SECONDS; run stopped");
	}
out:
	pthread_mutex_unlock(&r->mu);
	json_object_put(tc);
	return results;
}

/* abort_check of the run: cancelled (by the cancel route, a client gone, shutdown). */
static int
run_cancelled(void *ctx)
{
	struct ptc_run *r = ctx;
	int c;

	pthread_mutex_lock(&r->mu);
	c = r->cancel;
	pthread_mutex_unlock(&r->mu);
	return c;
}

/* The worker: the whole run, as one exec with tool hooks. */
static void *
worker_main(void *arg)
{
	struct ptc_run *r = arg;
	struct ptc *p = r->p;
	struct tool_hooks tools = { r->env, answer_calls, r };
	struct abort_check gone = { run_cancelled, r };
	struct exec_hooks hooks = { &gone, r->ntools ? &tools : NULL };
	char why[512];
	int rc;

	/*
	 * r->res is the worker's until it publishes the end; its session_id,
	 * set before the first round of calls, is read after a publication.
	 */
	rc = sessions_exec(p->sm, &r->who, r->req, &hooks, &r->res, why, sizeof(why));
	pthread_mutex_lock(&r->mu);
	r->rc = rc;
	memcpy(r->why, why, sizeof(why));
	r->state = PTC_DONE;
	r->done_at = clock_mono_ms();
	publish(r);
	pthread_mutex_unlock(&r->mu);
	run_release(p, r);
	pthread_mutex_lock(&p->mu);
	p->workers--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/*
 * Wait until r publishes past gen, cancelling it if the client goes away;
 * then fill out from the mailbox.  Caller holds r->mu.
 */
static void
await_publication(struct ptc_run *r, unsigned gen, const struct abort_check *gone,
    struct ptc_reply *out)
{
	struct timespec until;

	while (r->gen == gen) {
		until = clock_realtime_in(PTC_POLL_MS);
		pthread_cond_timedwait(&r->cv, &r->mu, &until);
		if (r->gen == gen && !r->cancel && abort_fired(gone)) {
			r->cancel = 1;
			log_info("ptc: the client went away; run cancelled");
		}
	}
	memset(out, 0, sizeof(*out));
	out->state = r->state;
	out->lang = r->req->lang;
	memcpy(out->session_id, r->res.session_id, sizeof(out->session_id));
	if (r->state == PTC_TOOL_CALLS) {
		memcpy(out->token, r->token, sizeof(out->token));
		out->tool_calls = json_object_get(r->tool_calls);
		return;
	}
	out->rc = r->rc;
	memcpy(out->why, r->why, sizeof(out->why));
	memcpy(out->error, r->error, sizeof(out->error));
	/* The result moves to the one request that sees the end. */
	out->res = r->res;
	memset(&r->res, 0, sizeof(r->res));
	memcpy(r->res.session_id, out->session_id, sizeof(r->res.session_id));
}

/* Remember the request id a request of r came with. */
static void
note_request(struct ptc_run *r, const char *request_id)
{
	if (request_id && r->nids < sizeof(r->ids) / sizeof(r->ids[0]))
		snprintf(r->ids[r->nids++], sizeof(r->ids[0]), "%s", request_id);
}

int
ptc_start(struct ptc *p, const struct caller *who, struct exec_req *req,
    struct json_object *tools, const char *request_id, const struct abort_check *gone,
    struct ptc_reply *out, char *err, size_t errlen)
{
	struct ptc_run *r = calloc(1, sizeof(*r));
	pthread_t t;

	if (!r) {
		exec_req_free(req);
		snprintf(err, errlen, "out of memory");
		return -EINVAL;
	}
	r->p = p;
	r->req = req;
	r->bash = strcmp(req->lang->id, "bash") == 0;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (who->user)
		snprintf(r->owner, sizeof(r->owner), "%s", who->user);
	r->who.user = who->user ? r->owner : NULL;
	r->who.verified = who->verified;
	if (ptc_tools_take(r->bash, tools, &r->tools, &r->ntools, &r->env, err, errlen) < 0) {
		run_free(r);
		return -EINVAL;
	}
	note_request(r, request_id);
	r->refs = 3;		/* the table's, the worker's, ours */
	pthread_mutex_lock(&p->mu);
	reap_done(p);
	r->next = p->runs;
	p->runs = r;
	p->workers++;
	pthread_mutex_unlock(&p->mu);
	if (pthread_create(&t, NULL, worker_main, r) != 0) {
		pthread_mutex_lock(&p->mu);
		p->workers--;
		r->refs--;	/* the worker's */
		pthread_mutex_unlock(&p->mu);
		pthread_mutex_lock(&r->mu);
		r->state = PTC_DONE;
		r->rc = SESS_EINTERNAL;
		snprintf(r->why, sizeof(r->why), "cannot start a worker");
		r->done_at = clock_mono_ms();
		publish(r);
	} else {
		pthread_detach(t);
		pthread_mutex_lock(&r->mu);
	}
	await_publication(r, 0, gone, out);
	pthread_mutex_unlock(&r->mu);
	run_release(p, r);
	return 0;
}

/* The live run token stands for, with a reference; NULL if none.  Caller holds p->mu. */
static struct ptc_run *
find_token(struct ptc *p, const char *token)
{
	struct ptc_run *r;

	if (strlen(token) != PTC_TOKEN_LEN)
		return NULL;
	for (r = p->runs; r; r = r->next) {
		pthread_mutex_lock(&r->mu);
		if (r->state == PTC_TOOL_CALLS && CRYPTO_memcmp(r->token, token, PTC_TOKEN_LEN) == 0 &&
		    clock_mono_ms() < r->token_expires) {
			pthread_mutex_unlock(&r->mu);
			r->refs++;
			return r;
		}
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

int
ptc_continue(struct ptc *p, const struct caller *who, const char *token,
    struct json_object *results, const char *request_id, const struct abort_check *gone,
    struct ptc_reply *out, char *err, size_t errlen)
{
	struct ptc_run *r;
	char *line;
	size_t len = 0;
	unsigned gen;

	pthread_mutex_lock(&p->mu);
	reap_done(p);
	r = find_token(p, token);
	pthread_mutex_unlock(&p->mu);
	if (!r)
		return -ENOENT;
	/* A token is its caller's: another one learns nothing, not even that it exists. */
	if (!caller_may_use(who, r->who.user ? r->who.user : SESSIONS_ANONYMOUS)) {
		run_release(p, r);
		return -ENOENT;
	}
	if (!(line = ptc_results_line(r->bash, results, &len, err, errlen))) {
		run_release(p, r);
		return -EINVAL;
	}
	pthread_mutex_lock(&r->mu);
	/* Single use: the first continuation takes it. */
	if (r->state != PTC_TOOL_CALLS || CRYPTO_memcmp(r->token, token, PTC_TOKEN_LEN) != 0) {
		pthread_mutex_unlock(&r->mu);
		free(line);
		run_release(p, r);
		return -ENOENT;
	}
	r->token[0] = '\0';
	note_request(r, request_id);
	gen = r->gen;
	free(r->results);
	r->results = line;
	r->results_len = len;
	pthread_cond_broadcast(&r->cv);
	await_publication(r, gen, gone, out);
	pthread_mutex_unlock(&r->mu);
	run_release(p, r);
	return 0;
}

int
ptc_cancel(struct ptc *p, const struct caller *who, const char *request_id)
{
	struct ptc_run *r;
	int rc = -ENOENT;
	size_t i;

	pthread_mutex_lock(&p->mu);
	for (r = p->runs; r && (rc == -ENOENT || rc == -EACCES); r = r->next) {
		pthread_mutex_lock(&r->mu);
		for (i = 0; i < r->nids && (rc == -ENOENT || rc == -EACCES); i++) {
			if (strcmp(r->ids[i], request_id) != 0)
				continue;
			/* Another caller's run with the same id: look on, refuse if nothing else matches. */
			if (!caller_may_use(who, r->who.user ? r->who.user : SESSIONS_ANONYMOUS))
				rc = -EACCES;
			else if (r->state == PTC_DONE)
				rc = 1;
			else {
				r->cancel = 1;
				pthread_cond_broadcast(&r->cv);
				rc = 0;
			}
		}
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void
ptc_reply_free(struct ptc_reply *r)
{
	json_object_put(r->tool_calls);
	r->tool_calls = NULL;
	exec_result_free(&r->res);
}
