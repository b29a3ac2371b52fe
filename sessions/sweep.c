/*
 * The sweeper: sessions past their TTL end (never one mid-run), deletes a
 * crash interrupted are finished, idle sessions give back their container,
 * files past retention and blobs no row names are deleted; on a thread
 * that wakes every CI_SWEEP_INTERVAL_SECONDS.
 */
#include "config.h"

#include <time.h>

#include "sessions_int.h"

/*
 * A blob written by this process with no row is swept after this long: a
 * store holds its blob without a row at most for one database write (the
 * 5 s busy timeout), so an hour is never one still in progress.
 */
#define ORPHAN_GRACE_MS (3600LL * 1000)

struct sweep_count {
	struct sessions *sm;
	int expired, busy;
	long files;
};

/* End a session whose TTL ran out, unless it is mid-run (counted as busy). */
static int
expire_one(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct sweep_count *n = ctx;
	struct sessions *sm = n->sm;
	struct session *s = registry_cached(sm, row->id);

	if (!s) {
		remove_uncached_container(sm, row);
		if (db_session_set_state(sm->db, row->id, "expired") < 0) {
			store_failed(sm, "record its expiry", row->id);	/* the next sweep tries again */
			return 0;
		}
		log_info("session %s expired", row->id);
		n->expired++;
		return 0;
	}
	/* Mid-run: never cut short; the next sweep takes it. */
	if (pthread_mutex_trylock(&s->lock) == 0) {
		session_retire(sm, s, "expired", "its TTL ran out");
		pthread_mutex_unlock(&s->lock);
		n->expired++;
	} else {
		n->busy++;
	}
	session_release(sm, s);
	return 0;
}

/* Finish a delete a crash or a failure interrupted (sessions.c session_finish_delete). */
static int
finish_deleted(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct sweep_count *n = ctx;

	if (session_finish_delete(n->sm, row) == 0) {
		log_info("session %s: its interrupted delete finished (%ld file(s))", row->id, files);
		n->files += files;
	}
	return 0;
}

/* Delete a file past retention and count it. */
static int
expire_file(const struct db_file *f, void *ctx)
{
	struct sweep_count *n = ctx;

	if (files_delete(n->sm->db, n->sm->blobs, f->bucket, f->id) == 0)
		n->files++;
	return 0;
}

/* One sweep: expire sessions, evict idle containers, delete files past retention. */
void
sessions_sweep(struct sessions *sm)
{
	const struct cfg *c = sm->cfg;
	struct sweep_count n = { sm, 0, 0, 0 };
	long long now = clock_wall_ms();

	db_session_expired(sm->db, now, session_ttl_ms(c), c->session_ttl_idle, expire_one, &n);
	db_session_in_state(sm->db, "deleted", finish_deleted, &n);
	if (c->container_idle_min > 0)
		evict_idle(sm, now - (long long)(c->container_idle_min * 60000.0));
	db_file_older(sm->db, now - (long long)(c->file_retention_h * 3600000.0),
	    expire_file, &n);
	n.files += files_sweep_orphans(sm->db, sm->blobs, ORPHAN_GRACE_MS);
	metrics_sessions_ended(sm->mx, n.expired, 0);
	metrics_sweep_done(sm->mx);
	if (n.expired || n.busy || n.files)
		log_info("sweep: %d session(s) expired, %d mid-run left for the next sweep, "
		    "%ld file(s) past retention or orphaned deleted", n.expired, n.busy, n.files);
}

/* The sweeper thread: a sweep every CI_SWEEP_INTERVAL_SECONDS until stopped. */
static void *
sweeper_main(void *arg)
{
	struct sessions *sm = arg;
	long long ms = (long long)(sm->cfg->sweep_interval_s * 1000);
	struct timespec until;

	pthread_mutex_lock(&sm->sweep_mu);
	while (!sm->stopping) {
		until = clock_realtime_in(ms);
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

/* Start the sweeper thread; 0, or -errno. */
int
sessions_start_sweeper(struct sessions *sm)
{
	int rc = pthread_create(&sm->sweeper, NULL, sweeper_main, sm);

	if (rc == 0)
		sm->sweeping = 1;
	return -rc;
}

/* Stop the sweeper thread, waiting for a sweep in progress. */
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
