/*
 * The parsing of programmatic tool calling (see ptc_parse.h): request
 * bodies, tool definitions, and the two lines a program exchanges with
 * the client through the runner.
 */
#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptc_parse.h"

#define MAX_DEPTH 64

static int
is_reserved(const char *lang, const char *s)
{
	static const char *const py[] = { "False", "None", "True", "and", "as", "assert", "async",
	    "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
	    "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
	    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", NULL };
	static const char *const sh[] = { "if", "then", "else", "elif", "fi", "case", "esac", "for",
	    "select", "while", "until", "do", "done", "in", "function", "time", "coproc", NULL };
	const char *const *w;

	for (w = strcmp(lang, "bash") == 0 ? sh : py; *w; w++)
		if (strcmp(*w, s) == 0)
			return 1;
	return 0;
}

int
ptc_tool_name(const char *lang, const char *name, char *out, size_t cap)
{
	int bash = strcmp(lang, "bash") == 0;
	size_t o = 0;
	const char *c;

	if (cap < 8)
		return -1;
	for (c = name; *c && o + 6 < cap; c++) {
		if (*c == '-' || *c == ' ' || (bash && *c == '.'))
			out[o++] = '_';
		else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '_')
			out[o++] = *c;
	}
	out[o] = '\0';
	if (o == 0)
		return -1;
	if (out[0] >= '0' && out[0] <= '9') {
		memmove(out + 1, out, o + 1);
		out[0] = '_';
	}
	if (is_reserved(lang, out))
		strcat(out, "_tool");
	return 0;
}

struct json_object *
ptc_body_parse(const char *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(MAX_DEPTH);
	struct json_object *o = NULL;

	if (tok && len < 0x7fffffff)
		o = json_tokener_parse_ex(tok, body, (int)len);
	if (tok && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

struct exec_req *
ptc_initial_exec(struct json_object *o, char *err, size_t errlen)
{
	struct json_object *copy = NULL, *v;
	struct exec_req *er = NULL;
	const char *lang = "py", *s;

	if ((json_object_object_get_ex(o, "lang", &v) || json_object_object_get_ex(o, "language", &v)) &&
	    json_object_is_type(v, json_type_string)) {
		lang = json_object_get_string(v);
		if (strcmp(lang, "bash") != 0 && strcmp(lang, "py") != 0 && strcmp(lang, "python") != 0) {
			snprintf(err, errlen, "lang must be bash or python");
			return NULL;
		}
	}
	if (json_object_object_get_ex(o, "files", &v) && json_object_is_type(v, json_type_array)) {
		size_t i;

		for (i = 0; i < json_object_array_length(v); i++) {
			struct json_object *f = json_object_array_get_idx(v, i), *n;
			if (json_object_object_get_ex(f, "name", &n) &&
			    json_object_is_type(n, json_type_string) &&
			    strcmp(json_object_get_string(n), "_ptc_history.json") == 0) {
				snprintf(err, errlen, "files[%zu]: the name _ptc_history.json is reserved", i);
				return NULL;
			}
		}
	}
	if (json_object_deep_copy(o, &copy, NULL) < 0)
		return NULL;
	json_object_object_add(copy, "lang", json_object_new_string(strcmp(lang, "bash") == 0 ?
	    "bash" : "py"));
	json_object_object_del(copy, "tools");
	s = json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN);
	if (exec_req_parse(s, strlen(s), &er, err, errlen) < 0)
		er = NULL;
	json_object_put(copy);
	return er;
}

int
ptc_tools_take(int bash, struct json_object *defs, struct ptc_tool **tools, size_t *ntools,
    char **env, char *err, size_t errlen)
{
	struct json_object *d, *v;
	size_t i, j, n = json_object_array_length(defs), envlen = 32;
	char as[PTC_NAME_MAX + 8], *o;

	*tools = NULL;
	*ntools = 0;
	*env = NULL;
	if (n > PTC_MAX_TOOLS) {
		snprintf(err, errlen, "tools: at most %d", PTC_MAX_TOOLS);
		return -1;
	}
	if (n && !(*tools = calloc(n, sizeof(**tools))))
		goto nomem;
	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(defs, i);
		if (!json_object_is_type(d, json_type_object) || !json_object_object_get_ex(d, "name", &v) ||
		    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > PTC_NAME_MAX ||
		    ptc_tool_name(bash ? "bash" : "py", json_object_get_string(v), as, sizeof(as)) < 0) {
			snprintf(err, errlen, "tools[%zu] needs a name of 1 to %d characters", i, PTC_NAME_MAX);
			return -1;
		}
		for (j = 0; j < *ntools; j++)
			if (strcmp((*tools)[j].as, as) == 0) {
				snprintf(err, errlen, "tools[%zu] and tools[%zu] are both called %s in code", j,
				    i, as);
				return -1;
			}
		if (!((*tools)[i].name = strdup(json_object_get_string(v))) ||
		    !((*tools)[i].as = strdup(as)))
			goto nomem;
		(*ntools)++;
		envlen += strlen(as) + 2 + json_object_get_string_len(v) * 6 + 3;
	}
	if (!(*env = o = malloc(envlen)))
		goto nomem;
	o += sprintf(o, "CIP_PTC_TOOLS=");
	for (i = 0; i < *ntools; i++) {
		struct json_object *s = json_object_new_string((*tools)[i].name);
		o += sprintf(o, "%s\t%s\n", (*tools)[i].as,
		    json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN));
		json_object_put(s);
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

void
ptc_tools_free(struct ptc_tool *tools, size_t ntools)
{
	size_t i;

	for (i = 0; i < ntools; i++) {
		free(tools[i].name);
		free(tools[i].as);
	}
	free(tools);
}

/* The client's name of the tool the program called name (its own name, as sent), or NULL. */
static const struct ptc_tool *
find_tool(const struct ptc_tool *tools, size_t ntools, const char *name)
{
	size_t i;

	for (i = 0; i < ntools; i++)
		if (strcmp(tools[i].name, name) == 0)
			return &tools[i];
	return NULL;
}

struct json_object *
ptc_calls_parse(const struct ptc_tool *tools, size_t ntools, const char *line, size_t len,
    char *err, size_t errlen)
{
	struct json_object *o = json_tokener_parse(line), *calls, *c, *id, *name, *out;
	size_t i, n;

	(void)len;
	if (!o || !json_object_object_get_ex(o, "calls", &calls) ||
	    !json_object_is_type(calls, json_type_array) || !(n = json_object_array_length(calls))) {
		snprintf(err, errlen, "sandbox emitted an empty pending tool call "
		    "block; aborting to avoid a tight retry loop");
		json_object_put(o);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		c = json_object_array_get_idx(calls, i);
		/* Not left over from the call before: the message would name its tool. */
		name = NULL;
		if (!json_object_is_type(c, json_type_object) ||
		    !json_object_object_get_ex(c, "id", &id) || !json_object_is_type(id, json_type_string) ||
		    !json_object_object_get_ex(c, "name", &name) ||
		    !json_object_is_type(name, json_type_string) ||
		    !find_tool(tools, ntools, json_object_get_string(name))) {
			snprintf(err, errlen, "Sandbox requested an unregistered tool: %.100s",
			    name && json_object_is_type(name, json_type_string) ?
			    json_object_get_string(name) : "?");
			json_object_put(o);
			return NULL;
		}
		if (!json_object_object_get_ex(c, "input", NULL))
			json_object_object_add(c, "input", json_object_new_object());
	}
	out = json_object_get(calls);
	json_object_put(o);
	return out;
}

char *
ptc_results_line(int bash, struct json_object *results, size_t *len, char *err, size_t errlen)
{
	struct json_object *o, *first, *v;
	const char *s;
	char *line;
	size_t i;

	if (!json_object_is_type(results, json_type_array) || !json_object_array_length(results)) {
		snprintf(err, errlen, "tool_results must be a non-empty array");
		return NULL;
	}
	for (i = 0; i < json_object_array_length(results); i++)
		if (!json_object_is_type(json_object_array_get_idx(results, i), json_type_object)) {
			snprintf(err, errlen, "tool_results[%zu] must be an object", i);
			return NULL;
		}
	if (!bash) {
		o = json_object_new_object();
		json_object_object_add(o, "results", json_object_get(results));
		line = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		first = json_object_array_get_idx(results, 0);
		if (json_object_object_get_ex(first, "is_error", &v) && json_object_get_boolean(v)) {
			s = json_object_object_get_ex(first, "error_message", &v) ?
			    json_object_get_string(v) : "the tool failed";
			if (asprintf(&line, "1\t%s", s ? s : "the tool failed") < 0)
				line = NULL;
			for (i = 0; line && line[i]; i++)
				if (line[i] == '\n' || line[i] == '\r')
					line[i] = ' ';
		} else {
			json_object_object_get_ex(first, "result", &v);
			if (asprintf(&line, "0\t%s", v ? json_object_to_json_string_ext(v,
			    JSON_C_TO_STRING_PLAIN) : "null") < 0)
				line = NULL;
		}
	}
	if (!line)
		snprintf(err, errlen, "out of memory");
	else
		*len = strlen(line);
	return line;
}
