/*
 * The Docker client's error paths against a fake engine on a unix socket:
 * each test scripts the one answer the fake gives.  The happy paths are
 * covered end to end against the real engine.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "docker.h"
#include "docker_json.h"
#include "suites.h"

struct fake {
	char path[108];
	int lfd;
	const char *answer;	/* raw HTTP answer; NULL: accept and stay silent */
	size_t answer_len;
	const char *later;	/* NULL, or bytes sent after answer once go is written to */
	size_t later_len;
	int go[2];		/* a pipe: the test says when later goes */
	pthread_t th;
};

static void *
fake_serve(void *arg)
{
	struct fake *f = arg;
	char req[8192];
	int fd;

	while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
		ssize_t n = read(fd, req, sizeof(req));
		(void)n;
		if (f->answer && write(fd, f->answer, f->answer_len) < 0)
			(void)0;
		if (f->later && read(f->go[0], req, 1) == 1 &&
		    write(fd, f->later, f->later_len) < 0)
			(void)0;
		if (!f->answer)
			sleep(2);
		close(fd);
	}
	return NULL;
}

static void
fake_start(struct fake *f, const char *answer, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->path, sizeof(f->path), "/tmp/cip-fake-%d-%ld.sock", getpid(), random());
	strcpy(sa.sun_path, f->path);
	f->answer = answer;
	f->answer_len = len;
	f->later = NULL;
	f->go[0] = f->go[1] = -1;
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(f->lfd, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 8), 0);
	pthread_create(&f->th, NULL, fake_serve, f);
}

static void
fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->th, NULL);
	unlink(f->path);
	if (f->go[0] >= 0) {
		close(f->go[0]);
		close(f->go[1]);
	}
}

static struct docker *
client(struct fake *f, long timeout_ms)
{
	char host[160];

	snprintf(host, sizeof(host), "unix://%s", f->path);
	return docker_new(host, timeout_ms);
}

/* A complete HTTP answer with a correct Content-Length (static storage). */
static const char *
answer(char *dst, size_t cap, const char *status_line, const char *extra_headers,
    const char *body, size_t *len)
{
	*len = (size_t)snprintf(dst, cap, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", status_line, extra_headers, strlen(body), body);
	return dst;
}

static char a500[512], a404[512], a400txt[512], apodman[512], aping[512], agarbage[512];
static size_t a500_len, a404_len, a400txt_len, apodman_len, aping_len, agarbage_len;

static void
answers_init(void)
{
	answer(a500, sizeof(a500), "500 Internal Server Error",
	    "Content-Type: application/json\r\n", "{\"message\":\"disk quota exceeded\"}", &a500_len);
	answer(a404, sizeof(a404), "404 Not Found", "Content-Type: application/json\r\n",
	    "{\"message\":\"No such container: abc\"}", &a404_len);
	answer(a400txt, sizeof(a400txt), "400 Bad Request", "Content-Type: text/plain\r\n",
	    "client version 1.41 is too old\n", &a400txt_len);
	answer(apodman, sizeof(apodman), "500 Internal Server Error",
	    "Content-Type: application/json\r\n", "{\"cause\":\"container state improper\","
	    "\"message\":\"container state improper\",\"response\":500}", &apodman_len);
	answer(aping, sizeof(aping), "200 OK",
	    "Api-Version: 1.99\r\nLibpod-Api-Version: 4.3.1\r\n", "OK", &aping_len);
	answer(agarbage, sizeof(agarbage), "201 Created", "", "notjson", &agarbage_len);
}

START_TEST(engine_message_reaches_the_error)
{
	struct docker_err err;
	struct fake f;
	struct docker *dk;
	char id[DOCKER_ID_MAX];

	fake_start(&f, a500, a500_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_start(dk, "abc", &err), DOCKER_EAPI);
	ck_assert_int_eq(err.status, 500);
	ck_assert_msg(strstr(err.msg, "disk quota exceeded"), "%s", err.msg);
	ck_assert_int_eq(docker_exec_create(dk, "abc", (const char *const[]){ "x", NULL }, "0:0",
	    1, id, &err), DOCKER_EAPI);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

START_TEST(not_found_and_plain_text)
{
	struct docker_err err;
	struct fake f;
	struct docker *dk;
	int running = 1;

	fake_start(&f, a404, a404_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_inspect_running(dk, "abc", &running, &err), DOCKER_ENOTFOUND);
	ck_assert_int_eq(running, 0);
	ck_assert_int_eq(docker_remove(dk, "abc", &err), DOCKER_OK);	/* gone is fine */
	docker_free(dk);
	fake_stop(&f);

	fake_start(&f, a400txt, a400txt_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_start(dk, "abc", &err), DOCKER_EAPI);
	ck_assert_msg(strstr(err.msg, "too old"), "%s", err.msg);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

START_TEST(podman_conflict_and_ping)
{
	struct docker_err err;
	struct fake f;
	struct docker *dk;

	fake_start(&f, apodman, apodman_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_start(dk, "abc", &err), DOCKER_ECONFLICT);
	docker_free(dk);
	fake_stop(&f);

	fake_start(&f, aping, aping_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_negotiate(dk, &err), DOCKER_OK);
	ck_assert_str_eq(docker_api_version(dk), "1.45");	/* capped at what we know */
	ck_assert(docker_is_podman(dk));
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

/* GET /info read; rootless Podman on cgroup v2 also needs /libpod/info's list. */
START_TEST(info_and_libpod_info)
{
	static char a[1024];
	struct docker_err err;
	struct docker_info info;
	struct fake f;
	struct docker *dk;
	size_t len;

	answer(a, sizeof(a), "200 OK", "Api-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\n",
	    "{\"MemoryLimit\":true,\"PidsLimit\":true,\"CpuCfsQuota\":true,"
	    "\"CgroupVersion\":\"1\",\"Rootless\":true}", &len);
	fake_start(&f, a, len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_negotiate(dk, &err), DOCKER_OK);
	ck_assert_int_eq(docker_info(dk, &info, &err), DOCKER_OK);
	ck_assert_int_eq(info.rootless, 1);
	ck_assert_int_eq(info.cgroup_version, 1);
	ck_assert_int_eq(info.controllers, -1);
	docker_free(dk);
	fake_stop(&f);

	/* The fake answers /libpod/info with the same body: no controller list. */
	answer(a, sizeof(a), "200 OK", "Api-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\n",
	    "{\"CgroupVersion\":\"2\",\"Rootless\":true}", &len);
	fake_start(&f, a, len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_negotiate(dk, &err), DOCKER_OK);
	ck_assert_int_eq(docker_info(dk, &info, &err), DOCKER_EAPI);
	ck_assert_msg(strstr(err.msg, "cgroupControllers"), "%s", err.msg);
	docker_free(dk);
	fake_stop(&f);

	fake_start(&f, a404, a404_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_info(dk, &info, &err), DOCKER_ENOTFOUND);
	docker_free(dk);
	fake_stop(&f);

	fake_start(&f, agarbage, agarbage_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_info(dk, &info, &err), DOCKER_EAPI);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

START_TEST(no_engine_and_silent_engine)
{
	struct docker_err err;
	struct docker *dk = docker_new("unix:///nonexistent/docker.sock", 2000);
	struct fake f;
	struct docker_stream *st;

	ck_assert_int_eq(docker_negotiate(dk, &err), DOCKER_EUNAVAIL);
	ck_assert_int_eq(err.status, 0);
	ck_assert_int_eq(docker_start(dk, "abc", &err), DOCKER_EUNAVAIL);
	docker_free(dk);

	fake_start(&f, NULL, 0);
	dk = client(&f, 300);
	ck_assert_int_eq(docker_start(dk, "abc", &err), DOCKER_EUNAVAIL);
	ck_assert_int_eq(docker_exec_attach(dk, "e", &st, &err), DOCKER_EUNAVAIL);
	ck_assert_ptr_null(st);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

START_TEST(garbage_answers)
{
	struct docker_err err;
	struct fake f;
	struct docker *dk;
	struct docker_stream *st;
	char id[DOCKER_ID_MAX];
	struct docker_create_spec spec = { .image = "x", .memory_bytes = 1 << 26,
	    .nano_cpus = 1000000000, .pids = 64, .workspace_mb = 1, .tmp_mb = 1,
	    .nofile = 64, .nproc = 64 };

	fake_start(&f, agarbage, agarbage_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_create(dk, &spec, id, &err), DOCKER_EAPI);
	ck_assert_msg(strstr(err.msg, "no container id"), "%s", err.msg);
	ck_assert_int_eq(docker_exec_attach(dk, "e", &st, &err), DOCKER_EAPI);
	docker_free(dk);
	fake_stop(&f);

	fake_start(&f, a404, a404_len);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_exec_attach(dk, "e", &st, &err), DOCKER_ENOTFOUND);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

/*
 * Bytes that come while a stream waits unused: quiet reads them through
 * curl (under TLS the socket may not show what curl holds), says so, and
 * keeps them for recv; then the EOF, likewise.
 */
START_TEST(quiet_keeps_what_it_reads)
{
	static const char head[] = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n"
	    "Upgrade: tcp\r\n\r\n";
	static const char later[] = "unasked";
	struct docker_err err;
	struct docker_stream *st;
	struct docker *dk;
	struct fake f;
	char b[64];
	int i;

	fake_start(&f, head, sizeof(head) - 1);
	ck_assert_int_eq(pipe(f.go), 0);
	f.later = later;
	f.later_len = sizeof(later) - 1;
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_exec_attach(dk, "e", &st, &err), DOCKER_OK);
	ck_assert_int_eq(docker_stream_quiet(st), 1);
	ck_assert_int_eq(write(f.go[1], "g", 1), 1);
	/* Bounded by tries, not time: quiet turns 0 once the bytes arrive. */
	for (i = 0; i < 2000 && docker_stream_quiet(st); i++)
		usleep(1000);
	ck_assert_int_eq(docker_stream_quiet(st), 0);
	ck_assert_int_eq(docker_stream_recv(st, b, sizeof(b), 2000), (long)sizeof(later) - 1);
	ck_assert(memcmp(b, later, sizeof(later) - 1) == 0);
	/* The fake closes: EOF, seen by quiet and then by recv. */
	for (i = 0; i < 2000 && docker_stream_quiet(st); i++)
		usleep(1000);
	ck_assert_int_eq(docker_stream_quiet(st), 0);
	ck_assert_int_eq(docker_stream_recv(st, b, sizeof(b), 2000), 0);
	docker_stream_close(st);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

/* Go's answer to plain HTTP on its TLS port: a refusal to name, not to wait out. */
START_TEST(plain_http_to_a_tls_port)
{
	static const char go400[] = "HTTP/1.0 400 Bad Request\r\n\r\n"
	    "Client sent an HTTP request to an HTTPS server.\n";
	struct docker_err err;
	struct docker *dk;
	struct fake f;

	fake_start(&f, go400, sizeof(go400) - 1);
	dk = client(&f, 2000);
	ck_assert_int_eq(docker_negotiate(dk, &err), DOCKER_ETLS);
	ck_assert_msg(strstr(err.msg, "status 400: Client sent an HTTP request to an HTTPS "
	    "server. (the engine wants TLS: set CI_DOCKER_TLS_CA"), "%s", err.msg);
	/* docker_ping's callers know only "no engine". */
	ck_assert_int_eq(docker_ping(dk, &err), DOCKER_EUNAVAIL);
	/* TLS is for tcp:// engines. */
	ck_assert_int_eq(docker_set_tls(dk, "/x/ca.pem", NULL, NULL), DOCKER_EAPI);
	docker_free(dk);
	fake_stop(&f);
}
END_TEST

/* Found by fuzz_engine_json: "122222222222.43" overflowed major * 100. */
START_TEST(api_versions_read_within_bounds)
{
	ck_assert_int_eq(docker_json_api_version("1.41"), 141);
	ck_assert_int_eq(docker_json_api_version("1.45"), 145);
	ck_assert_int_eq(docker_json_api_version("122222222222.43"), 0);
	ck_assert_int_eq(docker_json_api_version("2147483647.1"), 0);
	ck_assert_int_eq(docker_json_api_version("1.100"), 0);
	ck_assert_int_eq(docker_json_api_version("x"), 0);
	ck_assert_int_eq(docker_json_api_version(""), 0);
}
END_TEST

/*
 * Found by fuzz_engine_json: an "Id" that is an object was taken as its
 * JSON text; one that is null crashed (strlen(NULL)).
 */
START_TEST(a_create_answer_id_is_a_string)
{
	char id[DOCKER_ID_MAX];

	ck_assert_int_eq(docker_json_id("{\"Id\":\"4f66ad5e\"}", id), 0);
	ck_assert_str_eq(id, "4f66ad5e");
	ck_assert_int_eq(docker_json_id("{\"Id\":{\"ci\":\"y\"}}", id), -1);
	ck_assert_int_eq(docker_json_id("{\"Id\":null}", id), -1);
	ck_assert_int_eq(docker_json_id("{\"Id\":7}", id), -1);
	ck_assert_int_eq(docker_json_id("[]", id), -1);
	ck_assert_int_eq(docker_json_id(NULL, id), -1);
}
END_TEST

Suite *
suite_docker_fake(void)
{
	Suite *s = suite_create("docker_fake");
	TCase *tc = tcase_create("errors");

	answers_init();
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, engine_message_reaches_the_error);
	tcase_add_test(tc, api_versions_read_within_bounds);
	tcase_add_test(tc, a_create_answer_id_is_a_string);
	tcase_add_test(tc, not_found_and_plain_text);
	tcase_add_test(tc, podman_conflict_and_ping);
	tcase_add_test(tc, info_and_libpod_info);
	tcase_add_test(tc, no_engine_and_silent_engine);
	tcase_add_test(tc, garbage_answers);
	tcase_add_test(tc, quiet_keeps_what_it_reads);
	tcase_add_test(tc, plain_http_to_a_tls_port);
	suite_add_tcase(s, tc);
	return s;
}
