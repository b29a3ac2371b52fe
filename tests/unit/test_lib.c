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
#include "workspace.h"

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

/*
 * Found by fuzz_proto_proxy: a listing line whose hash field is 64 bytes
 * with a NUL inside kept a "hash" of 30 characters, compared with strcmp.
 */
START_TEST(a_listing_hash_is_64_hex_digits_or_none)
{
	static const char good[] = "f\t3\t1\t644\t"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\ta.txt";
	char bad[sizeof(good)];
	struct proto_msg *m = proto_msg_new(PROTO_OK);
	struct workspace *w;

	memcpy(bad, good, sizeof(good));
	bad[20] = '\0';
	memcpy(bad + sizeof(good) - 6, "b.txt", 5);
	ck_assert(m);
	ck_assert_int_eq(proto_add_str(m, "e", good), 0);
	ck_assert_int_eq(proto_add(m, "e", bad, sizeof(bad) - 1), 0);
	ck_assert_int_eq(proto_add_str(m, "e", "f\t3\t1\t644\t"
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\tc.txt"), 0);
	ck_assert((w = workspace_parse(m)) != NULL);
	ck_assert_int_eq((int)w->n, 3);
	ck_assert_int_eq(strncmp(w->e[0].sha256, good + 10, 64), 0);
	ck_assert_str_eq(w->e[1].sha256, "-");
	ck_assert_str_eq(w->e[2].sha256, "-");
	workspace_free(w);
	proto_msg_free(m);
}
END_TEST

/* Found by fuzz_proto_proxy: a listing line of type NUL was kept, as type '\0'. */
START_TEST(a_listing_type_is_one_of_fdlo)
{
	static const char line[] = "\0\t10\t1\t644\t-\tsub";
	struct proto_msg *m = proto_msg_new(PROTO_OK);
	struct workspace *w;

	ck_assert(m);
	ck_assert_int_eq(proto_add(m, "e", line, sizeof(line) - 1), 0);
	ck_assert_int_eq(proto_add_str(m, "e", "x\t10\t1\t644\t-\tsub2"), 0);
	ck_assert_int_eq(proto_add_str(m, "e", "d\t10\t1\t755\t-\tsub3"), 0);
	ck_assert((w = workspace_parse(m)) != NULL);
	ck_assert_int_eq((int)w->n, 1);
	ck_assert_int_eq(w->e[0].type, 'd');
	workspace_free(w);
	proto_msg_free(m);
}
END_TEST

Suite *
suite_lib(void)
{
	Suite *s = suite_create("lib");
	TCase *tc = tcase_create("lib");

	tcase_add_test(tc, a_listing_hash_is_64_hex_digits_or_none);
	tcase_add_test(tc, a_listing_type_is_one_of_fdlo);
	tcase_add_test(tc, relative_paths_count_their_segments);
	tcase_add_test(tc, escapes_and_empty_segments_break_the_rule);
	tcase_add_test(tc, names_apply_the_rule_and_their_own_limits);
	tcase_add_test(tc, write_all_writes_everything_or_says_why);
	tcase_add_test(tc, workers_run_every_job_within_their_cap);
	tcase_add_test(tc, one_worker_runs_jobs_in_order);
	suite_add_tcase(s, tc);
	return s;
}
