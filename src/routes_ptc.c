/*
 * The programmatic tool calling routes (librechat-api.md 3.3, 3.11):
 * POST /exec/programmatic takes an initial request or a continuation and
 * answers tool_call_required, completed or error; POST
 * /exec/programmatic/cancel stops the run a request id was sent with.
 */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_req.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ptc.h"
#include "routes.h"

/* The body as a JSON object, or NULL with a 400 answered. */
static struct json_object *
body_object(struct http_req *req)
{
	struct json_object *o;
	const char *body;
	size_t len;

	body = http_req_body(req, &len);
	if (!(o = ptc_body_parse(body, len)))
		http_reply_error(req, 400, "Invalid JSON body: expected an object", NULL);
	return o;
}

/* X-LibreChat-Code-Request-ID, if sane; "" if absent; NULL (a 400 answered) if not. */
static const char *
request_id(struct http_req *req)
{
	const char *id = http_req_header(req, "X-LibreChat-Code-Request-ID");
	size_t i;

	if (!id)
		return "";
	for (i = 0; id[i]; i++)
		if (i == 63 || !(id[i] == '-' || (id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z'))) {
			http_reply_error(req, 400, "Invalid X-LibreChat-Code-Request-ID", NULL);
			return NULL;
		}
	return id;
}

/* The PTC error status for a run that ended without completing, or NULL if it completed. */
static const char *
failure_of(const struct ptc_reply *r, char *buf, size_t cap)
{
	if (r->error[0])
		return r->error;
	if (r->res.timed_out)
		return "Time limit exceeded";
	if (r->res.signal == 9)
		return "Out of memory";
	if (r->res.cancelled)
		return "Execution failed or timed out";
	if (r->res.exit_code != 0) {
		snprintf(buf, cap, "Sandbox exited with code %d", r->res.exit_code);
		return buf;
	}
	return NULL;
}

/* The answer to a request of the loop, from where it left the run (counted once it ended). */
static void
reply_state(struct http_req *req, struct app *app, struct ptc_reply *r)
{
	struct json_object *o;
	const char *failed;
	char buf[64];

	if (r->state == PTC_TOOL_CALLS) {
		o = json_object_new_object();
		json_object_object_add(o, "status", json_object_new_string("tool_call_required"));
		json_object_object_add(o, "continuation_token", json_object_new_string(r->token));
		json_object_object_add(o, "tool_calls", json_object_get(r->tool_calls));
		json_object_object_add(o, "session_id", json_object_new_string(r->session_id));
		http_reply_json(req, 200, o);
		return;
	}
	if (r->rc != SESS_EINPUT)
		metrics_exec(app->metrics, r->lang, exec_outcome(r->rc, &r->res),
		    (double)r->res.wall_ms / 1000);
	if (r->rc == SESS_EINPUT) {
		o = json_object_new_object();
		json_object_object_add(o, "status", json_object_new_string("error"));
		json_object_object_add(o, "error", json_object_new_string("Execution failed or timed out"));
		snprintf(r->why + strlen(r->why), sizeof(r->why) - strlen(r->why), "\n");
		json_object_object_add(o, "stderr", json_object_new_string(r->why));
		json_object_object_add(o, "session_id", json_object_new_string(r->session_id));
		http_reply_json(req, 200, o);
		return;
	}
	if (r->rc != SESS_OK) {
		http_reply_error(req, r->rc == SESS_EUNAVAIL || r->rc == SESS_EBUSY ||
		    r->rc == SESS_ESTOREBUSY ? 503 : r->rc == SESS_EFULL ? 507 :
		    r->rc == SESS_EINTERNAL ? 500 : 502, r->why, NULL);
		return;
	}
	o = exec_reply(&r->res, 0);
	if ((failed = failure_of(r, buf, sizeof(buf)))) {
		/* A failed call's artifact is not used: the files stay stored, unlisted. */
		json_object_object_del(o, "files");
		json_object_object_del(o, "deleted_files");
		json_object_object_add(o, "status", json_object_new_string("error"));
		json_object_object_add(o, "error", json_object_new_string(failed));
	} else {
		json_object_object_add(o, "status", json_object_new_string("completed"));
	}
	http_reply_json(req, 200, o);
}

/* The abort_check of a request of the loop. */
static int
client_gone(void *req)
{
	return http_req_client_gone(req);
}

/* POST /exec/programmatic: an initial request, or a continuation. */
void
handle_programmatic(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct abort_check gone = { client_gone, req };
	struct json_object *o, *v, *tools;
	struct ptc_reply r;
	struct exec_req *er;
	struct caller who;
	const char *rid;
	char err[512];
	int rc;

	if (!(o = body_object(req)) || !(rid = request_id(req)))
		goto out;
	if (json_object_object_get_ex(o, "workspace_instance_id", NULL)) {
		http_reply_error(req, 409, "stateful_workspace_unsupported", NULL);
		goto out;
	}
	if (json_object_object_get_ex(o, "continuation_token", &v)) {
		struct json_object *results = NULL;

		request_caller(req, NULL, &who);
		json_object_object_get_ex(o, "tool_results", &results);
		if (!json_object_is_type(v, json_type_string)) {
			http_reply_error(req, 400, "continuation_token must be a string", NULL);
			goto out;
		}
		rc = ptc_continue(app->ptc, &who, json_object_get_string(v), results, rid, &gone, &r,
		    err, sizeof(err));
		if (rc == -ENOENT)
			http_reply_error(req, 404, "Execution not found or expired", NULL);
		else if (rc < 0)
			http_reply_error(req, 400, err, NULL);
		else {
			reply_state(req, app, &r);
			ptc_reply_free(&r);
		}
		goto out;
	}
	if (!json_object_object_get_ex(o, "tools", &tools) ||
	    !json_object_is_type(tools, json_type_array)) {
		http_reply_error(req, 400, "tools must be an array", NULL);
		goto out;
	}
	if (!(er = ptc_initial_exec(o, err, sizeof(err)))) {
		http_reply_error(req, 400, err, NULL);
		goto out;
	}
	request_caller(req, er->user_id, &who);
	if (ptc_start(app->ptc, &who, er, tools, rid, &gone, &r, err, sizeof(err)) < 0) {
		http_reply_error(req, 400, err, NULL);
		goto out;
	}
	reply_state(req, app, &r);
	ptc_reply_free(&r);
out:
	json_object_put(o);
}

/* POST /exec/programmatic/cancel {request_id}. */
void
handle_programmatic_cancel(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct json_object *o, *v, *a;
	struct caller who;
	int rc;

	if (!(o = body_object(req)))
		return;
	if (!json_object_object_get_ex(o, "request_id", &v) ||
	    !json_object_is_type(v, json_type_string) || !json_object_get_string_len(v)) {
		http_reply_error(req, 400, "Invalid or missing request_id", NULL);
		json_object_put(o);
		return;
	}
	request_caller(req, NULL, &who);
	rc = ptc_cancel(app->ptc, &who, json_object_get_string(v));
	json_object_put(o);
	if (rc == -ENOENT) {
		http_reply_error(req, 404, "Execution not found or expired", NULL);
		return;
	}
	if (rc == -EACCES) {
		http_reply_error(req, 403, "Forbidden", NULL);
		return;
	}
	a = json_object_new_object();
	json_object_object_add(a, "status", json_object_new_string(rc == 1 ? "already_completed" :
	    "cancellation_requested"));
	http_reply_json(req, rc == 1 ? 200 : 202, a);
}
