/*
 * The daemon's counters and histograms, and their rendering in the
 * Prometheus text format (version 0.0.4) for GET /metrics.  Recording is
 * lock-free (atomic adds), so any thread may record at any time; gauges
 * that describe state (sessions, files) are not kept here but sampled by
 * the caller at scrape time and passed to metrics_render.
 */
#ifndef CIP_METRICS_H
#define CIP_METRICS_H

#include "buf.h"
#include "lang.h"

/* How an /exec ended. */
enum metrics_outcome {
	MX_OK,		/* the program exited 0 */
	MX_ERROR,	/* it exited non-zero or died of a signal */
	MX_TIMEOUT,	/* it ran past the run timeout and was killed */
	MX_OOM,		/* the memory cap's OOM killer ended it */
	MX_FAILED,	/* it could not run: engine or sandbox failure (5xx) */
	MX_CANCELLED,	/* stopped because the client went away (Stop) */
	MX_NOUTCOMES
};

/* What is sampled at scrape time; a negative value is left out. */
struct metrics_sample {
	long sessions_active;	/* sessions that are not ended */
	long containers_live;	/* sandbox containers held now */
	long pool_size;		/* warm containers waiting, or -1 with no pool */
	long files_stored;
	long long bytes_stored;
	unsigned long long docker_errors;	/* failed Engine API calls */
};

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *mx);

/* One /exec: its language (NULL if it never parsed), outcome and latency. */
void metrics_exec(struct metrics *mx, const struct lang *lang, enum metrics_outcome outcome,
    double seconds);
/* A sandbox container created, started and answering, in seconds. */
void metrics_container_started(struct metrics *mx, double seconds);
void metrics_session_created(struct metrics *mx);
void metrics_sessions_ended(struct metrics *mx, int expired, int deleted);
void metrics_sweep_done(struct metrics *mx);
/* n containers taken from sessions, for reason "lru" (the cap) or "idle". */
void metrics_evicted(struct metrics *mx, const char *reason, int n);
/* A new session's container: from the warm pool (hit) or made on demand. */
void metrics_pool_take(struct metrics *mx, int hit);
/* A request refused with 503: every container busy at the cap. */
void metrics_busy(struct metrics *mx);
/* A database or blob-store write failed (it is logged where it happened). */
void metrics_store_failed(struct metrics *mx);

/* Append the whole exposition to out; -1 if memory ran out. */
int metrics_render(const struct metrics *mx, const struct metrics_sample *now,
    struct buf *out);

#endif
