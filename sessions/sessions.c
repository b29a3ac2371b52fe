/*
 * The session manager's life and its admin view: creation and teardown,
 * listing, deleting a session with its files, ending a session (shared with
 * the sweeper), metrics samples, health, the warm pool's start and stop, and
 * removing every container at shutdown.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions_int.h"

int
caller_may_use(const struct caller *who, const char *owner)
{
	if (who->user && strcmp(owner, who->user) == 0)
		return 1;
	/* Unverified: no name is no claim; a file of no one's is anyone's with its id. */
	return !who->verified && (!who->user || strcmp(owner, SESSIONS_ANONYMOUS) == 0);
}

/* A database or file-store write that failed: logged and counted, never taken for done. */
void
store_failed(struct sessions *sm, const char *what, const char *id)
{
	log_error("session %s: could not %s in storage", id, what);
	metrics_store_failed(sm->mx);
}

/* The manager, its sandboxes from sbx (copied; its state borrowed). */
static struct sessions *
manager_new(const struct cfg *cfg, const struct sandboxes *sbx, struct db *db,
    struct blobs *blobs, struct metrics *mx)
{
	struct sessions *sm = calloc(1, sizeof(*sm));

	if (!sm)
		return NULL;
	sm->cfg = cfg;
	sm->sbx = *sbx;
	sm->db = db;
	sm->blobs = blobs;
	sm->mx = mx;
	pthread_mutex_init(&sm->cap_mu, NULL);
	pthread_mutex_init(&sm->mu, NULL);
	pthread_mutex_init(&sm->sweep_mu, NULL);
	pthread_cond_init(&sm->sweep_cv, NULL);
	return sm;
}

/* A manager whose sandboxes are the Engine's containers on dk; NULL if out of memory. */
struct sessions *
sessions_new(const struct cfg *cfg, struct docker *dk, struct db *db, struct blobs *blobs,
    struct metrics *mx)
{
	struct sandboxes sbx;
	struct sessions *sm;

	if (sandboxes_docker_init(&sbx, cfg, dk) < 0)
		return NULL;
	if (!(sm = manager_new(cfg, &sbx, db, blobs, mx))) {
		sandboxes_docker_fini(&sbx);
		return NULL;
	}
	sm->dk = dk;
	sm->own_sbx = 1;
	return sm;
}

/* A manager with sandboxes from sbx (the unit tests' fake) and no Engine client. */
struct sessions *
sessions_new_with(const struct cfg *cfg, const struct sandboxes *sbx, struct db *db,
    struct blobs *blobs, struct metrics *mx)
{
	return manager_new(cfg, sbx, db, blobs, mx);
}

/* Close channels and free the manager; containers are left for the next start. */
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
	if (sm->own_sbx)
		sandboxes_docker_fini(&sm->sbx);
	pthread_mutex_destroy(&sm->cap_mu);
	pthread_mutex_destroy(&sm->mu);
	pthread_mutex_destroy(&sm->sweep_mu);
	pthread_cond_destroy(&sm->sweep_cv);
	free(sm);
}


/* CI_SESSION_TTL_MINUTES in milliseconds. */
long long
session_ttl_ms(const struct cfg *c)
{
	return (long long)(c->session_ttl_min * 60000.0);
}

struct list_ctx {
	struct sessions *sm;
	const char *user;	/* NULL: everyone's */
	session_info_cb cb;
	void *ctx;
};

/* One row of the listing, as the admin view shows it. */
static int
list_one(const struct db_session *row, long files, long long bytes, void *ctxv)
{
	struct list_ctx *l = ctxv;
	const struct cfg *c = l->sm->cfg;
	struct session_info info = {
		.id = row->id, .user = row->user_id, .container_id = row->container_id,
		.state = row->state, .created_at = row->created_at,
		.last_used_at = row->last_used_at,
		.expires_at = (c->session_ttl_idle ? row->last_used_at : row->created_at) +
		    session_ttl_ms(c),
		.files = files, .bytes = bytes, .live = row->container_id[0] != '\0',
	};

	if (l->user && strcmp(l->user, row->user_id) != 0)
		return 0;
	return l->cb(&info, l->ctx);
}

/* Call cb for each active session of user (everyone's if NULL); non-zero stops. */
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
void
session_retire(struct sessions *sm, struct session *s, const char *state, const char *why)
{
	pthread_mutex_lock(&sm->mu);
	if (!s->gone)
		registry_unlink(sm, s);
	pthread_mutex_unlock(&sm->mu);
	drop_container(sm, s, why);
	if (db_session_set_state(sm->db, s->id, state) < 0) {
		store_failed(sm, "record its end", s->id);
		return;
	}
	log_info("session %s %s", s->id, strcmp(state, "expired") == 0 ? "expired" : "ended");
}

/* A session the table does not hold (after a restart): its container by id. */
void
remove_uncached_container(struct sessions *sm, const struct db_session *row)
{
	struct docker_err err = { 0, "" };

	if (row->container_id[0] && sandbox_remove(&sm->sbx, row->container_id, &err) != DOCKER_OK)
		log_error("session %s: %s", row->id, err.msg);
}

struct delete_ctx {
	struct sessions *sm;
	int failed;
};

/* Delete one of the session's files, row and blob; count a failure. */
static int
delete_file_row(const struct db_file *f, void *ctx)
{
	struct delete_ctx *d = ctx;
	int rc = files_delete(d->sm->db, d->sm->blobs, f->bucket, f->id);

	/* Gone already: the sweeper finishing the same delete got there first. */
	if (rc < 0 && rc != -ENOENT)
		d->failed++;
	return 0;
}

/*
 * The rest of a delete, once the row says "deleted": the container it
 * still names, the files, then the row, which goes last so that a crash or
 * a failure anywhere before leaves the mark for the sweeper (which calls
 * this again).  0, or -EIO with the row kept.
 */
int
session_finish_delete(struct sessions *sm, const struct db_session *row)
{
	struct delete_ctx d = { sm, 0 };
	struct docker_err err = { 0, "" };
	int rc;

	if (row->container_id[0] && (rc = sandbox_remove(&sm->sbx, row->container_id, &err)) !=
	    DOCKER_OK && rc != DOCKER_ENOTFOUND) {
		log_error("session %s: %s", row->id, err.msg);
		d.failed++;	/* the row keeps the container's id for the next try */
	}
	if (db_file_list(sm->db, row->id, delete_file_row, &d) < 0)
		d.failed++;
	if (!d.failed && (rc = db_session_delete(sm->db, row->id)) < 0 && rc != -ENOENT)
		d.failed++;
	if (d.failed) {
		store_failed(sm, "delete all of its container, files and row", row->id);
		return -EIO;
	}
	return 0;
}

/*
 * End the session id of user's (anyone's if user is NULL) with its
 * container and files.  -ENOENT if there is no such active session; -EIO
 * if it ended but the engine or storage kept some of it (logged and
 * counted; the sweeper finishes the delete).
 */
int
sessions_delete(struct sessions *sm, const char *id, const char *user)
{
	struct db_session row;
	struct session *s;
	int rc;

	if (!id_valid(id) || db_session_get(sm->db, id, &row) < 0 ||
	    strcmp(row.state, "active") != 0 || (user && strcmp(user, row.user_id) != 0))
		return -ENOENT;
	if ((s = registry_cached(sm, id))) {
		pthread_mutex_lock(&s->lock);
		session_retire(sm, s, "deleted", "the session was deleted");
		pthread_mutex_unlock(&s->lock);
		session_release(sm, s);
	} else if (db_session_set_state(sm->db, id, "deleted") < 0) {
		/* Without the mark nothing is deleted: a half-deleted session would live on. */
		store_failed(sm, "record its deletion", id);
		return -EIO;
	}
	metrics_sessions_ended(sm->mx, 0, 1);
	/* Again: a container the engine would not remove is still named there. */
	if ((rc = db_session_get(sm->db, id, &row)) == -ENOENT)
		goto done;	/* the sweeper finished it meanwhile */
	if (rc < 0 || strcmp(row.state, "deleted") != 0) {
		store_failed(sm, "record its deletion", id);
		return -EIO;
	}
	if (session_finish_delete(sm, &row) < 0)
		return -EIO;
done:
	log_info("session %s deleted with its files", id);
	return 0;
}

/* Sample the /metrics gauges into out; -1, with -1 fields, if the database failed. */
int
sessions_sample(struct sessions *sm, struct metrics_sample *out)
{
	struct db_totals t;

	out->docker_errors = sandbox_engine_errors(&sm->sbx);
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

/* 0 when the engine answers and the database takes writes; else -1 and why. */
int
sessions_health(struct sessions *sm, char *why, size_t whylen)
{
	struct docker_err err = { 0, "" };
	char dberr[256];

	if (sandbox_engine_ping(&sm->sbx, &err) != DOCKER_OK) {
		snprintf(why, whylen, "docker engine unavailable: %s", err.msg);
		return -1;
	}
	if (db_check_writable(sm->db, dberr, sizeof(dberr)) < 0) {
		snprintf(why, whylen, "database not writable: %s", dberr);
		return -1;
	}
	return 0;
}

/* Make and start the warm pool unless CI_POOL_SIZE is 0; 0, or -errno. */
int
sessions_start_pool(struct sessions *sm)
{
	struct pool_hooks hooks = { reserve_slot, release_slot, sm };

	if (sm->cfg->pool_size == 0)
		return 0;
	if (!(sm->pool = pool_new(sm->cfg, &sm->sbx, &hooks)))
		return -ENOMEM;
	return pool_start(sm->pool);
}

/* Stop the warm pool and remove its containers. */
void
sessions_stop_pool(struct sessions *sm)
{
	/* No request is left and the sweeper has stopped: only the pool's thread
	 * used it, and pool_free joins that first. */
	pool_free(sm->pool);
	sm->pool = NULL;
}

/* At shutdown: remove row's container, cached or not; the session stays. */
static int
close_one(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct sessions *sm = ctx;
	struct session *s = registry_cached(sm, row->id);

	if (!s) {
		if (row->container_id[0]) {
			remove_uncached_container(sm, row);
			if (db_session_set_container(sm->db, row->id, NULL) < 0)
				store_failed(sm, "forget its container", row->id);
		}
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	drop_container(sm, s, "the proxy is shutting down");
	pthread_mutex_unlock(&s->lock);
	session_release(sm, s);
	return 0;
}

/* At shutdown: remove every session's container; sessions and their files stay. */
void
sessions_close_all(struct sessions *sm)
{
	db_session_list(sm->db, close_one, sm);
}
