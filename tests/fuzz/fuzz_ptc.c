/*
 * Fuzz target: what programmatic tool calling parses (ptc_parse.c).  The
 * input is "BODY\nCALLS": BODY a POST /exec/programmatic body, CALLS the
 * line a sandboxed program writes to ask for tool calls.  Asserts: an
 * initial request becomes a py or bash exec; its tools get distinct names
 * that are identifiers of the language and not its keywords, and the
 * CIP_PTC_TOOLS entry lists each (name decoding back to the client's);
 * parsed calls name registered tools and carry an id and an input; a
 * results line is one line, and Python's decodes back to the client's
 * results.
 */
#include "config.h"

#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "ptc_parse.h"

static int
identifier(const char *s)
{
	size_t i;

	if (!s[0] || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static void
check_tools(int bash, const struct ptc_tool *t, size_t n, const char *env)
{
	static const char *const py[] = { "if", "for", "in", "def", "class", "None", "True", NULL };
	static const char *const sh[] = { "if", "for", "in", "do", "done", "function", NULL };
	const char *const *kw = bash ? sh : py;
	struct json_object *name;
	const char *line = env + strlen("CIP_PTC_TOOLS="), *nl, *tab;
	size_t i, j;
	char *copy;

	FUZZ_ASSERT(strncmp(env, "CIP_PTC_TOOLS=", 14) == 0);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(identifier(t[i].as));
		for (j = 0; kw[j]; j++)
			FUZZ_ASSERT(strcmp(t[i].as, kw[j]) != 0);
		for (j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(t[i].as, t[j].as) != 0);
		/* The entry's line i: "as\t<the client's name as a JSON string>\n". */
		FUZZ_ASSERT((nl = strchr(line, '\n')) && (tab = memchr(line, '\t', (size_t)(nl - line))));
		FUZZ_ASSERT((size_t)(tab - line) == strlen(t[i].as) &&
		    memcmp(line, t[i].as, strlen(t[i].as)) == 0);
		FUZZ_ASSERT((copy = strndup(tab + 1, (size_t)(nl - tab - 1))));
		name = json_tokener_parse(copy);
		FUZZ_ASSERT(name && json_object_is_type(name, json_type_string) &&
		    strcmp(json_object_get_string(name), t[i].name) == 0);
		json_object_put(name);
		free(copy);
		line = nl + 1;
	}
	FUZZ_ASSERT(*line == '\0');
}

static void
check_calls(const struct ptc_tool *t, size_t n, const char *line, size_t len)
{
	struct json_object *calls, *c, *v;
	char err[256] = "";
	size_t i, j;
	int found;

	if (!(calls = ptc_calls_parse(t, n, line, len, err, sizeof(err)))) {
		FUZZ_ASSERT(err[0] != '\0');
		return;
	}
	FUZZ_ASSERT(json_object_is_type(calls, json_type_array) && json_object_array_length(calls));
	for (i = 0; i < json_object_array_length(calls); i++) {
		c = json_object_array_get_idx(calls, i);
		FUZZ_ASSERT(json_object_object_get_ex(c, "id", &v) && json_object_is_type(v, json_type_string));
		FUZZ_ASSERT(json_object_object_get_ex(c, "input", NULL));
		FUZZ_ASSERT(json_object_object_get_ex(c, "name", &v) && json_object_is_type(v, json_type_string));
		for (j = 0, found = 0; j < n; j++)
			found |= strcmp(t[j].name, json_object_get_string(v)) == 0;
		FUZZ_ASSERT(found);
	}
	json_object_put(calls);
}

static void
check_results(struct json_object *results)
{
	struct json_object *back, *r;
	char err[256] = "", *line;
	size_t len = 0;
	int bash;

	for (bash = 0; bash <= 1; bash++) {
		if (!(line = ptc_results_line(bash, results, &len, err, sizeof(err)))) {
			FUZZ_ASSERT(err[0] != '\0');
			continue;
		}
		FUZZ_ASSERT(len == strlen(line) && !strpbrk(line, "\r\n"));
		if (bash) {
			FUZZ_ASSERT(strncmp(line, "0\t", 2) == 0 || strncmp(line, "1\t", 2) == 0);
		} else {
			back = json_tokener_parse(line);
			FUZZ_ASSERT(back && json_object_object_get_ex(back, "results", &r));
			FUZZ_ASSERT(json_object_equal(r, results));
			json_object_put(back);
		}
		free(line);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t blen = nl ? (size_t)(nl - data) : size, ntools = 0;
	struct json_object *o, *tools, *v;
	struct ptc_tool *t = NULL;
	struct exec_req *er;
	char err[512] = "", *env = NULL, *line;
	int bash;

	if (!(o = ptc_body_parse((const char *)data, blen)))
		return 0;
	if (json_object_object_get_ex(o, "tool_results", &v))
		check_results(v);
	if (!json_object_object_get_ex(o, "tools", &tools) ||
	    !json_object_is_type(tools, json_type_array) || !(er = ptc_initial_exec(o, err, sizeof(err))))
		goto out;
	FUZZ_ASSERT(er->lang && (!strcmp(er->lang->id, "py") || !strcmp(er->lang->id, "bash")));
	bash = strcmp(er->lang->id, "bash") == 0;
	exec_req_free(er);
	if (ptc_tools_take(bash, tools, &t, &ntools, &env, err, sizeof(err)) == 0) {
		check_tools(bash, t, ntools, env);
		if (nl && (line = strndup((const char *)nl + 1, size - blen - 1))) {
			check_calls(t, ntools, line, strlen(line));
			free(line);
		}
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	ptc_tools_free(t, ntools);
	free(env);
out:
	json_object_put(o);
	return 0;
}
