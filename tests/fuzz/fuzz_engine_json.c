/*
 * Fuzz target: the Engine API answers the client reads (docker_json.c),
 * every reader on every input: an error body, a create answer's Id, an
 * inspect answer, a container list, a GET /info answer (with the verdict
 * on the caps it implies) and Podman's /libpod/info controller list, and
 * (from the first 15 bytes, as the ping header is cut) an Api-Version.
 * Asserts: an id taken is the answer's "Id" string and fits; a listed
 * container has an id, and every field is NUL-terminated within its array;
 * the message is one line that fits; a version reads as 0 or as
 * major*100+minor with a minor below 100; /info members read as their
 * documented ranges; the verdict's line is empty exactly when every cap is
 * enforced, one line, NUL-terminated.
 */
#include "config.h"

#include <json-c/json.h>
#include <string.h>

#include "cfg.h"
#include "docker_json.h"
#include "engine_limits.h"
#include "fuzz.h"

struct walk {
	size_t n, stop_at;
};

static int
on_container(const struct docker_container *c, void *ctx)
{
	struct walk *w = ctx;
	const char *v;

	FUZZ_ASSERT(c->id[0] != '\0');
	FUZZ_ASSERT(memchr(c->id, '\0', sizeof(c->id)) && memchr(c->image, '\0', sizeof(c->image)) &&
	    memchr(c->state, '\0', sizeof(c->state)));
	FUZZ_ASSERT(!c->labelled || c->labels);
	if ((v = docker_label(c, "cip.session")))
		FUZZ_ASSERT(strlen(v) < (1u << 30));
	return ++w->n == w->stop_at;
}

/* /info and /libpod/info readers, and the startup verdict on what they read. */
static void
check_info(const char *body, int accepted)
{
	struct docker_info info;
	enum engine_limits_verdict v;
	char msg[600];
	int rc, cg;

	rc = docker_json_info(body, &info);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	FUZZ_ASSERT(info.memory_limit >= -1 && info.memory_limit <= 1);
	FUZZ_ASSERT(info.pids_limit >= -1 && info.pids_limit <= 1);
	FUZZ_ASSERT(info.cpu_cfs_quota >= -1 && info.cpu_cfs_quota <= 1);
	FUZZ_ASSERT(info.cgroup_version >= 0 && info.cgroup_version <= 2);
	FUZZ_ASSERT(info.rootless == 0 || info.rootless == 1);
	cg = docker_json_libpod_controllers(body);
	FUZZ_ASSERT(cg >= -1 && cg <= (DOCKER_CG_MEMORY | DOCKER_CG_PIDS | DOCKER_CG_CPU));
	info.controllers = cg;
	v = engine_limits_verdict(rc == 0 ? &info : NULL, "GET /info: no JSON object",
	    CFG_LIMIT_ALL, accepted & CFG_LIMIT_ALL, msg, sizeof(msg));
	FUZZ_ASSERT(memchr(msg, '\0', sizeof(msg)) && !strpbrk(msg, "\r\n"));
	FUZZ_ASSERT((v == ENGINE_LIMITS_OK) == (msg[0] == '\0'));
	FUZZ_ASSERT(rc == 0 || v != ENGINE_LIMITS_OK);
}

static void
check_id(const char *body)
{
	struct json_object *o = json_tokener_parse(body), *v;
	char id[DOCKER_ID_MAX];

	if (docker_json_id(body, id) == 0) {
		FUZZ_ASSERT(strlen(id) < DOCKER_ID_MAX);
		FUZZ_ASSERT(o && json_object_object_get_ex(o, "Id", &v) &&
		    json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), id) == 0);
	}
	json_object_put(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), msg[400], head[16];
	struct walk w = { 0, 0 };
	size_t n;
	int v, r;

	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';

	docker_json_message(body, size, msg, sizeof(msg));
	FUZZ_ASSERT(strlen(msg) < sizeof(msg) && !strpbrk(msg, "\r\n"));
	check_id(body);
	check_info(body, size ? data[size - 1] : 0);
	r = docker_json_running(body);
	FUZZ_ASSERT(r == 0 || r == 1);
	r = docker_json_oom_killed(body);
	FUZZ_ASSERT(r == 0 || r == 1);
	w.stop_at = size ? data[0] % 4 : 0;	/* 0: never stop early */
	n = docker_json_containers(body, "cip.session", on_container, &w);
	FUZZ_ASSERT(n == w.n && (!w.stop_at || n <= w.stop_at));

	snprintf(head, sizeof(head), "%s", body);
	v = docker_json_api_version(head);
	FUZZ_ASSERT(v == 0 || (v >= 100 && v % 100 < 100));
	free(body);
	return 0;
}
