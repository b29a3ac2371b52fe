#include "config.h"

#include <string.h>

#include "cfg.h"
#include "suites.h"

struct env { const char *const *kv; };

static const char *
fake_get(const char *name, void *ctx)
{
	const char *const *kv = ((struct env *)ctx)->kv;

	for (; kv && kv[0]; kv += 2)
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

static int
load(const char *const *kv, struct cfg **c, char *err)
{
	struct env e = { kv };

	return cfg_load(fake_get, &e, c, err, 512);
}

START_TEST(defaults_are_the_seeds)
{
	struct cfg *c;
	char err[512];

	ck_assert_int_eq(load(NULL, &c, err), 0);
	ck_assert_str_eq(c->api_key, "dev-ci-key");
	ck_assert_str_eq(c->host, "0.0.0.0");
	ck_assert_int_eq(c->port, 8000);
	ck_assert_int_eq(c->max_memory_mb, 512);
	ck_assert_int_eq(c->max_run_timeout_s, 30);
	ck_assert_str_eq(c->sandbox_image, "code-interpreter-sandbox:latest");
	ck_assert_str_eq(c->docker_host, "unix:///var/run/docker.sock");
	ck_assert_str_eq(c->db_path, "/data/code-interpreter/proxy.db");
	ck_assert_int_eq(c->max_output_bytes, 65536);
	ck_assert(c->max_cpus == 1.0);
	ck_assert_int_eq(c->auth, CFG_AUTH_API_KEY);
	cfg_free(c);
}
END_TEST

START_TEST(values_are_read)
{
	static const char *const kv[] = { "CI_PORT", "9001", "CI_MAX_CPUS", "0.5",
	    "CI_AUTH", " none , api-key",
	    "CI_FILE_STORAGE_PATH", "/tmp/x", "CI_LOG_LEVEL", "debug", NULL };
	struct cfg *c;
	char err[512];

	ck_assert_int_eq(load(kv, &c, err), 0);
	ck_assert_int_eq(c->port, 9001);
	ck_assert(c->max_cpus == 0.5);
	ck_assert_str_eq(c->db_path, "/tmp/x/proxy.db");
	ck_assert_int_eq(c->log_level, LOG_DEBUG);
	ck_assert_int_eq(c->auth, CFG_AUTH_API_KEY | CFG_AUTH_NONE);
	cfg_free(c);
}
END_TEST

static void
assert_refused(const char *name, const char *value, const char *needle)
{
	const char *kv[] = { name, value, NULL };
	struct cfg *c = (struct cfg *)1;
	char err[512] = "";

	ck_assert_int_eq(load(kv, &c, err), -1);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, name) && strstr(err, needle), "message: %s", err);
}

START_TEST(bad_values_are_refused_by_name)
{
	assert_refused("CI_PORT", "0", "from 1 to 65535");
	assert_refused("CI_PORT", "65536", "from 1 to 65535");
	assert_refused("CI_PORT", "80x", "not valid");
	assert_refused("CI_PORT", "", "not valid");
	assert_refused("CI_PORT", "8000.5", "whole number");
	assert_refused("CI_MAX_CPUS", "nan", "not valid");
	assert_refused("CI_MAX_CPUS", "0", "not valid");
	assert_refused("CI_MAX_MEMORY_MB", "-1", "not valid");
	assert_refused("CI_LOG_LEVEL", "loud", "debug, info");
	assert_refused("CI_API_KEY", "", "X-API-Key");
	assert_refused("CI_DOCKER_HOST", "http://x", "unix://");
	assert_refused("CI_HOST", "localhost", "numeric");
	assert_refused("CI_AUTH", "", "comma list");
	assert_refused("CI_AUTH", "api-key,", "comma list");
	assert_refused("CI_AUTH", "oauth", "comma list");
	assert_refused("CI_MAX_RUN_TIMEOUT_SECONDS", "1e9", "not valid");
}
END_TEST

START_TEST(unenforced_limits_list)
{
	static const char *const some[] = { "CI_ACCEPT_UNENFORCED_LIMITS", " pids , memory", NULL };
	static const char *const all[] = { "CI_ACCEPT_UNENFORCED_LIMITS", "cpu,all", NULL };
	struct cfg *c;
	char err[512];

	ck_assert_int_eq(load(NULL, &c, err), 0);
	ck_assert_int_eq(c->accept_unenforced, 0);
	cfg_free(c);
	ck_assert_int_eq(load(some, &c, err), 0);
	ck_assert_int_eq(c->accept_unenforced, CFG_LIMIT_PIDS | CFG_LIMIT_MEMORY);
	cfg_free(c);
	ck_assert_int_eq(load(all, &c, err), 0);
	ck_assert_int_eq(c->accept_unenforced, CFG_LIMIT_ALL);
	cfg_free(c);
	assert_refused("CI_ACCEPT_UNENFORCED_LIMITS", "disk", "memory, pids, cpu");
	assert_refused("CI_ACCEPT_UNENFORCED_LIMITS", "memory,", "comma list");
	assert_refused("CI_ACCEPT_UNENFORCED_LIMITS", "true", "comma list");
}
END_TEST

START_TEST(jwt_needs_a_key)
{
	static const char *const kv[] = { "CI_AUTH", "jwt", NULL };
	struct cfg *c;
	char err[512] = "";

	ck_assert_int_eq(load(kv, &c, err), -1);
	ck_assert_msg(strstr(err, "CI_JWT_PUBLIC_KEY is empty"), "%s", err);
}
END_TEST

Suite *
suite_cfg(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, defaults_are_the_seeds);
	tcase_add_test(tc, values_are_read);
	tcase_add_test(tc, bad_values_are_refused_by_name);
	tcase_add_test(tc, jwt_needs_a_key);
	tcase_add_test(tc, unenforced_limits_list);
	suite_add_tcase(s, tc);
	return s;
}
