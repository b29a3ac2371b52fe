/*
 * The runner protocol against a real container of the sandbox image:
 * every request type, and the workspace rules (no symlink followed, no path
 * outside /mnt/data, files owned by the sandbox user).  Needs the engine,
 * like every end-to-end test; it fails, never skips, without one.
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "docker.h"
#include "clock.h"
#include "log.h"
#include "proto.h"
#include "sandbox.h"

static struct docker *dk;
static struct channel *ch;
static char cid[DOCKER_ID_MAX];

static void
setup(void)
{
	const char *image = getenv("CI_SANDBOX_IMAGE"), *host = getenv("CI_DOCKER_HOST");
	const char *tls_ca = getenv("CI_DOCKER_TLS_CA");
	struct docker_label labels[] = { { "cip.e2e.runner", "1" } };
	struct docker_create_spec spec = {
		.image = image ? image : "code-interpreter-sandbox:latest",
		.labels = labels, .nlabels = 1, .memory_bytes = 256 << 20,
		.nano_cpus = 1000000000, .pids = 64, .workspace_mb = 16, .tmp_mb = 16,
		.nofile = 1024, .nproc = 1024,
	};
	struct docker_err err = { 0, "" };

	/* The daemon's variable, so the same run can target Podman. */
	dk = docker_new(host && host[0] ? host : "unix:///var/run/docker.sock", 30000);
	ck_assert_ptr_nonnull(dk);
	/* And its TLS files: the TLS stage runs this through a remote engine too. */
	if (tls_ca && tls_ca[0])
		ck_assert_int_eq(docker_set_tls(dk, tls_ca, getenv("CI_DOCKER_TLS_CERT"),
		    getenv("CI_DOCKER_TLS_KEY")), DOCKER_OK);
	ck_assert_msg(docker_negotiate(dk, &err) == DOCKER_OK, "engine: %s", err.msg);
	ck_assert_msg(docker_create(dk, &spec, cid, &err) == DOCKER_OK, "create: %s", err.msg);
	ck_assert_msg(docker_start(dk, cid, &err) == DOCKER_OK, "start: %s", err.msg);
	ck_assert_msg(sandbox_docker_channel(dk, cid, 10000, &ch, &err) == DOCKER_OK, "channel: %s", err.msg);
}

static void
teardown(void)
{
	struct docker_err err;

	channel_close(ch);
	ck_assert_int_eq(docker_remove(dk, cid, &err), DOCKER_OK);
	docker_free(dk);
}

/* Send a request built from key/value pairs; return the reply. */
static struct proto_msg *
call(char type, ...)
{
	struct proto_msg *req = proto_msg_new(type), *rep = NULL;
	const char *k, *v;
	va_list ap;

	va_start(ap, type);
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		ck_assert_int_eq(proto_add_str(req, k, v), 0);
	}
	va_end(ap);
	ck_assert_int_eq(channel_call(ch, req, &rep, 20000, NULL), 0);
	proto_msg_free(req);
	return rep;
}

static const char *
run_sh(const char *script, struct proto_msg **keep)
{
	*keep = call(PROTO_RUN, "argv", "bash", "argv", "-c", "argv", script,
	    "env", "PATH=/usr/bin:/bin", "timeout_ms", "10000", NULL);
	ck_assert_int_eq(proto_msg_type(*keep), PROTO_OK);
	return proto_get(*keep, "stdout", NULL);
}

START_TEST(put_get_list)
{
	struct proto_msg *r, *k;
	const char *v;
	size_t len, i;
	int seen = 0;

	r = call(PROTO_PUT, "path", "dir/sub/a.csv", "mode", "600", "data", "x,y\n1,2\n",
	    "path", "b.txt", "data", "bee", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_OK);
	ck_assert_str_eq(proto_get(r, "written", NULL), "2");
	proto_msg_free(r);
	ck_assert_str_eq(run_sh("stat -c '%U %a' dir dir/sub dir/sub/a.csv b.txt", &k),
	    "sandbox 755\nsandbox 755\nsandbox 600\nsandbox 644\n");
	proto_msg_free(k);
	r = call(PROTO_GET, "path", "dir/sub/a.csv", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_OK);
	v = proto_get(r, "data", &len);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(v, "x,y\n1,2\n", 8);
	proto_msg_free(r);
	r = call(PROTO_LIST, NULL);
	for (i = 0; i < proto_nfields(r); i++) {
		const char *key = proto_field(r, i, &v, NULL);
		if (strcmp(key, "e") == 0 && strstr(v, "\tdir/sub/a.csv") && v[0] == 'f') {
			/* sha256 of "x,y\n1,2\n" */
			ck_assert_msg(strstr(v, "\t8\t"), "%s", v);
			seen++;
		}
	}
	ck_assert_int_eq(seen, 1);
	ck_assert_str_eq(proto_get(r, "truncated", NULL), "0");
	proto_msg_free(r);
}
END_TEST

/* The hash LIST reports for path, or "" if it is not listed. */
static void
listed_hash(const char *path, char out[65])
{
	struct proto_msg *r = call(PROTO_LIST, NULL);
	char suffix[300];
	const char *v;
	size_t i, len;

	out[0] = '\0';
	snprintf(suffix, sizeof(suffix), "\t%s", path);
	for (i = 0; i < proto_nfields(r); i++) {
		proto_field(r, i, &v, &len);
		if (len > strlen(suffix) && strcmp(v + len - strlen(suffix), suffix) == 0) {
			/* TYPE SIZE MTIME MODE SHA PATH */
			const char *p = v;
			int tabs = 0;
			while (tabs < 4 && (p = strchr(p, '\t')))
				p++, tabs++;
			if (p)
				snprintf(out, 65, "%.64s", p);
		}
	}
	proto_msg_free(r);
}

START_TEST(hash_cache_sees_every_change)
{
	struct proto_msg *k;
	char h1[65], h2[65], h3[65];

	proto_msg_free(call(PROTO_PUT, "path", "f.txt", "data", "aaaa", NULL));
	listed_hash("f.txt", h1);
	listed_hash("f.txt", h2);
	ck_assert_str_eq(h1, h2);	/* unchanged: same hash (from the cache) */
	/* Same size, mtime put back: only ctime tells. */
	ck_assert_str_eq(run_sh("m=$(stat -c %y f.txt); printf bbbb > f.txt; touch -d \"$m\" f.txt;"
	    " echo ok", &k), "ok\n");
	proto_msg_free(k);
	listed_hash("f.txt", h3);
	ck_assert_str_ne(h1, h3);
	ck_assert_str_eq(h3, "81cc5b17018674b401b42f35ba07bb79e211239c23bffe658da1577e3e646877");
}
END_TEST

START_TEST(symlinks_are_never_followed)
{
	struct proto_msg *r, *k;
	const char *v;
	size_t i;

	proto_msg_free(call(PROTO_PUT, "path", "real.txt", "data", "mine", NULL));
	run_sh("ln -s /etc/passwd pw; ln -s /etc evil; ln -s real.txt alias; mkfifo pipe", &k);
	proto_msg_free(k);
	r = call(PROTO_GET, "path", "pw", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_ERR);
	proto_msg_free(r);
	r = call(PROTO_GET, "path", "evil/passwd", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_ERR);
	proto_msg_free(r);
	r = call(PROTO_GET, "path", "pipe", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_ERR);
	ck_assert_msg(strstr(proto_get(r, "error", NULL), "not a regular file"), "%s",
	    proto_get(r, "error", NULL));
	proto_msg_free(r);
	/* A PUT through a planted symlink must not write outside. */
	r = call(PROTO_PUT, "path", "evil/x", "data", "no", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_ERR);
	proto_msg_free(r);
	r = call(PROTO_PUT, "path", "alias", "data", "no", NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_ERR);
	proto_msg_free(r);
	ck_assert_str_eq(run_sh("cat real.txt", &k), "mine");
	proto_msg_free(k);
	r = call(PROTO_LIST, NULL);
	for (i = 0; i < proto_nfields(r); i++) {
		proto_field(r, i, &v, NULL);
		if (strstr(v, "\tpw") || strstr(v, "\tevil"))
			ck_assert_msg(v[0] == 'l', "symlink listed as %s", v);
		ck_assert_msg(!strstr(v, "\tevil/"), "walked into a symlink: %s", v);
	}
	proto_msg_free(r);
}
END_TEST

START_TEST(bad_paths_are_refused)
{
	static const char *const bad[] = { "../x", "/etc/x", "a/../../x", "a//b", "./x", "", "a/." };
	struct proto_msg *r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = call(PROTO_PUT, "path", bad[i], "data", "x", NULL);
		ck_assert_msg(proto_msg_type(r) == PROTO_ERR, "accepted %s", bad[i]);
		proto_msg_free(r);
		r = call(PROTO_GET, "path", bad[i], NULL);
		ck_assert_msg(proto_msg_type(r) == PROTO_ERR, "served %s", bad[i]);
		proto_msg_free(r);
	}
	r = call('Z', NULL);
	ck_assert_int_eq(proto_msg_type(r), PROTO_ERR);
	proto_msg_free(r);
}
END_TEST

START_TEST(a_run_leaves_no_sandbox_process)
{
	struct proto_msg *k;

	/* The runner sweeps the sandbox user's processes at the end of every run. */
	ck_assert_str_eq(run_sh("sleep 300 </dev/null >/dev/null 2>&1 & disown; echo ok", &k),
	    "ok\n");
	proto_msg_free(k);
	ck_assert_str_eq(run_sh("pgrep -c -u 1000 sleep || true", &k), "0\n");
	proto_msg_free(k);
}
END_TEST

/* An abort_check that fires once its time has come. */
static int
after_deadline(void *ctx)
{
	return clock_mono_ms() >= *(long long *)ctx;
}

START_TEST(a_cancel_stops_the_run_at_once_and_it_answers)
{
	struct proto_msg *req = proto_msg_new(PROTO_RUN), *rep = NULL, *k;
	long long fire = clock_mono_ms() + 300, t0 = clock_mono_ms();
	struct abort_check ab = { after_deadline, &fire };
	uint64_t v;

	ck_assert_int_eq(proto_add_str(req, "argv", "bash") | proto_add_str(req, "argv", "-c") |
	    proto_add_str(req, "argv", "echo started; sleep 30 & sleep 30; echo never") |
	    proto_add_str(req, "env", "PATH=/usr/bin:/bin") |
	    proto_add_str(req, "timeout_ms", "20000"), 0);
	ck_assert_int_eq(channel_call(ch, req, &rep, 25000, &ab), 0);
	/* Stopped at the cancel (300 ms), not at the 20 s timeout: a bound with
	 * room for a loaded machine. */
	ck_assert_int_lt(clock_mono_ms() - t0, 15000);
	ck_assert_int_eq(proto_msg_type(rep), PROTO_OK);
	ck_assert_int_eq(proto_get_u64(rep, "cancelled", &v), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(proto_get_u64(rep, "timed_out", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_str_eq(proto_get(rep, "stdout", NULL), "started\n");
	proto_msg_free(req);
	proto_msg_free(rep);
	/* Every process of the run is gone, and the channel serves the next request. */
	ck_assert_str_eq(run_sh("pgrep -c -u 1000 sleep || true", &k), "0\n");
	proto_msg_free(k);
}
END_TEST

START_TEST(a_second_channel_works_alongside)
{
	struct docker_err err = { 0, "" };
	struct channel *other;
	struct proto_msg *req = proto_msg_new(PROTO_HELLO), *rep;

	/* 30 s: opening one took over 5 s beside a gVisor stage and an e2e lane. */
	ck_assert_msg(sandbox_docker_channel(dk, cid, 30000, &other, &err) == DOCKER_OK,
	    "second channel: %s", err.msg);
	ck_assert_int_eq(channel_call(other, req, &rep, 30000, NULL), 0);
	ck_assert_str_eq(proto_get(rep, "version", NULL), "1");
	proto_msg_free(rep);
	channel_close(other);
	ck_assert_int_eq(channel_call(ch, req, &rep, 30000, NULL), 0);	/* the first still works */
	proto_msg_free(rep);
	proto_msg_free(req);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("runner");
	TCase *tc = tcase_create("protocol");
	SRunner *sr;
	int failed;

	log_setup(LOG_ERROR, LOG_TEXT);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, put_get_list);
	tcase_add_test(tc, hash_cache_sees_every_change);
	tcase_add_test(tc, symlinks_are_never_followed);
	tcase_add_test(tc, bad_paths_are_refused);
	tcase_add_test(tc, a_run_leaves_no_sandbox_process);
	tcase_add_test(tc, a_cancel_stops_the_run_at_once_and_it_answers);
	tcase_add_test(tc, a_second_channel_works_alongside);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
