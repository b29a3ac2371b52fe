/*
 * Containers for sessions: the CI_MAX_LIVE_CONTAINERS cap (a slot is
 * reserved while a container is made), the warm pool, eviction of the least
 * recently used or idle session's container, and making sure a session has
 * a running container with an open runner channel.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions_int.h"

/* The SESS_* code for a DOCKER_* failure. */
static int
sess_rc_of_docker(int rc)
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
		store_failed(sm, "record its container", s->id);
	log_info("session %s: container %.12s %s", s->id, sb->id, how);
}

/* Log a failed sandbox start for s; its SESS_* code, with a reason in why. */
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
	return sess_rc_of_docker(rc);
}

/*
 * Forget the channel and what it told us, but not the container: after an
 * engine (or Podman service) restart the container often runs on, and the
 * next call inspects it and opens a new channel, or replaces it.
 */
void
forget_channel(struct session *s)
{
	channel_close(s->ch);
	s->ch = NULL;
	workspace_free(s->ws);
	s->ws = NULL;
}

/* Remove s's container and forget it, channel too; the id stays if the engine is away. */
void
drop_container(struct sessions *sm, struct session *s, const char *reason)
{
	struct docker_err err = { 0, "" };
	int rc;

	forget_channel(s);
	if (!s->container_id[0])
		return;
	log_warn("session %s: removing container %.12s: %s", s->id, s->container_id, reason);
	if ((rc = sandbox_remove(&sm->sbx, s->container_id, &err)) != DOCKER_OK) {
		log_error("session %s: %s", s->id, err.msg);
		/* Unreachable engine: keep the id, so the container is not orphaned. */
		if (rc == DOCKER_EUNAVAIL)
			return;
	}
	s->container_id[0] = '\0';
	if (db_session_set_container(sm->db, s->id, NULL) < 0)
		store_failed(sm, "forget its container", s->id);
	/* A slot is free: the pool may refill. */
	pool_kick(sm->pool);
}


/*
 * A slot for one more container, under CI_MAX_LIVE_CONTAINERS: the
 * sessions holding one (the database says), the pooled ones and those
 * being made count.  1 if granted; give it back with release_slot once the
 * container is recorded (or was not made).
 */
int
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

/* Give back a slot reserve_slot granted. */
void
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
	s = registry_get(sm, row);
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
		/* Ended meanwhile: registry_get must not have brought it back. */
		pthread_mutex_lock(&sm->mu);
		registry_unlink(sm, s);
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
	rc = sandbox_make(&sm->sbx, s->id, &sb, &at_runner, &err);
	if (rc == DOCKER_OK)
		hold_sandbox(sm, s, &sb, "started");
	release_slot(sm);
	if (rc != DOCKER_OK)
		return sandbox_failure(sm, s, rc, at_runner, &err, why, whylen);
	metrics_container_started(sm->mx, (double)(clock_mono_ms() - t0) / 1000);
	return SESS_OK;
}

/* Make sure s has a running container with an open channel.  Caller holds s->lock. */
int
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
		rc = sandbox_running(&sm->sbx, s->container_id, &running, &err);
		if (rc == DOCKER_EUNAVAIL) {
			log_error("session %s: %s", s->id, err.msg);
			snprintf(why, whylen, "docker engine unavailable");
			return SESS_EUNAVAIL;
		}
		if (rc == DOCKER_OK && running &&
		    sandbox_attach(&sm->sbx, s->container_id, &s->ch, &err) == DOCKER_OK)
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

/* Sessions unused since cutoff_ms lose their container (not their files). */
void
evict_idle(struct sessions *sm, long long cutoff_ms)
{
	struct evict_ctx e = { sm, "idle for CI_CONTAINER_IDLE_MINUTES", 0, 0, 0 };

	db_session_holding(sm->db, cutoff_ms, INT_MAX, evict_one, &e);
	metrics_evicted(sm->mx, "idle", e.evicted);
	if (e.evicted)
		log_info("sweep: %d idle session(s) gave back their container", e.evicted);
}
