/*
 * The warm pool's refill thread and its hand-over (see pool.h).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "pool.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
/* A refill that found no room looks again this often (or when kicked). */
#define RECHECK_MS 2000

struct pool {
	const struct cfg *cfg;
	const struct sandboxes *sbx;
	struct pool_hooks hooks;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stopping;
	struct sandbox *ready;	/* cfg->pool_size slots */
	int n;
};

/* A pool of cfg->pool_size slots, not started; NULL with no pool size or no memory. */
struct pool *
pool_new(const struct cfg *cfg, const struct sandboxes *sbx, const struct pool_hooks *hooks)
{
	struct pool *p;

	if (cfg->pool_size <= 0 || !(p = calloc(1, sizeof(*p))))
		return NULL;
	if (!(p->ready = calloc((size_t)cfg->pool_size, sizeof(*p->ready)))) {
		free(p);
		return NULL;
	}
	p->cfg = cfg;
	p->sbx = sbx;
	p->hooks = *hooks;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

/* Wait on the pool's condition for ms at most.  Caller holds p->mu. */
static void
wait_ms(struct pool *p, long ms)
{
	struct timespec until = clock_realtime_in(ms);

	pthread_cond_timedwait(&p->cv, &p->mu, &until);
}

/*
 * Remove a pooled sandbox's container and close its channel, logging why;
 * its DOCKER_* code.  With the engine away (DOCKER_EUNAVAIL) sb is left
 * whole, for the caller to keep and try again: dropped, its container
 * would be left behind.
 */
static int
discard(struct pool *p, struct sandbox *sb, const char *why)
{
	struct docker_err err = { 0, "" };
	int rc = sandbox_remove(p->sbx, sb->id, &err);

	if (rc == DOCKER_EUNAVAIL) {
		log_warn("pool: container %.12s not removed yet (%s): %s", sb->id, why, err.msg);
		return rc;
	}
	channel_close(sb->ch);
	sb->ch = NULL;
	if (rc != DOCKER_OK)
		log_error("pool: cannot remove container %.12s: %s", sb->id, err.msg);
	else
		log_info("pool: container %.12s removed (%s)", sb->id, why);
	return rc;
}

/*
 * Put back sandboxes discard could not remove, for a later try; caller
 * holds p->mu.  One with no room left is let go: the next start removes it.
 */
static void
keep_back(struct pool *p, const struct sandbox *sb, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (p->n < p->cfg->pool_size)
			p->ready[p->n++] = sb[i];
		else
			channel_close(sb[i].ch);
}

/*
 * Take out the ready sandboxes whose channel broke while they waited (the
 * engine restarted, the runner died): removed, so the pool refills with
 * working ones and pool_size counts only those.  Caller holds p->mu.
 */
static void
prune_broken(struct pool *p)
{
	struct sandbox *broken = NULL;
	int i, n = 0, kept = 0;

	for (i = 0; i < p->n; i++)
		if (!channel_idle_ok(p->ready[i].ch))
			n++;
	if (n == 0 || !(broken = calloc((size_t)n, sizeof(*broken))))
		return;
	for (i = 0, n = 0; i < p->n; )
		if (!channel_idle_ok(p->ready[i].ch)) {
			broken[n++] = p->ready[i];
			memmove(p->ready + i, p->ready + i + 1,
			    (size_t)(--p->n - i) * sizeof(*p->ready));
		} else {
			i++;
		}
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < n; i++)
		if (discard(p, &broken[i], "its channel broke while it waited") == DOCKER_EUNAVAIL)
			broken[kept++] = broken[i];
	pthread_mutex_lock(&p->mu);
	/* Only this thread adds to the pool: the room they left is still there. */
	keep_back(p, broken, kept);
	free(broken);
}

/* Make one sandbox with a reserved slot; 0 if it joined the pool. */
static int
refill_one(struct pool *p)
{
	struct docker_err err = { 0, "" };
	struct sandbox sb;
	int at_runner, rc, kept = 0;

	rc = sandbox_make(p->sbx, NULL, &sb, &at_runner, &err);
	pthread_mutex_lock(&p->mu);
	if (rc == DOCKER_OK && !p->stopping && p->n < p->cfg->pool_size) {
		p->ready[p->n++] = sb;
		kept = 1;
	}
	pthread_mutex_unlock(&p->mu);
	/* Counted by pool_size now (or gone): the reservation ends. */
	p->hooks.release(p->hooks.ctx);
	if (rc != DOCKER_OK) {
		log_error("pool: cannot make a warm sandbox%s: %s",
		    at_runner ? " (its runner did not answer)" : "", err.msg);
		return -1;
	}
	if (!kept) {
		if (discard(p, &sb, "the pool is stopping") == DOCKER_EUNAVAIL)
			channel_close(sb.ch);	/* the next start removes it */
	} else {
		log_debug("pool: container %.12s ready", sb.id);
	}
	return 0;
}

/* The refill thread: keep the pool full within the cap, backing off while the engine fails. */
static void *
refill_main(void *arg)
{
	struct pool *p = arg;
	long retry_ms = RETRY_MIN_MS;

	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		prune_broken(p);
		if (p->n >= p->cfg->pool_size) {
			/* Full: look again now and then, for sandboxes that died waiting. */
			wait_ms(p, RECHECK_MS);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		if (!p->hooks.reserve(p->hooks.ctx)) {
			/* At the container cap: sessions come first. */
			pthread_mutex_lock(&p->mu);
			if (!p->stopping)
				wait_ms(p, RECHECK_MS);
			continue;
		}
		if (refill_one(p) == 0) {
			retry_ms = RETRY_MIN_MS;
			pthread_mutex_lock(&p->mu);
			continue;
		}
		/* The engine refused or is away: back off, doubling. */
		pthread_mutex_lock(&p->mu);
		if (!p->stopping)
			wait_ms(p, retry_ms);
		retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Start the refill thread; 0 (also with no pool), or -errno. */
int
pool_start(struct pool *p)
{
	int rc;

	if (!p)
		return 0;
	if ((rc = pthread_create(&p->thread, NULL, refill_main, p)) != 0)
		return -rc;
	p->running = 1;
	return 0;
}

/* Hand the caller the oldest ready sandbox whose channel is sound; 0, or -1 if none. */
int
pool_take(struct pool *p, struct sandbox *out)
{
	struct sandbox sb;

	if (!p)
		return -1;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->n == 0) {
			pthread_mutex_unlock(&p->mu);
			return -1;
		}
		/* Oldest first: the one that waited longest. */
		sb = p->ready[0];
		memmove(p->ready, p->ready + 1, (size_t)(--p->n) * sizeof(*p->ready));
		/* No refill signal here: the taker kicks once its request is
		 * answered, so a container start does not compete with its run. */
		pthread_mutex_unlock(&p->mu);
		if (channel_idle_ok(sb.ch)) {
			*out = sb;
			return 0;
		}
		if (discard(p, &sb, "its channel broke while it waited") == DOCKER_EUNAVAIL) {
			/* The engine is away: kept for the refill thread to remove later. */
			pthread_mutex_lock(&p->mu);
			keep_back(p, &sb, 1);
			pthread_mutex_unlock(&p->mu);
			return -1;
		}
	}
}

/* Sandboxes ready in the pool now; 0 with no pool. */
int
pool_size(struct pool *p)
{
	int n;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->mu);
	n = p->n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* Wake the refill thread: room may have appeared. */
void
pool_kick(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Stop the refill thread, remove every pooled container and free the pool. */
void
pool_free(struct pool *p)
{
	int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->running)
		pthread_join(p->thread, NULL);
	for (i = 0; i < p->n; i++)
		if (discard(p, &p->ready[i], "the proxy is stopping") == DOCKER_EUNAVAIL)
			channel_close(p->ready[i].ch);	/* the next start removes it */
	if (p->n)
		log_info("pool: %d warm container(s) removed", p->n);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->ready);
	free(p);
}
