/*
 * One /exec, in order: resolve and lock the session, make sure it has a
 * container and an open channel, write the code, put the inputs, run,
 * capture the outputs.  A channel that died between calls is found on first
 * use and the exec is retried once.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions_int.h"

/* Free what res holds and leave it empty. */
void
exec_result_free(struct exec_result *res)
{
	size_t i;

	free(res->out);
	free(res->err);
	for (i = 0; i < res->nfiles; i++)
		free(res->files[i].name);
	free(res->files);
	for (i = 0; i < res->ndeleted; i++)
		free(res->deleted[i]);
	free(res->deleted);
	res->out = res->err = NULL;
	res->files = NULL;
	res->deleted = NULL;
	res->nfiles = res->ndeleted = 0;
}

/* What one /exec is: for whom, what, and who may call it off. */
struct exec_call {
	const struct caller *who;
	const struct exec_req *req;
	const struct abort_check *gone;
	const struct tool_hooks *tools;
};

/* s's program waits for its client (1) or runs again (0). */
static void
mark_waiting(struct sessions *sm, struct session *s, int waiting)
{
	pthread_mutex_lock(&sm->mu);
	s->in_ptc = waiting;
	pthread_mutex_unlock(&sm->mu);
}

/*
 * The RUN, and for a program that calls tools each round of calls it
 * waits on: answered by the hooks, sent back in a RESUME (or a CANCEL when
 * they say stop), until the runner gives the run's final reply.
 */
static enum runner_rc
run_program(struct sessions *sm, struct session *s, const struct exec_call *x,
    const struct proto_msg *run, int timeout_ms, struct proto_msg **rep, char *detail,
    size_t detlen)
{
	struct proto_msg *next;
	const char *calls;
	enum runner_rc rr;
	uint64_t pending;
	char *results;
	size_t len, rlen;

	rr = runner_call(s, run, rep, timeout_ms, x->gone, detail, detlen);
	while (rr == RUNNER_OK && x->tools && proto_get_u64(*rep, "pending", &pending) == 0 &&
	    pending && (calls = proto_get(*rep, "calls", &len))) {
		mark_waiting(sm, s, 1);
		results = x->tools->answer(x->tools->ctx, calls, len, &rlen);
		mark_waiting(sm, s, 0);
		next = proto_msg_new(results ? PROTO_RESUME : PROTO_CANCEL);
		if (next && results && proto_add(next, "results", results, rlen) < 0) {
			proto_msg_free(next);
			next = NULL;
		}
		proto_msg_free(*rep);
		*rep = NULL;
		if (!next) {
			free(results);
			snprintf(detail, detlen, "out of memory for tool results");
			return RUNNER_EFAILED;
		}
		/* A CANCEL is not itself watched: one is enough. */
		rr = runner_call(s, next, rep, timeout_ms, results ? x->gone : NULL, detail, detlen);
		free(results);
		proto_msg_free(next);
	}
	return rr;
}

/*
 * The answer to a run during which the whole sandbox was OOM-killed: under
 * gVisor the host's OOM killer can only pick the Sentry, which holds all of
 * the sandbox's memory, so nothing of the run survives to report it.  As the
 * runner's answer for a killed program (exit 137, SIGKILL), with a note.
 */
static int
oom_result(const struct cfg *c, struct exec_result *res)
{
	char note[400];
	int n;

	n = snprintf(note, sizeof(note), "Killed by SIGKILL: the program ran out of memory (the "
	    "sandbox limit is %d MiB) and the whole sandbox was stopped with it; its output is "
	    "lost. Files saved by earlier calls are kept; the next call starts a new sandbox.\n",
	    c->max_memory_mb);
	free(res->out);
	free(res->err);
	res->out = strdup("");
	res->err = strdup(note);
	if (!res->out || !res->err)
		return -1;
	res->out_len = res->out_total = 0;
	res->err_len = res->err_total = (size_t)n;
	res->exit_code = 137;
	res->signal = 9;
	return 0;
}

/* Write the code and run it.  Caller holds s->lock; s has a channel. */
static int
run_in_session(struct sessions *sm, struct session *s, const struct exec_call *x,
    struct exec_result *res, int *lost, char *why, size_t whylen)
{
	const struct exec_req *req = x->req;
	const struct cfg *c = sm->cfg;
	char namebuf[300];
	const char *file = lang_file(req->lang, req->code, namebuf, sizeof(namebuf));
	struct proto_msg *put = build_put(req, file), *rep = NULL;
	struct proto_msg *run = build_run(c, req, file, x->tools ? x->tools->env : NULL);
	struct workspace *after = NULL;
	char detail[600];
	enum runner_rc rr;
	int rc = SESS_OK;

	*lost = 0;
	if (!put || !run) {
		snprintf(why, whylen, "out of memory");
		rc = SESS_EINTERNAL;
		goto out;
	}
	rr = runner_call(s, put, &rep, CONTROL_TIMEOUT_MS, NULL, detail, sizeof(detail));
	proto_msg_free(rep);
	rep = NULL;
	/* What was there before, unless the last run already told us. */
	if (rr == RUNNER_OK && !s->ws)
		rr = list_workspace(c, s, &s->ws, detail, sizeof(detail));
	if (rr == RUNNER_OK) {
		rc = put_inputs(sm, s, x->who, req, &rr, why, whylen, detail, sizeof(detail));
		if (rc != SESS_OK && rc != SESS_ESANDBOX)
			goto out;	/* a bad ref, not a sandbox failure */
	}
	if (rr != RUNNER_OK) {
		*lost = rr == RUNNER_ELOST;	/* before the run: safe to retry */
		goto sandbox_failed;
	}
	rr = run_program(sm, s, x, run, (int)run_timeout_ms(c, req) + RUN_GRACE_MS, &rep, detail,
	    sizeof(detail));
	if (rr == RUNNER_ELOST && sandbox_oom_killed(&sm->sbx, s->container_id)) {
		log_warn("session %s: container %.12s was stopped whole by the OOM killer during "
		    "the run", s->id, s->container_id);
		forget_channel(s);
		rc = oom_result(c, res) < 0 ? SESS_EINTERNAL : SESS_OK;
		if (rc != SESS_OK)
			snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (rr != RUNNER_OK)
		goto sandbox_failed;
	if (result_from_reply(c, req, rep, res) < 0) {
		snprintf(why, whylen, "out of memory");
		rc = SESS_EINTERNAL;
		goto out;
	}
	if (res->cancelled)
		log_info("session %s: run stopped after %ld ms: the client went away", s->id,
		    res->wall_ms);
	/* Outputs are captured whatever the exit status or a timeout. */
	if ((rr = list_workspace(c, s, &after, detail, sizeof(detail))) != RUNNER_OK) {
		log_error("session %s: outputs not listed: %s", s->id, detail);
		if (rr == RUNNER_ELOST)
			forget_channel(s);
		goto out;
	}
	capture_outputs(sm, s, req, file, after, res);
	workspace_free(s->ws);
	s->ws = after;
	goto out;
sandbox_failed:
	log_error("session %s: %s", s->id, detail);
	if (rr == RUNNER_ELOST)
		forget_channel(s);
	snprintf(why, whylen, "the sandbox failed during the run; try again");
	rc = SESS_ESANDBOX;
out:
	proto_msg_free(put);
	proto_msg_free(run);
	proto_msg_free(rep);
	return rc;
}

/*
 * Take s's lock for an exec.  One that finds a program of the session
 * waiting for its client's tool results does not wait (that may be minutes,
 * and the client may be waiting for this very exec): -1.  Else 0.
 */
static int
lock_session(struct sessions *sm, struct session *s)
{
	int busy;

	if (pthread_mutex_trylock(&s->lock) == 0)
		return 0;
	pthread_mutex_lock(&sm->mu);
	busy = s->in_ptc;
	pthread_mutex_unlock(&sm->mu);
	if (busy)
		return -1;
	pthread_mutex_lock(&s->lock);
	return 0;
}

/* Run req in user's session; SESS_OK even if the program failed, else an error and why. */
int
sessions_exec(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    const struct exec_hooks *hooks, struct exec_result *res, char *why, size_t whylen)
{
	const struct exec_call x = { who, req, hooks ? hooks->gone : NULL,
	    hooks ? hooks->tools : NULL };
	struct db_session row;
	struct session *s;
	int rc, lost, attempt, r;

	memset(res, 0, sizeof(*res));
	/* A refused input creates nothing: no session, no container. */
	if ((rc = check_inputs(sm, who, req, why, whylen)) != SESS_OK)
		return rc;
	for (attempt = 0;; attempt++) {
		if ((r = registry_resolve(sm, who, req, &row, &res->created)) < 0) {
			/* A full disk or a lock held elsewhere passes: say which. */
			if (r == -ENOSPC) {
				snprintf(why, whylen, "the session store is full");
				return SESS_EFULL;
			}
			if (r == -EBUSY) {
				snprintf(why, whylen, "the session store is locked by another "
				    "process; try again");
				return SESS_ESTOREBUSY;
			}
			snprintf(why, whylen, "session store unavailable");
			return SESS_EINTERNAL;
		}
		pthread_mutex_lock(&sm->mu);
		s = registry_get(sm, &row);
		pthread_mutex_unlock(&sm->mu);
		if (!s) {
			snprintf(why, whylen, "out of memory");
			return SESS_EINTERNAL;
		}
		if (lock_session(sm, s) < 0) {
			session_release(sm, s);
			snprintf(why, whylen, "the session is running a programmatic tool call; "
			    "try again once it ends");
			return SESS_EBUSY;
		}
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
		rc = run_in_session(sm, s, &x, res, &lost, why, whylen);
		if (rc == SESS_OK || !lost)
			break;
		exec_result_free(res);
	}
	pthread_mutex_unlock(&s->lock);
	/* Answered: now a pool that gave a sandbox may make the next. */
	pool_kick(sm->pool);
	if (rc == SESS_OK) {
		if (db_session_touch(sm->db, s->id, clock_wall_ms()) < 0)
			store_failed(sm, "record its last use", s->id);
		log_info("session %s: exec %s exit=%d%s %ldms, %zu file(s)", s->id, req->lang->id,
		    res->exit_code, res->timed_out ? " timeout" : "", res->wall_ms, res->nfiles);
	}
	session_release(sm, s);
	return rc;
}
