#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A readable PEM-named file for the TLS variables (content is curl's business). */
static char tls_dir[] = "/tmp/cip-test-cfg.XXXXXX";
static char tls_file[sizeof(tls_dir) + 16];

static void
tls_setup(void)
{
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(tls_dir));
	snprintf(tls_file, sizeof(tls_file), "%s/x.pem", tls_dir);
	ck_assert_ptr_nonnull(f = fopen(tls_file, "w"));
	ck_assert_int_gt(fputs("-----BEGIN CERTIFICATE-----\n", f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static void
tls_teardown(void)
{
	unlink(tls_file);
	rmdir(tls_dir);
	strcpy(tls_dir, "/tmp/cip-test-cfg.XXXXXX");
}

static void
assert_refused_kv(const char *const *kv, const char *needle)
{
	struct cfg *c = (struct cfg *)1;
	char err[512] = "";

	ck_assert_int_eq(load(kv, &c, err), -1);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, needle), "want \"%s\" in: %s", needle, err);
}

START_TEST(tls_is_off_by_default)
{
	struct cfg *c;
	char err[512];

	ck_assert_int_eq(load(NULL, &c, err), 0);
	ck_assert_int_eq(c->docker_tls, 0);
	ck_assert_int_eq(c->docker_plain_remote, 0);
	ck_assert_str_eq(c->docker_tls_ca, "");
	ck_assert_str_eq(c->docker_tls_cert, "");
	ck_assert_str_eq(c->docker_tls_key, "");
	cfg_free(c);
}
END_TEST

START_TEST(tls_settings_are_read)
{
	const char *kv[] = { "CI_DOCKER_HOST", "tcp://engine.example:2376",
	    "CI_DOCKER_TLS_CA", tls_file, "CI_DOCKER_TLS_CERT", tls_file,
	    "CI_DOCKER_TLS_KEY", tls_file, NULL };
	struct cfg *c;
	char err[512] = "";

	ck_assert_msg(load(kv, &c, err) == 0, "%s", err);
	ck_assert_int_eq(c->docker_tls, 1);
	ck_assert_int_eq(c->docker_plain_remote, 0);
	ck_assert_str_eq(c->docker_tls_ca, tls_file);
	ck_assert_str_eq(c->docker_tls_cert, tls_file);
	ck_assert_str_eq(c->docker_tls_key, tls_file);
	cfg_free(c);
	/* The CA alone: the engine verified, no client certificate. */
	kv[4] = NULL;
	ck_assert_msg(load(kv, &c, err) == 0, "%s", err);
	ck_assert_int_eq(c->docker_tls, 1);
	ck_assert_str_eq(c->docker_tls_cert, "");
	cfg_free(c);
}
END_TEST

START_TEST(tls_settings_are_refused_together)
{
	const char *f = tls_file;
	const char *const unix_ca[] = { "CI_DOCKER_TLS_CA", f, NULL };
	const char *const unix_key[] = { "CI_DOCKER_HOST", "unix:///run/docker.sock",
	    "CI_DOCKER_TLS_KEY", f, NULL };
	const char *const cert_no_key[] = { "CI_DOCKER_HOST", "tcp://h:2376",
	    "CI_DOCKER_TLS_CA", f, "CI_DOCKER_TLS_CERT", f, NULL };
	const char *const key_no_cert[] = { "CI_DOCKER_HOST", "tcp://h:2376",
	    "CI_DOCKER_TLS_CA", f, "CI_DOCKER_TLS_KEY", f, NULL };
	const char *const no_ca[] = { "CI_DOCKER_HOST", "tcp://h:2376",
	    "CI_DOCKER_TLS_CERT", f, "CI_DOCKER_TLS_KEY", f, NULL };
	const char *const missing[] = { "CI_DOCKER_HOST", "tcp://h:2376",
	    "CI_DOCKER_TLS_CA", "/nonexistent/ca.pem", NULL };
	const char *const a_dir[] = { "CI_DOCKER_HOST", "tcp://h:2376",
	    "CI_DOCKER_TLS_CERT", tls_dir, "CI_DOCKER_TLS_KEY", f, NULL };

	assert_refused_kv(unix_ca, "CI_DOCKER_TLS_CA is set but CI_DOCKER_HOST=\"unix://");
	assert_refused_kv(unix_key, "CI_DOCKER_TLS_KEY is set but CI_DOCKER_HOST=\"unix://");
	assert_refused_kv(cert_no_key, "CI_DOCKER_TLS_CERT is set but CI_DOCKER_TLS_KEY is empty");
	assert_refused_kv(key_no_cert, "CI_DOCKER_TLS_KEY is set but CI_DOCKER_TLS_CERT is empty");
	assert_refused_kv(no_ca, "CI_DOCKER_TLS_CA is empty");
	assert_refused_kv(missing, "CI_DOCKER_TLS_CA=\"/nonexistent/ca.pem\": cannot read it: "
	    "No such file");
	assert_refused_kv(a_dir, "CI_DOCKER_TLS_CERT=\"/tmp/cip-test-cfg.");
	assert_refused_kv(a_dir, "not a regular file");
}
END_TEST

START_TEST(docker_host_needs_a_port)
{
	assert_refused("CI_DOCKER_HOST", "tcp://engine", "tcp://host:port");
	assert_refused("CI_DOCKER_HOST", "tcp://:2375", "tcp://host:port");
	assert_refused("CI_DOCKER_HOST", "tcp://engine:0", "tcp://host:port");
	assert_refused("CI_DOCKER_HOST", "tcp://engine:2375x", "tcp://host:port");
	assert_refused("CI_DOCKER_HOST", "tcp://[::1:2375", "tcp://host:port");
	assert_refused("CI_DOCKER_HOST", "unix://", "unix:///path");
}
END_TEST

/* CI_DOCKER_HOST without TLS: 1 if the daemon warns that it is unencrypted. */
static int
plain_remote(const char *host)
{
	const char *kv[] = { "CI_DOCKER_HOST", host, NULL };
	struct cfg *c;
	char err[512] = "";
	int r;

	ck_assert_msg(load(kv, &c, err) == 0, "%s: %s", host, err);
	r = c->docker_plain_remote;
	cfg_free(c);
	return r;
}

START_TEST(plain_tcp_is_flagged_unless_loopback)
{
	ck_assert_int_eq(plain_remote("tcp://127.0.0.1:2375"), 0);
	ck_assert_int_eq(plain_remote("tcp://127.3.2.1:2375"), 0);
	ck_assert_int_eq(plain_remote("tcp://localhost:2375"), 0);
	ck_assert_int_eq(plain_remote("tcp://LOCALHOST:2375"), 0);
	ck_assert_int_eq(plain_remote("tcp://[::1]:2375"), 0);
	ck_assert_int_eq(plain_remote("unix:///var/run/docker.sock"), 0);
	ck_assert_int_eq(plain_remote("tcp://10.0.0.5:2375"), 1);
	ck_assert_int_eq(plain_remote("tcp://128.0.0.1:2375"), 1);
	ck_assert_int_eq(plain_remote("tcp://engine.example:2375"), 1);
	ck_assert_int_eq(plain_remote("tcp://localhost.example:2375"), 1);
	ck_assert_int_eq(plain_remote("tcp://[::2]:2375"), 1);
	ck_assert_int_eq(plain_remote("tcp://[::ffff:127.0.0.1]:2375"), 1);
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
	tcase_add_test(tc, tls_is_off_by_default);
	tcase_add_test(tc, docker_host_needs_a_port);
	tcase_add_test(tc, plain_tcp_is_flagged_unless_loopback);
	suite_add_tcase(s, tc);
	tc = tcase_create("tls");
	tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
	tcase_add_test(tc, tls_settings_are_read);
	tcase_add_test(tc, tls_settings_are_refused_together);
	suite_add_tcase(s, tc);
	return s;
}
