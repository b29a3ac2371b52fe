/*
 * Fuzz target: the /exec request parser (exec_req.c) on any body.  Asserts
 * what the rest of the daemon relies on once a request parsed: a known
 * language or a bounded unknown one, code of the length json-c decoded,
 * args and files within their caps, every files[].name a name that
 * name_problem accepts and every id a valid id; a refusal always comes
 * with a reason.  A parsed request, written back as JSON, parses again to
 * the same request.
 */
#include "config.h"

#include <json-c/json.h>
#include <string.h>

#include "exec_req.h"
#include "fuzz.h"
#include "ids.h"
#include "names.h"

static void
check(const struct exec_req *r)
{
	size_t i;

	FUZZ_ASSERT(r->code && r->code[r->code_len] == '\0');
	FUZZ_ASSERT(r->lang || (r->unknown_lang && strlen(r->unknown_lang) <= 100));
	FUZZ_ASSERT(r->nargs <= 256 && r->nfiles <= 1000);
	FUZZ_ASSERT(r->timeout_ms == 0 || (r->timeout_ms >= 1000 && r->timeout_ms < 1000000000000LL));
	for (i = 0; i < r->nargs; i++)
		FUZZ_ASSERT(r->args[i]);
	for (i = 0; i < r->nfiles; i++) {
		FUZZ_ASSERT(name_problem(r->files[i].name, strlen(r->files[i].name)) == NULL);
		FUZZ_ASSERT(id_valid(r->files[i].id) && id_valid(r->files[i].bucket));
	}
}

/* r as a body again, with the fields it kept. */
static char *
reserialize(const struct exec_req *r)
{
	struct json_object *o = json_object_new_object(), *a, *f;
	char *s;
	size_t i;

	json_object_object_add(o, "lang", json_object_new_string(r->lang ? r->lang->id :
	    r->unknown_lang));
	json_object_object_add(o, "code", json_object_new_string_len(r->code, (int)r->code_len));
	a = json_object_new_array();
	for (i = 0; i < r->nargs; i++)
		json_object_array_add(a, json_object_new_string(r->args[i]));
	json_object_object_add(o, "args", a);
	a = json_object_new_array();
	for (i = 0; i < r->nfiles; i++) {
		f = json_object_new_object();
		json_object_object_add(f, "id", json_object_new_string(r->files[i].id));
		json_object_object_add(f, "name", json_object_new_string(r->files[i].name));
		json_object_object_add(f, "storage_session_id",
		    json_object_new_string(r->files[i].bucket));
		if (r->files[i].kind)
			json_object_object_add(f, "kind", json_object_new_string(r->files[i].kind));
		json_object_array_add(a, f);
	}
	json_object_object_add(o, "files", a);
	if (r->session_id)
		json_object_object_add(o, "session_id", json_object_new_string(r->session_id));
	if (r->timeout_ms)
		json_object_object_add(o, "timeout", json_object_new_int64(r->timeout_ms));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void
same(const struct exec_req *a, const struct exec_req *b)
{
	size_t i;

	FUZZ_ASSERT(a->lang == b->lang);
	FUZZ_ASSERT(a->code_len == b->code_len && memcmp(a->code, b->code, a->code_len) == 0);
	FUZZ_ASSERT(a->nargs == b->nargs && a->nfiles == b->nfiles);
	for (i = 0; i < a->nargs; i++)
		FUZZ_ASSERT(strcmp(a->args[i], b->args[i]) == 0);
	for (i = 0; i < a->nfiles; i++)
		FUZZ_ASSERT(strcmp(a->files[i].name, b->files[i].name) == 0 &&
		    strcmp(a->files[i].id, b->files[i].id) == 0 &&
		    strcmp(a->files[i].bucket, b->files[i].bucket) == 0);
	FUZZ_ASSERT(!a->session_id == !b->session_id);
	FUZZ_ASSERT(a->timeout_ms == b->timeout_ms);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exec_req *r = NULL, *again = NULL;
	char err[512] = "";
	char *body;

	if (exec_req_parse((const char *)data, size, &r, err, sizeof(err)) < 0) {
		FUZZ_ASSERT(r == NULL && err[0] != '\0');
		return 0;
	}
	check(r);
	/* An unknown language may be cut to 100 bytes: its round trip is another request. */
	if (r->lang && (body = reserialize(r))) {
		err[0] = '\0';
		if (exec_req_parse(body, strlen(body), &again, err, sizeof(err)) < 0) {
			fprintf(stderr, "reparse of %s failed: %s\n", body, err);
			FUZZ_ASSERT(0);
		}
		same(r, again);
		exec_req_free(again);
		free(body);
	}
	exec_req_free(r);
	return 0;
}
