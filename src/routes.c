#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "exec_req.h"
#include "ids.h"
#include "log.h"
#include "routes.h"
#include "utf8.h"
#include "../sessions/sessions.h"
#include "../storage/blobs.h"
#include "../storage/db.h"

#define LOCAL_USER "local"

/* The user a request acts for: User-Id header, then body user_id, then local. */
static const char *
request_user(const struct http_req *req, const char *body_user)
{
	const char *h = http_req_header(req, "User-Id");

	if (h && *h && strlen(h) < 200)
		return h;
	if (body_user && *body_user && strlen(body_user) < 200)
		return body_user;
	return LOCAL_USER;
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

static const char *
run_status(const struct exec_result *r)
{
	if (r->timed_out)
		return "timeout";
	return r->exit_code == 0 ? "ok" : "error";
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

static struct json_object *
exec_reply(const struct exec_result *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "session_id", json_object_new_string(r->session_id));
	json_object_object_add(o, "stdout", output_string(r->out, r->out_len));
	json_object_object_add(o, "stderr", output_string(r->err, r->err_len));
	json_object_object_add(o, "files", files_reply(r));
	/* Extras of the official server; clients ignore them, operators use them. */
	json_object_object_add(o, "code", json_object_new_int(r->exit_code));
	json_object_object_add(o, "signal", r->signal ?
	    json_object_new_int(r->signal) : NULL);
	json_object_object_add(o, "status", json_object_new_string(run_status(r)));
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
		return 503;
	case SESS_EENGINE:
	case SESS_ESANDBOX:
		return 502;
	default:
		return 500;
	}
}

static void
handle_exec(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct exec_req *er = NULL;
	struct exec_result res;
	char err[512];
	const char *body;
	size_t len;
	int rc;

	body = http_req_body(req, &len);
	if (exec_req_parse(body, len, &er, err, sizeof(err)) < 0) {
		http_reply_error(req, 400, err, NULL);
		return;
	}
	rc = sessions_exec(app->sessions, request_user(req, er->user_id), er, &res, err,
	    sizeof(err));
	if (rc == SESS_OK)
		http_reply_json(req, 200, exec_reply(&res));
	else {
		if (rc == SESS_EUNAVAIL)
			http_add_header(req, "Retry-After", "5");
		http_reply_error(req, sess_http_status(rc), err, NULL);
	}
	exec_result_free(&res);
	exec_req_free(er);
}

static void
handle_health(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct json_object *o = json_object_new_object();
	char why[512];
	int ok = sessions_health(app->sessions, why, sizeof(why)) == 0;

	json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "unavailable"));
	if (!ok) {
		json_object_object_add(o, "reason", json_object_new_string(why));
		log_warn("health: %s", why);
	}
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	http_reply_json(req, ok ? 200 : 503, o);
}

/*
 * Content-Disposition with the name's last segment: an ASCII fallback and the
 * exact name in RFC 5987's filename*.
 */
static void
add_disposition(struct http_req *req, const char *name)
{
	static const char attr[] = "!#$&+-.^_`|~";
	const char *base = strrchr(name, '/');
	char value[3 * DB_NAME_MAX + 64], *o = value;
	const unsigned char *p;

	base = base ? base + 1 : name;
	o += sprintf(o, "attachment; filename=\"");
	for (p = (const unsigned char *)base; *p && o < value + DB_NAME_MAX; p++)
		*o++ = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? (char)*p : '_';
	o += sprintf(o, "\"; filename*=UTF-8''");
	for (p = (const unsigned char *)base; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(attr, *p))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	http_add_header(req, "Content-Disposition", value);
}

static void
file_not_found(struct http_req *req)
{
	http_reply_error(req, 404, "File not found", "The file may have expired or does not exist");
}

/* GET /download/{bucket}/{file_id}: the bytes, streamed from disk. */
static void
handle_download(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *id = http_req_param(req, 1);
	struct db_file f;
	long long size;
	off_t sz;
	int fd;

	if (!id_valid(bucket) || !id_valid(id) || db_file_get(app->db, bucket, id, &f) < 0 ||
	    blobs_open_read(app->blobs, bucket, id, &fd, &sz) < 0) {
		file_not_found(req);
		return;
	}
	size = (long long)sz;
	add_disposition(req, f.name);
	if (f.read_only)
		http_add_header(req, "X-Read-Only", "true");
	http_reply_fd(req, 200, fd, size, f.mime);
}

/* "<bucket>/<id>[.ext]": the object key LibreChat matches on (§3.7). */
static void
object_key(const struct db_file *f, char *out, size_t cap)
{
	const char *base = strrchr(f->name, '/'), *dot;

	base = base ? base + 1 : f->name;
	dot = strrchr(base, '.');
	if (dot && dot != base && strlen(dot) <= 16)
		snprintf(out, cap, "%s/%s%s", f->bucket, f->id, dot);
	else
		snprintf(out, cap, "%s/%s", f->bucket, f->id);
}

static struct json_object *
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

enum detail { DETAIL_SIMPLE, DETAIL_SUMMARY, DETAIL_FULL, DETAIL_NORMALIZED };

static struct json_object *
file_entry(const struct db_file *f, enum detail d)
{
	struct json_object *o = json_object_new_object(), *meta;
	char key[128];

	object_key(f, key, sizeof(key));
	if (d == DETAIL_NORMALIZED) {
		json_object_object_add(o, "id", json_object_new_string(f->id));
		json_object_object_add(o, "name", json_object_new_string(f->name));
		json_object_object_add(o, "storage_session_id", json_object_new_string(f->bucket));
	} else {
		json_object_object_add(o, "name", json_object_new_string(key));
	}
	json_object_object_add(o, "size", json_object_new_int64(f->size));
	json_object_object_add(o, "lastModified", iso_time(f->created_at));
	if (d == DETAIL_NORMALIZED) {
		json_object_object_add(o, "contentType", json_object_new_string(f->mime));
		if (f->read_only)
			json_object_object_add(o, "read_only", json_object_new_boolean(1));
		return o;
	}
	json_object_object_add(o, "etag", json_object_new_string(f->sha256));
	if (d == DETAIL_FULL) {
		meta = json_object_new_object();
		json_object_object_add(meta, "original-filename", json_object_new_string(f->name));
		json_object_object_add(meta, "original-filename-encoded", json_object_new_string("none"));
		json_object_object_add(o, "metadata", meta);
		json_object_object_add(o, "versionId", json_object_new_string(f->id));
		json_object_object_add(o, "contentType", json_object_new_string(f->mime));
	}
	return o;
}

struct listing {
	struct json_object *arr;
	enum detail detail;
};

static int
add_listed(const struct db_file *f, void *ctx)
{
	struct listing *l = ctx;
	char key[128];

	if (l->detail == DETAIL_SIMPLE) {
		object_key(f, key, sizeof(key));
		json_object_array_add(l->arr, json_object_new_string(key));
	} else {
		json_object_array_add(l->arr, file_entry(f, l->detail));
	}
	return 0;
}

/* GET /files/{bucket}?detail=simple|summary|full|normalized */
static void
handle_list_files(struct http_req *req, void *appv)
{
	static const char *const names[] = { "simple", "summary", "full", "normalized" };
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *d = http_req_query(req, "detail");
	struct listing l = { json_object_new_array(), DETAIL_SIMPLE };
	size_t i;

	for (i = 0; d && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(d, names[i]) == 0)
			l.detail = (enum detail)i;
	if (id_valid(bucket) && db_file_list(app->db, bucket, add_listed, &l) < 0) {
		json_object_put(l.arr);
		http_reply_error(req, 500, "Internal error", "the file store did not answer");
		return;
	}
	http_reply_json(req, 200, l.arr);
}

/* GET /sessions/{bucket}/objects/{file_id}: LibreChat's freshness check. */
static void
handle_object(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *id = http_req_param(req, 1);
	struct json_object *o;
	struct db_file f;
	char key[128];

	if (!id_valid(bucket) || !id_valid(id) || db_file_get(app->db, bucket, id, &f) < 0) {
		http_reply_error(req, 404, "File not found", NULL);
		return;
	}
	object_key(&f, key, sizeof(key));
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(key));
	json_object_object_add(o, "originalFilename", json_object_new_string(f.name));
	json_object_object_add(o, "size", json_object_new_int64(f.size));
	json_object_object_add(o, "lastModified", iso_time(f.created_at));
	json_object_object_add(o, "etag", json_object_new_string(f.sha256));
	json_object_object_add(o, "contentType", json_object_new_string(f.mime));
	json_object_object_add(o, "readOnly", json_object_new_boolean(f.read_only));
	http_reply_json(req, 200, o);
}

/* DELETE /files/{bucket}/{file_id}: the row first, then the blob. */
static void
handle_delete_file(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *id = http_req_param(req, 1);
	struct json_object *o;
	int rc;

	if (!id_valid(bucket) || !id_valid(id) ||
	    (rc = db_file_delete(app->db, bucket, id)) == -ENOENT) {
		http_reply_error(req, 404, "File not found", NULL);
		return;
	}
	if (rc < 0) {
		http_reply_error(req, 500, "Internal error", "the file store did not answer");
		return;
	}
	if (blobs_remove(app->blobs, bucket, id) < 0)
		log_warn("file %s/%s: row deleted, blob left for the sweeper", bucket, id);
	o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string("File deleted successfully"));
	json_object_object_add(o, "session_id", json_object_new_string(bucket));
	json_object_object_add(o, "fileId", json_object_new_string(id));
	http_reply_json(req, 200, o);
}

const struct http_route routes[] = {
	{ "POST", "/exec", handle_exec, HTTP_AUTH },
	{ "POST", "/librechat/runs", handle_exec, HTTP_AUTH },
	{ "GET", "/download/{}/{}", handle_download, HTTP_AUTH },
	{ "GET", "/files/{}", handle_list_files, HTTP_AUTH },
	{ "DELETE", "/files/{}/{}", handle_delete_file, HTTP_AUTH },
	{ "GET", "/sessions/{}/objects/{}", handle_object, HTTP_AUTH },
	{ "GET", "/health", handle_health, HTTP_PUBLIC },
	{ "GET", "/librechat/health", handle_health, HTTP_PUBLIC },
};

const size_t nroutes = sizeof(routes) / sizeof(routes[0]);
