#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "metrics.h"

/* Upper bounds in seconds; +Inf is implicit. */
static const double exec_bounds[] = {
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};
static const double start_bounds[] = {
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
#define NBOUNDS_MAX 13

static const char *const outcome_names[MX_NOUTCOMES] = {
	"ok", "error", "timeout", "oom", "failed", "cancelled",
};

/*
 * Counts per bucket (not cumulative: cumulated when rendered) and the sum
 * in microseconds, so every field is one atomic integer.
 */
struct histogram {
	const double *bounds;
	size_t nbounds;
	uint64_t counts[NBOUNDS_MAX + 1];
	uint64_t sum_us;
};

#define LANGS_MAX 32

struct metrics {
	const struct lang *langs;
	size_t nlangs;
	/* execs[lang index][outcome]; the last row is "none" (never parsed) */
	uint64_t execs[LANGS_MAX + 1][MX_NOUTCOMES];
	struct histogram exec_latency, start_latency;
	uint64_t sessions_created, sessions_expired, sessions_deleted, sweeps;
	uint64_t evicted_lru, evicted_idle, pool_hits, pool_misses, busy, store_failures;
	long long started_ms;
};

static void
add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static uint64_t
get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void
histogram_init(struct histogram *h, const double *bounds, size_t n)
{
	h->bounds = bounds;
	h->nbounds = n;
}

static void
histogram_observe(struct histogram *h, double seconds)
{
	size_t i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < h->nbounds && seconds > h->bounds[i])
		i++;
	add(&h->counts[i], 1);
	add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

struct metrics *
metrics_new(void)
{
	struct metrics *mx = calloc(1, sizeof(*mx));

	if (!mx)
		return NULL;
	mx->langs = lang_all(&mx->nlangs);
	if (mx->nlangs > LANGS_MAX)
		mx->nlangs = LANGS_MAX;
	histogram_init(&mx->exec_latency, exec_bounds, sizeof(exec_bounds) / sizeof(exec_bounds[0]));
	histogram_init(&mx->start_latency, start_bounds,
	    sizeof(start_bounds) / sizeof(start_bounds[0]));
	mx->started_ms = clock_wall_ms();
	return mx;
}

void
metrics_free(struct metrics *mx)
{
	free(mx);
}

void
metrics_exec(struct metrics *mx, const struct lang *lang, enum metrics_outcome outcome,
    double seconds)
{
	size_t row = LANGS_MAX;

	if (!mx || outcome < 0 || outcome >= MX_NOUTCOMES)
		return;
	if (lang && lang >= mx->langs && lang < mx->langs + mx->nlangs)
		row = (size_t)(lang - mx->langs);
	add(&mx->execs[row][outcome], 1);
	histogram_observe(&mx->exec_latency, seconds);
}

void
metrics_container_started(struct metrics *mx, double seconds)
{
	if (mx)
		histogram_observe(&mx->start_latency, seconds);
}

void
metrics_session_created(struct metrics *mx)
{
	if (mx)
		add(&mx->sessions_created, 1);
}

void
metrics_sessions_ended(struct metrics *mx, int expired, int deleted)
{
	if (!mx)
		return;
	add(&mx->sessions_expired, (uint64_t)(expired > 0 ? expired : 0));
	add(&mx->sessions_deleted, (uint64_t)(deleted > 0 ? deleted : 0));
}

void
metrics_sweep_done(struct metrics *mx)
{
	if (mx)
		add(&mx->sweeps, 1);
}

void
metrics_evicted(struct metrics *mx, const char *reason, int n)
{
	if (!mx || n <= 0)
		return;
	add(strcmp(reason, "idle") == 0 ? &mx->evicted_idle : &mx->evicted_lru, (uint64_t)n);
}

void
metrics_pool_take(struct metrics *mx, int hit)
{
	if (mx)
		add(hit ? &mx->pool_hits : &mx->pool_misses, 1);
}

void
metrics_busy(struct metrics *mx)
{
	if (mx)
		add(&mx->busy, 1);
}

void
metrics_store_failed(struct metrics *mx)
{
	if (mx)
		add(&mx->store_failures, 1);
}

/* "# HELP" and "# TYPE" lines of one family. */
static int
family(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
scalar(struct buf *b, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	return family(b, name, type, help) | buf_printf(b, "%s %llu\n", name, v);
}

static int
render_histogram(struct buf *b, const char *name, const char *help, const struct histogram *h)
{
	uint64_t cum = 0;
	size_t i;
	int rc = family(b, name, "histogram", help);

	for (i = 0; i < h->nbounds; i++) {
		cum += get(&h->counts[i]);
		rc |= buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
		    (unsigned long long)cum);
	}
	cum += get(&h->counts[h->nbounds]);
	rc |= buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	rc |= buf_printf(b, "%s_sum %.6f\n", name, (double)get(&h->sum_us) / 1e6);
	rc |= buf_printf(b, "%s_count %llu\n", name, (unsigned long long)cum);
	return rc;
}

/* Every language and outcome, zeros included, so rates exist from the start. */
static int
render_execs(struct buf *b, const struct metrics *mx)
{
	size_t i;
	int o, rc = family(b, "cip_execs_total", "counter",
	    "Runs by language and outcome (ok, error, timeout, oom, failed).");

	for (i = 0; i <= mx->nlangs; i++) {
		size_t row = i < mx->nlangs ? i : LANGS_MAX;
		const char *name = i < mx->nlangs ? mx->langs[i].id : "none";

		for (o = 0; o < MX_NOUTCOMES; o++)
			rc |= buf_printf(b, "cip_execs_total{lang=\"%s\",outcome=\"%s\"} %llu\n",
			    name, outcome_names[o], (unsigned long long)get(&mx->execs[row][o]));
	}
	return rc;
}

static long long
resident_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : (long long)rss * sysconf(_SC_PAGESIZE);
}

static int
render_sample(struct buf *b, const struct metrics_sample *now)
{
	long long rss = resident_bytes();
	int rc = 0;

	if (now->sessions_active >= 0)
		rc |= scalar(b, "cip_sessions_active", "gauge", "Sessions not ended.",
		    (unsigned long long)now->sessions_active);
	if (now->containers_live >= 0)
		rc |= scalar(b, "cip_containers_live", "gauge",
		    "Sandbox containers held by sessions now.",
		    (unsigned long long)now->containers_live);
	if (now->pool_size >= 0)
		rc |= scalar(b, "cip_pool_size", "gauge", "Warm sandbox containers waiting.",
		    (unsigned long long)now->pool_size);
	if (now->files_stored >= 0)
		rc |= scalar(b, "cip_files_stored", "gauge", "Files in storage.",
		    (unsigned long long)now->files_stored);
	if (now->bytes_stored >= 0)
		rc |= scalar(b, "cip_files_stored_bytes", "gauge", "Bytes of the files in storage.",
		    (unsigned long long)now->bytes_stored);
	rc |= scalar(b, "cip_docker_errors_total", "counter",
	    "Engine API calls that failed: no answer, or an error status.", now->docker_errors);
	if (rss >= 0)
		rc |= scalar(b, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.", (unsigned long long)rss);
	return rc;
}

int
metrics_render(const struct metrics *mx, const struct metrics_sample *now, struct buf *out)
{
	int rc = family(out, "cip_build_info", "gauge", "The proxy's version.") |
	    buf_printf(out, "cip_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);

	rc |= family(out, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.") |
	    buf_printf(out, "process_start_time_seconds %lld\n", mx->started_ms / 1000);
	rc |= scalar(out, "cip_sessions_created_total", "counter", "Sessions started.",
	    get(&mx->sessions_created));
	rc |= scalar(out, "cip_sessions_expired_total", "counter",
	    "Sessions ended by the sweeper when their TTL ran out.", get(&mx->sessions_expired));
	rc |= scalar(out, "cip_sessions_deleted_total", "counter",
	    "Sessions ended through DELETE /v1/librechat/sessions/{id}.",
	    get(&mx->sessions_deleted));
	rc |= scalar(out, "cip_sweeps_total", "counter", "Sweeper runs, the startup sweep included.",
	    get(&mx->sweeps));
	rc |= family(out, "cip_container_evictions_total", "counter",
	    "Containers taken from idle sessions: lru (at CI_MAX_LIVE_CONTAINERS) or idle "
	    "(CI_CONTAINER_IDLE_MINUTES).") |
	    buf_printf(out, "cip_container_evictions_total{reason=\"lru\"} %llu\n"
	    "cip_container_evictions_total{reason=\"idle\"} %llu\n",
	    (unsigned long long)get(&mx->evicted_lru), (unsigned long long)get(&mx->evicted_idle));
	rc |= family(out, "cip_pool_takes_total", "counter",
	    "New containers for sessions: from the warm pool (hit) or made on demand (miss).") |
	    buf_printf(out, "cip_pool_takes_total{result=\"hit\"} %llu\n"
	    "cip_pool_takes_total{result=\"miss\"} %llu\n",
	    (unsigned long long)get(&mx->pool_hits), (unsigned long long)get(&mx->pool_misses));
	rc |= scalar(out, "cip_busy_total", "counter",
	    "Requests answered 503: every container busy at CI_MAX_LIVE_CONTAINERS.",
	    get(&mx->busy));
	rc |= scalar(out, "cip_store_failures_total", "counter",
	    "Database or file-store writes that failed (each is logged).",
	    get(&mx->store_failures));
	rc |= render_execs(out, mx);
	rc |= render_histogram(out, "cip_exec_duration_seconds",
	    "Latency of /exec requests that reached the sandbox or failed there, in seconds.",
	    &mx->exec_latency);
	rc |= render_histogram(out, "cip_container_start_duration_seconds",
	    "Time to create and start a sandbox container and reach its runner, in seconds.",
	    &mx->start_latency);
	rc |= render_sample(out, now);
	return rc ? -1 : 0;
}
