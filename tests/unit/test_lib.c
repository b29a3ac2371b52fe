/* src/lib: the path rule every layer shares, write_all, and the worker pool. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "names.h"
#include "relpath.h"
#include "suites.h"
#include "workers.h"

static size_t
segs(const char *p)
{
	return relpath_segments(p, strlen(p));
}

START_TEST(relative_paths_count_their_segments)
{
	ck_assert_uint_eq(segs("a"), 1);
	ck_assert_uint_eq(segs("out/deep/r.csv"), 3);
	ck_assert_uint_eq(segs(".hidden/..x/x.."), 3);	/* dots inside names are names */
	/* A length cuts the path: the rule reads no further. */
	ck_assert_uint_eq(relpath_segments("a/b/../c", 3), 2);
}
END_TEST

START_TEST(escapes_and_empty_segments_break_the_rule)
{
	static const char *const bad[] = { "", "/etc/passwd", "..", ".", "a/../b", "a/./b",
	    "a//b", "a/", "../a", "a/..", "./a" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(segs(bad[i]) == 0, "'%s' passed", bad[i]);
}
END_TEST

START_TEST(names_apply_the_rule_and_their_own_limits)
{
	ck_assert_ptr_null(name_problem("a/b.txt", 7));
	ck_assert_str_eq(name_problem("a/../b", 6), "must not have empty, '.' or '..' segments");
	ck_assert_str_eq(name_problem("/abs", 4), "must be relative to /mnt/data");
	ck_assert_str_eq(name_problem("1/2/3/4/5/6/7/8/9/10/11", 23),
	    "must have at most 10 segments");
}
END_TEST

START_TEST(write_all_writes_everything_or_says_why)
{
	char big[200000], back[sizeof(big)];
	int p[2];

	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(pipe(p), 0);
	/* More than a pipe holds: short writes until the reader drains it. */
	if (fork() == 0) {
		size_t got = 0;
		ssize_t n;

		close(p[1]);
		while (got < sizeof(back) && (n = read(p[0], back + got, sizeof(back) - got)) > 0)
			got += (size_t)n;
		_exit(got == sizeof(back) && memcmp(back, big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(p[0]);
	ck_assert_int_eq(write_all(p[1], big, sizeof(big)), 0);
	close(p[1]);
	ck_assert_int_eq(write_all(-1, "x", 1), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

struct tally {
	pthread_mutex_t mu;
	int order[64];
	int n, running, most_running;
};

struct tally_job {
	struct tally *t;
	int id;
};

static void
count_job(void *arg)
{
	struct tally_job *j = arg;
	struct tally *t = j->t;

	pthread_mutex_lock(&t->mu);
	t->running++;
	if (t->running > t->most_running)
		t->most_running = t->running;
	pthread_mutex_unlock(&t->mu);
	usleep(2000);
	pthread_mutex_lock(&t->mu);
	t->running--;
	t->order[t->n++] = j->id;
	pthread_mutex_unlock(&t->mu);
}

static struct tally *
run_jobs(size_t max_threads, int njobs, size_t *threads_made)
{
	static struct tally_job jobs[64];
	struct tally *t = calloc(1, sizeof(*t));
	struct workers *w = workers_new(max_threads);
	int i;

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(w);
	pthread_mutex_init(&t->mu, NULL);
	for (i = 0; i < njobs; i++) {
		jobs[i].t = t;
		jobs[i].id = i;
		ck_assert_int_eq(workers_submit(w, count_job, &jobs[i]), 0);
	}
	*threads_made = workers_threads(w);
	workers_free(w);	/* runs every queued job first */
	return t;
}

START_TEST(workers_run_every_job_within_their_cap)
{
	size_t made;
	struct tally *t = run_jobs(3, 40, &made);

	ck_assert_int_eq(t->n, 40);
	ck_assert_int_le(t->most_running, 3);
	ck_assert_uint_le(made, 3);
	ck_assert_uint_ge(made, 1);
	free(t);
}
END_TEST

START_TEST(one_worker_runs_jobs_in_order)
{
	size_t made;
	struct tally *t = run_jobs(1, 20, &made);
	int i;

	ck_assert_uint_eq(made, 1);
	ck_assert_int_eq(t->n, 20);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(t->order[i], i);
	free(t);
}
END_TEST

Suite *
suite_lib(void)
{
	Suite *s = suite_create("lib");
	TCase *tc = tcase_create("lib");

	tcase_add_test(tc, relative_paths_count_their_segments);
	tcase_add_test(tc, escapes_and_empty_segments_break_the_rule);
	tcase_add_test(tc, names_apply_the_rule_and_their_own_limits);
	tcase_add_test(tc, write_all_writes_everything_or_says_why);
	tcase_add_test(tc, workers_run_every_job_within_their_cap);
	tcase_add_test(tc, one_worker_runs_jobs_in_order);
	suite_add_tcase(s, tc);
	return s;
}
