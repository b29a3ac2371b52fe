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
