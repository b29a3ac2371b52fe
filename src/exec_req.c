#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_req.h"
#include "ids.h"
#include "names.h"

#define MAX_ARGS 256
#define MAX_FILES 1000
#define MAX_DEPTH 16

void
exec_req_free(struct exec_req *r)
{
	size_t i;

	if (!r)
		return;
	free(r->code);
	free(r->unknown_lang);
	for (i = 0; i < r->nargs; i++)
		free(r->args[i]);
	free(r->args);
	free(r->session_id);
	free(r->hint);
	free(r->user_id);
	for (i = 0; i < r->nfiles; i++) {
		free(r->files[i].id);
		free(r->files[i].bucket);
		free(r->files[i].name);
		free(r->files[i].kind);
	}
	free(r->files);
	free(r);
}

/* A copy of an optional string field; -1 if present but not a string. */
static int
opt_string(struct json_object *o, const char *key, char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = strdup(json_object_get_string(v));
	return *out ? 0 : -1;
}

/* args: an array of strings (numbers and booleans are taken as text), or one string. */
static int
parse_args(struct exec_req *r, struct json_object *v, char *err, size_t errlen)
{
	struct json_object *a;
	size_t i, n;

	if (json_object_is_type(v, json_type_string)) {
		if (!(r->args = calloc(1, sizeof(char *))) ||
		    !(r->args[0] = strdup(json_object_get_string(v))))
			goto nomem;
		r->nargs = 1;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "args must be an array of strings");
		return -1;
	}
	n = json_object_array_length(v);
	if (n > MAX_ARGS) {
		snprintf(err, errlen, "args: at most %d arguments", MAX_ARGS);
		return -1;
	}
	if (n && !(r->args = calloc(n, sizeof(char *))))
		goto nomem;
	for (i = 0; i < n; i++) {
		a = json_object_array_get_idx(v, i);
		if (!a || json_object_is_type(a, json_type_object) ||
		    json_object_is_type(a, json_type_array) || json_object_is_type(a, json_type_null)) {
			snprintf(err, errlen, "args[%zu] must be a string", i);
			return -1;
		}
		if (!(r->args[r->nargs++] = strdup(json_object_get_string(a))))
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* The length json-c decoded for "name" (NUL bytes included). */
static size_t
name_len(struct json_object *e)
{
	struct json_object *v;

	return json_object_object_get_ex(e, "name", &v) ? (size_t)json_object_get_string_len(v) : 0;
}

static int
parse_files(struct exec_req *r, struct json_object *v, char *err, size_t errlen)
{
	const char *problem;
	struct exec_file_ref *f;
	struct json_object *e;
	size_t i, n;

	if (!json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "files must be an array");
		return -1;
	}
	n = json_object_array_length(v);
	if (n > MAX_FILES) {
		snprintf(err, errlen, "files: at most %d entries", MAX_FILES);
		return -1;
	}
	if (n && !(r->files = calloc(n, sizeof(*r->files))))
		goto nomem;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		f = &r->files[r->nfiles++];
		if (!json_object_is_type(e, json_type_object) ||
		    opt_string(e, "id", &f->id) < 0 || opt_string(e, "name", &f->name) < 0 ||
		    opt_string(e, "storage_session_id", &f->bucket) < 0 ||
		    opt_string(e, "kind", &f->kind) < 0 ||
		    (!f->bucket && opt_string(e, "session_id", &f->bucket) < 0) ||
		    !f->id || !f->name || !f->bucket) {
			snprintf(err, errlen, "files[%zu] must have string id, name and "
			    "storage_session_id (or session_id)", i);
			return -1;
		}
		if ((problem = name_problem(f->name, name_len(e))) != NULL) {
			snprintf(err, errlen, "files[].name %s: files[%zu]", problem, i);
			return -1;
		}
		if (!id_valid(f->id) || !id_valid(f->bucket)) {
			snprintf(err, errlen, "files[%zu]: id and storage_session_id must be "
			    "21-character ids", i);
			return -1;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* timeout: milliseconds, a number; null or absent means the configured cap. */
static int
parse_timeout(struct exec_req *r, struct json_object *v, char *err, size_t errlen)
{
	double ms;

	if (json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
		snprintf(err, errlen, "timeout must be a number of milliseconds");
		return -1;
	}
	ms = json_object_get_double(v);
	/* Zero or less, or absurd: the cap applies; below a second is taken as one. */
	r->timeout_ms = ms <= 0 || ms >= 1e12 ? 0 : ms < 1000 ? 1000 : (long long)ms;
	return 0;
}

static struct json_object *
parse_json(const char *body, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new_ex(MAX_DEPTH);
	struct json_object *o;
	enum json_tokener_error je;

	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	je = json_tokener_get_error(tok);
	/* json-c stops at the first complete value: trailing bytes are an error. */
	if (je == json_tokener_success && json_tokener_get_parse_end(tok) < len) {
		size_t end = json_tokener_get_parse_end(tok);
		while (end < len && strchr(" \t\r\n", body[end]))
			end++;
		if (end < len) {
			snprintf(err, errlen, "Invalid JSON body: trailing data at offset %zu", end);
			json_object_put(o);
			o = NULL;
		}
	} else if (je != json_tokener_success) {
		snprintf(err, errlen, "Invalid JSON body: %s",
		    je == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(je));
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int
exec_req_parse(const char *body, size_t len, struct exec_req **out, char *err, size_t errlen)
{
	struct json_object *o, *v;
	struct exec_req *r = NULL;
	const char *lang;

	*out = NULL;
	if (len > 0x7fffffff) {
		snprintf(err, errlen, "body too large");
		return -1;
	}
	if (!(o = parse_json(body, len, err, errlen)))
		return -1;
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "Invalid JSON body: expected an object");
		goto fail;
	}
	if (!(r = calloc(1, sizeof(*r)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!json_object_object_get_ex(o, "lang", &v) || !json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "lang is required and must be a string");
		goto fail;
	}
	lang = json_object_get_string(v);
	/* Not malformed: the model chose a language we lack, and is told so (exec_req.h). */
	if (!(r->lang = lang_find(lang)) && !(r->unknown_lang = strndup(lang, 100))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!json_object_object_get_ex(o, "code", &v) || !json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "code is required and must be a string");
		goto fail;
	}
	r->code_len = (size_t)json_object_get_string_len(v);
	if (!(r->code = malloc(r->code_len + 1)))
		goto fail;
	memcpy(r->code, json_object_get_string(v), r->code_len + 1);
	if (json_object_object_get_ex(o, "args", &v) && !json_object_is_type(v, json_type_null) &&
	    parse_args(r, v, err, errlen) < 0)
		goto fail;
	if (json_object_object_get_ex(o, "files", &v) && !json_object_is_type(v, json_type_null) &&
	    parse_files(r, v, err, errlen) < 0)
		goto fail;
	if (opt_string(o, "session_id", &r->session_id) < 0 ||
	    opt_string(o, "runtime_session_hint", &r->hint) < 0 ||
	    opt_string(o, "user_id", &r->user_id) < 0) {
		snprintf(err, errlen, "session_id, runtime_session_hint and user_id must be strings");
		goto fail;
	}
	if (json_object_object_get_ex(o, "timeout", &v) && parse_timeout(r, v, err, errlen) < 0)
		goto fail;
	json_object_put(o);
	*out = r;
	return 0;
fail:
	json_object_put(o);
	exec_req_free(r);
	return -1;
}
