#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cfg.h"
#include "exec_req.h"
#include "clock.h"
#include "ids.h"
#include "lang.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "utf8.h"
#include "../sessions/sessions.h"

/* A busy sandbox is usually free within a run or two. */
#define BUSY_RETRY_S 2
/* An engine away is usually a restart: a few seconds. */
#define ENGINE_RETRY_S 5

/* Who the request names: JWT sub (verified), the User-Id header, body user_id, or no one. */
void
request_caller(const struct http_req *req, const char *body_user, struct caller *who)
{
	const char *h = http_req_header(req, "User-Id");

	who->verified = 0;
	who->user = NULL;
	/* A verified token's sub wins over anything the client asserts. */
	if ((who->user = http_req_jwt_user(req)))
		who->verified = 1;
	else if (h && *h && strlen(h) < 200)
		who->user = h;
	else if (body_user && *body_user && strlen(body_user) < 200)
		who->user = body_user;
}

/* The user a request acts for, as request_caller says, or SESSIONS_ANONYMOUS. */
const char *
request_user(const struct http_req *req, const char *body_user)
{
	struct caller who;

	request_caller(req, body_user, &who);
	return who.user ? who.user : SESSIONS_ANONYMOUS;
}

/* An ISO 8601 UTC time with milliseconds, as the contract writes them. */
struct json_object *
iso_time(long long ms)
{
	char buf[40];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03lldZ", ms % 1000);
	return json_object_new_string(buf);
}

/* Whose data the request asks for, as a caller: the identity below, verified if a token's. */
void
request_reader(const struct http_req *req, struct caller *who)
{
	who->user = request_identity(req);
	who->verified = http_req_jwt_user(req) != NULL;
}

const char *
request_identity(const struct http_req *req)
{
	const char *h = http_req_header(req, "User-Id"), *kind = http_req_query(req, "kind");

	if (http_req_jwt_user(req))
		return http_req_jwt_user(req);
	if (h && *h)
		return h;
	if (kind && strcmp(kind, "user") == 0 && http_req_query(req, "id"))
		return http_req_query(req, "id");
	return NULL;
}

/* The profile the request expects: "default" (also when unsaid), "stateful", or NULL. */
static const char *
expected_profile(const struct http_req *req)
{
	const char *p = http_req_header(req, "X-CodeAPI-Expected-Profile");

	if (!p || !*p || strcasecmp(p, "default") == 0)
		return "default";
	return strcasecmp(p, "stateful") == 0 ? "stateful" : NULL;
}

/* A JSON string from program output, whatever bytes it holds. */
static struct json_object *
output_string(const char *p, size_t len)
{
	struct json_object *s;
	size_t n;
	char *clean;

	if (utf8_valid(p, len))
		return json_object_new_string_len(p, (int)len);
	if (!(clean = utf8_sanitize(p, len, &n)))
		return json_object_new_string("");
	s = json_object_new_string_len(clean, (int)n);
	free(clean);
	return s;
}


/* Each output carries its bucket under both names, for every client era. */
static struct json_object *
files_reply(const struct exec_result *r)
{
	struct json_object *a = json_object_new_array(), *f;
	size_t i;

	const struct exec_file *x;
	struct json_object *from;

	for (i = 0; i < r->nfiles; i++) {
		x = &r->files[i];
		f = json_object_new_object();
		json_object_object_add(f, "id", json_object_new_string(x->id));
		json_object_object_add(f, "name", json_object_new_string(x->name));
		json_object_object_add(f, "storage_session_id", json_object_new_string(x->bucket));
		json_object_object_add(f, "session_id", json_object_new_string(x->bucket));
		if (x->inherited)
			json_object_object_add(f, "inherited", json_object_new_boolean(1));
		if (x->from_id[0]) {
			from = json_object_new_object();
			json_object_object_add(from, "id", json_object_new_string(x->from_id));
			json_object_object_add(from, "storage_session_id",
			    json_object_new_string(x->from_bucket));
			json_object_object_add(from, "session_id", json_object_new_string(x->from_bucket));
			json_object_object_add(f, "modified_from", from);
		}
		json_object_array_add(a, f);
	}
	return a;
}

/*
 * artifact_delivery, in the strict shape agents accept (librechat-api.md
 * 3.1), when outputs could not be stored: the model is told not to assume
 * they exist.
 */
static void
add_delivery(struct json_object *o, const struct exec_result *r)
{
	struct json_object *a;
	size_t delivered = r->outputs_attempted - r->outputs_failed;

	if (!r->outputs_failed)
		return;
	a = json_object_new_object();
	json_object_object_add(a, "code", json_object_new_string("artifact_delivery_failed"));
	json_object_object_add(a, "status", json_object_new_string(delivered ? "partial" :
	    "failed"));
	json_object_object_add(a, "attempted", json_object_new_int64((int64_t)r->outputs_attempted));
	json_object_object_add(a, "delivered", json_object_new_int64((int64_t)delivered));
	json_object_object_add(a, "failed", json_object_new_int64((int64_t)r->outputs_failed));
	json_object_object_add(o, "artifact_delivery", a);
}

struct json_object *
exec_reply(const struct exec_result *r, int stateful)
{
	struct json_object *o = json_object_new_object();

	/* The stateful profile names the runtime: our session, kept with its /mnt/data. */
	if (stateful) {
		json_object_object_add(o, "runtime_session_id", json_object_new_string(r->session_id));
		json_object_object_add(o, "runtime_status",
		    json_object_new_string(r->created ? "new" : "reused"));
	}

	json_object_object_add(o, "session_id", json_object_new_string(r->session_id));
	json_object_object_add(o, "stdout", output_string(r->out, r->out_len));
	json_object_object_add(o, "stderr", output_string(r->err, r->err_len));
	json_object_object_add(o, "files", files_reply(r));
	add_delivery(o, r);
	if (r->deleted_known) {
		struct json_object *d = json_object_new_array();
		size_t i;

		for (i = 0; i < r->ndeleted; i++)
			json_object_array_add(d, json_object_new_string(r->deleted[i]));
		json_object_object_add(o, "deleted_files", d);
	}
	/* "OL" when stdout was cut: LibreChat's image reader then asks for less. */
	json_object_object_add(o, "status", r->overflow ? json_object_new_string("OL") : NULL);
	/* Extras of the official server; clients ignore them, operators use them. */
	json_object_object_add(o, "code", json_object_new_int(r->exit_code));
	json_object_object_add(o, "signal", r->signal ?
	    json_object_new_int(r->signal) : NULL);
	json_object_object_add(o, "message", r->timed_out ?
	    json_object_new_string("Execution timed out") : NULL);
	json_object_object_add(o, "wall_time", json_object_new_int64(r->wall_ms));
	return o;
}

static int
sess_http_status(int rc)
{
	switch (rc) {
	case SESS_EINPUT:
		return 422;
	case SESS_EUNAVAIL:
	case SESS_ESTOREBUSY:
		return 503;
	case SESS_EFULL:
		return 507;
	case SESS_EENGINE:
	case SESS_ESANDBOX:
		return 502;
	default:
		return 500;
	}
}

enum metrics_outcome
exec_outcome(int rc, const struct exec_result *r)
{
	if (rc != SESS_OK)
		return MX_FAILED;
	if (r->cancelled)
		return MX_CANCELLED;
	if (r->timed_out)
		return MX_TIMEOUT;
	/* As fill_result explains it: only the OOM killer sends SIGKILL there. */
	if (r->signal == 9)
		return MX_OOM;
	return r->exit_code == 0 && r->signal == 0 ? MX_OK : MX_ERROR;
}

/*
 * 503 in the contract's {error, message} shape, with when to come back in
 * both forms: LibreChat reads the Retry-After header, agents the body.
 */
static void
reply_retry(struct http_req *req, const char *code, const char *why, int seconds)
{
	struct json_object *o = json_object_new_object();
	char hdr[16];

	snprintf(hdr, sizeof(hdr), "%d", seconds);
	json_object_object_add(o, "error", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(why));
	json_object_object_add(o, "retry_after_seconds", json_object_new_int(seconds));
	http_add_header(req, "Retry-After", hdr);
	http_reply_json(req, 503, o);
}

/*
 * A problem the model made and can fix (a language we lack, an input that
 * is gone): 200 with the reason in stderr, which every client shows the
 * model, where a 4xx would only say "rejected" (librechat-api.md 2.3).
 * Nothing ran and nothing was created: the session id is the request's,
 * or a fresh one that names nothing.
 */
static void
reply_user_problem(struct http_req *req, const struct exec_req *er, const char *why)
{
	struct json_object *o = json_object_new_object();
	char id[ID_LEN + 1], line[700];

	if (er->session_id && id_valid(er->session_id))
		snprintf(id, sizeof(id), "%s", er->session_id);
	else if (id_new(id) < 0)
		id[0] = '\0';
	snprintf(line, sizeof(line), "%s\n", why);
	json_object_object_add(o, "session_id", json_object_new_string(id));
	json_object_object_add(o, "stdout", json_object_new_string(""));
	json_object_object_add(o, "stderr", json_object_new_string(line));
	json_object_object_add(o, "files", json_object_new_array());
	json_object_object_add(o, "status", NULL);
	http_reply_json(req, 200, o);
}

/* A language we do not run: the model is told which there are. */
static void
reply_unsupported(struct http_req *req, const struct exec_req *er)
{
	char names[256], why[512];

	lang_names(names, sizeof(names));
	snprintf(why, sizeof(why), "Unsupported language: %s (supported: %s)", er->unknown_lang,
	    names);
	reply_user_problem(req, er, why);
}

/* The abort_check of an /exec: its client went away. */
static int
client_gone(void *req)
{
	return http_req_client_gone(req);
}

static void
handle_exec(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct exec_req *er = NULL;
	struct exec_result res;
	struct caller who;
	char err[512];
	const char *body;
	long long started;
	size_t len;
	int rc;

	body = http_req_body(req, &len);
	if (exec_req_parse(body, len, &er, err, sizeof(err)) < 0) {
		http_reply_error(req, 400, err, NULL);
		return;
	}
	if (!er->lang) {
		reply_unsupported(req, er);
		exec_req_free(er);
		return;
	}
	request_caller(req, er->user_id, &who);
	started = clock_mono_ms();
	rc = sessions_exec(app->sessions, &who, er, &(struct exec_hooks){
	    &(struct abort_check){ client_gone, req }, NULL }, &res, err, sizeof(err));
	/* A refused input is the model's mistake, not a run. */
	if (rc != SESS_EINPUT)
		metrics_exec(app->metrics, er->lang, exec_outcome(rc, &res),
		    (double)(clock_mono_ms() - started) / 1000);
	if (rc == SESS_OK)
		http_reply_json(req, 200, exec_reply(&res,
		    strcmp(expected_profile(req), "stateful") == 0));
	else if (rc == SESS_EINPUT)
		reply_user_problem(req, er, err);
	else if (rc == SESS_EBUSY)
		reply_retry(req, "sandboxes_busy", err, BUSY_RETRY_S);
	else if (rc == SESS_EUNAVAIL)
		reply_retry(req, "engine_unavailable", err, ENGINE_RETRY_S);
	else if (rc == SESS_ESTOREBUSY)
		reply_retry(req, "storage_busy", err, BUSY_RETRY_S);
	else
		http_reply_error(req, sess_http_status(rc), err, NULL);
	exec_result_free(&res);
	exec_req_free(er);
}

static void
handle_health(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct json_object *o = json_object_new_object();
	struct metrics_sample now;
	char why[512];
	int ok = sessions_health(app->sessions, why, sizeof(why)) == 0;

	json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "unavailable"));
	if (!ok) {
		json_object_object_add(o, "reason", json_object_new_string(why));
		log_warn("health: %s", why);
	}
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	if (sessions_sample(app->sessions, &now) == 0) {
		json_object_object_add(o, "live_containers", json_object_new_int64(now.containers_live));
		json_object_object_add(o, "max_live_containers",
		    json_object_new_int(app->cfg->max_live));
		json_object_object_add(o, "pool_size", json_object_new_int64(
		    now.pool_size < 0 ? 0 : now.pool_size));
		json_object_object_add(o, "pool_target", json_object_new_int(app->cfg->pool_size));
	}
	http_reply_json(req, ok ? 200 : 503, o);
}

static int
add_session(const struct session_info *info, void *ctx)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "session_id", json_object_new_string(info->id));
	json_object_object_add(o, "user_id", json_object_new_string(info->user));
	json_object_object_add(o, "created_at", iso_time(info->created_at));
	json_object_object_add(o, "expires_at", iso_time(info->expires_at));
	json_object_object_add(o, "last_used_at", iso_time(info->last_used_at));
	json_object_object_add(o, "container_id", info->container_id[0] ?
	    json_object_new_string(info->container_id) : NULL);
	json_object_object_add(o, "state", json_object_new_string(info->state));
	json_object_object_add(o, "live", json_object_new_boolean(info->live));
	json_object_object_add(o, "files", json_object_new_int64(info->files));
	json_object_object_add(o, "bytes", json_object_new_int64(info->bytes));
	json_object_array_add(ctx, o);
	return 0;
}

/* GET /v1/librechat/sessions */
static void
handle_list_sessions(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct json_object *arr = json_object_new_array(), *o;

	if (sessions_list(app->sessions, request_identity(req), add_session, arr) < 0) {
		json_object_put(arr);
		http_reply_error(req, 500, "Internal error", "the session store did not answer");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "sessions", arr);
	http_reply_json(req, 200, o);
}

/* DELETE /v1/librechat/sessions/{id}: container, files and row go. */
static void
handle_delete_session(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *id = http_req_param(req, 0);
	int rc = sessions_delete(app->sessions, id, request_identity(req));
	struct json_object *o;

	if (rc == -ENOENT) {
		http_reply_error(req, 404, "Session not found", NULL);
		return;
	}
	if (rc < 0) {
		http_reply_error(req, 500, "Session ended, but storage kept some of its files; "
		    "file retention removes them", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string("Session deleted"));
	json_object_object_add(o, "session_id", json_object_new_string(id));
	http_reply_json(req, 200, o);
}

/* A capability LibreChat asked for that we do not serve: 409 with its code (agents stop retrying). */
static void
reply_capability(struct http_req *req, const char *code, const char *message)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(message));
	http_reply_json(req, 409, o);
}

int
route_filter(struct http_req *req, void *appv)
{
	const char *profile = expected_profile(req);

	(void)appv;
	if (!profile) {
		reply_capability(req, "execution_profile_mismatch", "this code interpreter serves "
		    "the default and stateful execution profiles only");
		return 1;
	}
	if (http_req_header(req, "X-LibreChat-Code-Workspace-ID")) {
		reply_capability(req, "stateful_workspace_unsupported", "attached workspaces are "
		    "not served by this code interpreter");
		return 1;
	}
	http_add_header(req, "X-CodeAPI-Execution-Profile", profile);
	return 0;
}

/* POST /workspace-tools/execute: attached workspaces are not served. */
static void
handle_workspace_tools(struct http_req *req, void *appv)
{
	(void)appv;
	reply_capability(req, "stateful_workspace_unsupported", "attached workspaces are not "
	    "served by this code interpreter");
}

/* GET /metrics: Prometheus text format, gauges sampled now. */
static void
handle_metrics(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct metrics_sample now;
	struct buf out;
	size_t len;
	char *text;

	if (sessions_sample(app->sessions, &now) < 0)
		log_warn("metrics: the database did not answer; session and file gauges left out");
	buf_init(&out, 4u << 20);
	if (metrics_render(app->metrics, &now, &out) < 0) {
		buf_free(&out);
		http_reply_error(req, 500, "Internal error", "out of memory");
		return;
	}
	text = buf_take(&out, &len);
	http_reply_bytes(req, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
	free(text);
}

#define ROUTE(m, p, h, ...) { .method = m, .pattern = p, .handler = h, __VA_ARGS__ }

const struct http_route routes[] = {
	ROUTE("POST", "/exec", handle_exec, .auth = HTTP_AUTH),
	ROUTE("POST", "/librechat/runs", handle_exec, .auth = HTTP_AUTH),
	ROUTE("POST", "/upload", handle_upload, .auth = HTTP_AUTH, .body = HTTP_BODY_FORM),
	ROUTE("POST", "/upload/batch", handle_upload_batch, .auth = HTTP_AUTH, .body = HTTP_BODY_FORM),
	ROUTE("POST", "/librechat/files", handle_upload, .auth = HTTP_AUTH, .body = HTTP_BODY_FORM),
	ROUTE("GET", "/download/{}/{}", handle_download, .auth = HTTP_AUTH),
	ROUTE("GET", "/files/{}", handle_list_files, .auth = HTTP_AUTH),
	ROUTE("DELETE", "/files/{}/{}", handle_delete_file, .auth = HTTP_AUTH),
	ROUTE("GET", "/sessions/{}/objects/{}", handle_object, .auth = HTTP_AUTH),
	ROUTE("GET", "/librechat/files", handle_list_session_files, .auth = HTTP_AUTH),
	ROUTE("GET", "/librechat/files/{}", handle_download_by_id, .auth = HTTP_AUTH),
	ROUTE("DELETE", "/librechat/files/{}", handle_delete_by_id, .auth = HTTP_AUTH),
	ROUTE("GET", "/librechat/sessions", handle_list_sessions, .auth = HTTP_AUTH),
	ROUTE("DELETE", "/librechat/sessions/{}", handle_delete_session, .auth = HTTP_AUTH),
	ROUTE("POST", "/exec/programmatic", handle_programmatic, .auth = HTTP_AUTH),
	ROUTE("POST", "/exec/programmatic/cancel", handle_programmatic_cancel, .auth = HTTP_AUTH),
	ROUTE("POST", "/workspace-tools/execute", handle_workspace_tools, .auth = HTTP_AUTH),
	ROUTE("GET", "/metrics", handle_metrics, .auth = HTTP_AUTH_METRICS),
	ROUTE("GET", "/health", handle_health, .auth = HTTP_PUBLIC),
	ROUTE("GET", "/librechat/health", handle_health, .auth = HTTP_PUBLIC),
};

const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
