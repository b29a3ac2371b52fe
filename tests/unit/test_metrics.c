#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "lang.h"
#include "metrics.h"
#include "suites.h"

static char *
render(const struct metrics *mx, const struct metrics_sample *now)
{
	struct buf b;
	size_t n;

	buf_init(&b, 1 << 20);
	ck_assert_int_eq(metrics_render(mx, now, &b), 0);
	return buf_take(&b, &n);
}

static const struct metrics_sample no_gauges = { -1, -1, -1, -1, -1, 0 };

START_TEST(execs_by_language_and_outcome)
{
	struct metrics *mx = metrics_new();
	char *t;

	ck_assert_ptr_nonnull(mx);
	metrics_exec(mx, lang_find("python"), MX_OK, 0.02);
	metrics_exec(mx, lang_find("py"), MX_OK, 0.03);
	metrics_exec(mx, lang_find("bash"), MX_OOM, 1);
	metrics_exec(mx, NULL, MX_FAILED, 0.1);
	t = render(mx, &no_gauges);
	ck_assert_ptr_nonnull(strstr(t, "\ncip_execs_total{lang=\"py\",outcome=\"ok\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_execs_total{lang=\"bash\",outcome=\"oom\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_execs_total{lang=\"none\",outcome=\"failed\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_execs_total{lang=\"go\",outcome=\"timeout\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "# TYPE cip_execs_total counter\n"));
	free(t);
	metrics_free(mx);
}
END_TEST

/* Buckets are cumulative and a value on a bound counts in that bucket. */
START_TEST(histogram_is_cumulative)
{
	struct metrics *mx = metrics_new();
	char *t;

	metrics_exec(mx, lang_find("c"), MX_OK, 0.01);
	metrics_exec(mx, lang_find("c"), MX_OK, 0.2);
	metrics_exec(mx, lang_find("c"), MX_TIMEOUT, 500);
	metrics_container_started(mx, 0.3);
	t = render(mx, &no_gauges);
	ck_assert_ptr_nonnull(strstr(t, "\ncip_exec_duration_seconds_bucket{le=\"0.01\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_exec_duration_seconds_bucket{le=\"0.25\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_exec_duration_seconds_bucket{le=\"120\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_exec_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_exec_duration_seconds_count 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_exec_duration_seconds_sum 500.210000\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_container_start_duration_seconds_bucket{le=\"0.25\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_container_start_duration_seconds_bucket{le=\"0.5\"} 1\n"));
	free(t);
	metrics_free(mx);
}
END_TEST

START_TEST(gauges_only_when_known)
{
	struct metrics *mx = metrics_new();
	struct metrics_sample now = { 3, 2, -1, 7, 1234, 5 };
	char *t;

	metrics_session_created(mx);
	metrics_sessions_ended(mx, 2, 1);
	metrics_sweep_done(mx);
	t = render(mx, &now);
	ck_assert_ptr_nonnull(strstr(t, "\ncip_sessions_active 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_containers_live 2\n"));
	ck_assert_ptr_null(strstr(t, "cip_pool_size"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_files_stored 7\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_files_stored_bytes 1234\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_docker_errors_total 5\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_sessions_created_total 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_sessions_expired_total 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_sessions_deleted_total 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\ncip_sweeps_total 1\n"));
	free(t);
	t = render(mx, &no_gauges);
	ck_assert_ptr_null(strstr(t, "cip_sessions_active"));
	free(t);
	metrics_free(mx);
}
END_TEST

/* Recording with no metrics object is a no-op, so callers need no checks. */
START_TEST(null_is_a_no_op)
{
	metrics_exec(NULL, NULL, MX_OK, 1);
	metrics_container_started(NULL, 1);
	metrics_session_created(NULL);
	metrics_sessions_ended(NULL, 1, 1);
	metrics_sweep_done(NULL);
	metrics_free(NULL);
}
END_TEST

Suite *
suite_metrics(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, execs_by_language_and_outcome);
	tcase_add_test(tc, histogram_is_cumulative);
	tcase_add_test(tc, gauges_only_when_known);
	tcase_add_test(tc, null_is_a_no_op);
	suite_add_tcase(s, tc);
	return s;
}
