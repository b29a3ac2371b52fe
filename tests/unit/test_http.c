#include "config.h"

#include <string.h>

#include "http.h"
#include "suites.h"

static void
norm(const char *in, const char *want)
{
	char out[256];

	http_normalize_path(in, out, sizeof(out));
	ck_assert_msg(strcmp(out, want) == 0, "%s -> %s, want %s", in, out, want);
}

START_TEST(paths_are_normalized)
{
	norm("/exec", "/exec");
	norm("/v1/exec", "/exec");
	norm("/v1//exec", "/exec");
	norm("//v1///exec/", "/exec");
	norm("/v1", "/");
	norm("/v10/exec", "/v10/exec");
	norm("/v1/librechat/runs", "/librechat/runs");
	norm("", "/");
	norm("/exec?x=1", "/exec");
}
END_TEST

START_TEST(patterns_match_segments)
{
	const char *p[4];
	char scratch[256];
	size_t n;

	ck_assert(http_match("/exec", "/exec", scratch, sizeof(scratch), p, 4, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(!http_match("/exec", "/exec/x", scratch, sizeof(scratch), p, 4, &n));
	ck_assert(!http_match("/exec", "/exe", scratch, sizeof(scratch), p, 4, &n));
	ck_assert(http_match("/download/{}/{}", "/download/abc/def", scratch, sizeof(scratch), p, 4, &n));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(p[0], "abc");
	ck_assert_str_eq(p[1], "def");
	ck_assert(!http_match("/download/{}/{}", "/download/abc", scratch, sizeof(scratch), p, 4, &n));
	ck_assert(!http_match("/download/{}/{}", "/download/abc/def/g", scratch, sizeof(scratch), p, 4, &n));
	ck_assert(!http_match("/files/{}", "/files/", scratch, sizeof(scratch), p, 4, &n));
}
END_TEST

Suite *
suite_http(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("routing");

	tcase_add_test(tc, paths_are_normalized);
	tcase_add_test(tc, patterns_match_segments);
	suite_add_tcase(s, tc);
	return s;
}
