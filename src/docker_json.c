/*
 * Reading the Engine API's JSON answers (see docker_json.h).  Nothing
 * here trusts the engine's answer to have the shape its documentation
 * gives: a missing or mistyped member reads as absent.
 */
#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_json.h"

void
docker_json_message(const char *body, size_t len, char *out, size_t cap)
{
	struct json_object *j = NULL, *m;
	size_t i;

	if (body && (j = json_tokener_parse(body)) &&
	    json_object_object_get_ex(j, "message", &m) && json_object_is_type(m, json_type_string))
		snprintf(out, cap, "%s", json_object_get_string(m));
	else
		snprintf(out, cap, "%.*s", (int)(len < 300 ? len : 300), body ? body : "");
	json_object_put(j);
	for (i = 0; out[i]; i++)
		if (out[i] == '\n' || out[i] == '\r')
			out[i] = ' ';
}

int
docker_json_id(const char *body, char id[DOCKER_ID_MAX])
{
	struct json_object *resp = body ? json_tokener_parse(body) : NULL, *jid;
	int rc = -1;

	/* Only a string: null has no text (strlen(NULL)), an object's would be its JSON. */
	if (resp && json_object_object_get_ex(resp, "Id", &jid) &&
	    json_object_is_type(jid, json_type_string) &&
	    strlen(json_object_get_string(jid)) < DOCKER_ID_MAX) {
		strcpy(id, json_object_get_string(jid));
		rc = 0;
	}
	json_object_put(resp);
	return rc;
}

/* A boolean member of a container inspect body's State; 0 if absent or unparsable. */
static int
state_flag(const char *body, const char *key)
{
	struct json_object *j = NULL, *st, *v;
	int flag = 0;

	if (body && (j = json_tokener_parse(body)) &&
	    json_object_object_get_ex(j, "State", &st) &&
	    json_object_object_get_ex(st, key, &v))
		flag = json_object_get_boolean(v);
	json_object_put(j);
	return flag;
}

int
docker_json_running(const char *body)
{
	return state_flag(body, "Running");
}

int
docker_json_oom_killed(const char *body)
{
	return state_flag(body, "OOMKilled");
}

/* Copy a string member of item into out ("" if absent). */
static void
json_str(struct json_object *item, const char *key, char *out, size_t cap)
{
	struct json_object *v;

	out[0] = '\0';
	if (json_object_object_get_ex(item, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(out, cap, "%s", json_object_get_string(v));
}

static void
container_of(struct json_object *item, const char *key, struct docker_container *c)
{
	struct json_object *labels, *v;

	memset(c, 0, sizeof(*c));
	json_str(item, "Id", c->id, sizeof(c->id));
	json_str(item, "Image", c->image, sizeof(c->image));
	json_str(item, "State", c->state, sizeof(c->state));
	if (json_object_object_get_ex(item, "Labels", &labels) &&
	    json_object_is_type(labels, json_type_object)) {
		c->labels = labels;
		c->labelled = key && json_object_object_get_ex(labels, key, &v);
	}
}

const char *
docker_label(const struct docker_container *c, const char *key)
{
	struct json_object *v;

	if (!c->labels || !json_object_object_get_ex((struct json_object *)c->labels, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

size_t
docker_json_containers(const char *body, const char *key, docker_container_cb cb, void *ctx)
{
	struct json_object *resp = body ? json_tokener_parse(body) : NULL;
	struct docker_container c;
	size_t i, len, seen = 0;

	len = json_object_is_type(resp, json_type_array) ? json_object_array_length(resp) : 0;
	for (i = 0; i < len; i++) {
		container_of(json_object_array_get_idx(resp, i), key, &c);
		if (!c.id[0])
			continue;
		seen++;
		if (cb(&c, ctx))
			break;
	}
	json_object_put(resp);
	return seen;
}

int
docker_json_api_version(const char *v)
{
	char *end, *mend;
	long maj, min;

	/* strtol, not sscanf: a header "122222222222.43" must not overflow. */
	maj = strtol(v, &end, 10);
	if (end == v || *end != '.' || maj < 1 || maj > 99)
		return 0;
	min = strtol(end + 1, &mend, 10);
	if (mend == end + 1 || min < 0 || min > 99)
		return 0;
	return (int)(maj * 100 + min);
}

/* A boolean member: 1 or 0, -1 if absent or not a boolean. */
static int
json_flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -1;
	return json_object_get_boolean(v);
}

int
docker_json_info(const char *body, struct docker_info *out)
{
	struct json_object *j = body ? json_tokener_parse(body) : NULL, *v, *opt;
	const char *s;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	out->memory_limit = out->pids_limit = out->cpu_cfs_quota = -1;
	out->controllers = -1;
	if (!json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return -1;
	}
	out->memory_limit = json_flag(j, "MemoryLimit");
	out->pids_limit = json_flag(j, "PidsLimit");
	out->cpu_cfs_quota = json_flag(j, "CpuCfsQuota");
	/* Podman says Rootless; dockerd (and newer Podman) list name=rootless. */
	out->rootless = json_flag(j, "Rootless") == 1;
	if (json_object_object_get_ex(j, "SecurityOptions", &v) &&
	    json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			opt = json_object_array_get_idx(v, i);
			if (json_object_is_type(opt, json_type_string) &&
			    strcmp(json_object_get_string(opt), "name=rootless") == 0)
				out->rootless = 1;
		}
	}
	if (json_object_object_get_ex(j, "CgroupVersion", &v) &&
	    json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		out->cgroup_version = strcmp(s, "1") == 0 ? 1 : strcmp(s, "2") == 0 ? 2 : 0;
	}
	out->cgroup_none = json_object_object_get_ex(j, "CgroupDriver", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), "none") == 0;
	json_object_put(j);
	return 0;
}

int
docker_json_libpod_controllers(const char *body)
{
	struct json_object *j = body ? json_tokener_parse(body) : NULL, *host, *list, *c;
	const char *name;
	size_t i, n;
	int bits = -1;

	if (json_object_is_type(j, json_type_object) &&
	    json_object_object_get_ex(j, "host", &host) &&
	    json_object_object_get_ex(host, "cgroupControllers", &list) &&
	    json_object_is_type(list, json_type_array)) {
		bits = 0;
		n = json_object_array_length(list);
		for (i = 0; i < n; i++) {
			c = json_object_array_get_idx(list, i);
			if (!json_object_is_type(c, json_type_string))
				continue;
			name = json_object_get_string(c);
			if (strcmp(name, "memory") == 0)
				bits |= DOCKER_CG_MEMORY;
			else if (strcmp(name, "pids") == 0)
				bits |= DOCKER_CG_PIDS;
			else if (strcmp(name, "cpu") == 0)
				bits |= DOCKER_CG_CPU;
		}
	}
	json_object_put(j);
	return bits;
}
