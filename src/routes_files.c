/*
 * The file routes: upload (one file or a batch, one new bucket per request),
 * download, listings, the freshness check and delete, with the shapes of
 * the contract (librechat-api.md 3.4-3.9).
 */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "ids.h"
#include "log.h"
#include "mime.h"
#include "names.h"
#include "routes.h"
#include "../sessions/sessions.h"
#include "../storage/files.h"

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

/* 1 if the request may see f: the same rule as for inputs (sessions.h caller_may_use). */
static int
may_see(const struct http_req *req, const struct db_file *f)
{
	struct caller who;

	request_reader(req, &who);
	return caller_may_use(&who, f->owner);
}

static void
file_not_found(struct http_req *req)
{
	http_reply_error(req, 404, "File not found", "The file may have expired or does not exist");
}

/* GET /download/{bucket}/{file_id}: the bytes, streamed from disk. */
void
handle_download(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *id = http_req_param(req, 1);
	struct db_file f;
	long long size;
	off_t sz;
	int fd;

	if (!id_valid(bucket) || !id_valid(id) || db_file_get(app->db, bucket, id, &f) < 0 ||
	    !may_see(req, &f) || blobs_open_read(app->blobs, bucket, id, &fd, &sz) < 0) {
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
	const struct http_req *req;
};

static int
add_listed(const struct db_file *f, void *ctx)
{
	struct listing *l = ctx;
	char key[128];

	if (!may_see(l->req, f))
		return 0;
	if (l->detail == DETAIL_SIMPLE) {
		object_key(f, key, sizeof(key));
		json_object_array_add(l->arr, json_object_new_string(key));
	} else {
		json_object_array_add(l->arr, file_entry(f, l->detail));
	}
	return 0;
}

/* GET /files/{bucket}?detail=simple|summary|full|normalized */
void
handle_list_files(struct http_req *req, void *appv)
{
	static const char *const names[] = { "simple", "summary", "full", "normalized" };
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *d = http_req_query(req, "detail");
	struct listing l = { json_object_new_array(), DETAIL_SIMPLE, req };
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
void
handle_object(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *id = http_req_param(req, 1);
	struct json_object *o;
	struct db_file f;
	char key[128];

	if (!id_valid(bucket) || !id_valid(id) || db_file_get(app->db, bucket, id, &f) < 0 ||
	    !may_see(req, &f)) {
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
void
handle_delete_file(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_param(req, 0), *id = http_req_param(req, 1);
	struct json_object *o;
	int rc;

	struct db_file f;

	if (!id_valid(bucket) || !id_valid(id) || db_file_get(app->db, bucket, id, &f) < 0 ||
	    !may_see(req, &f) || (rc = files_delete(app->db, app->blobs, bucket, id)) == -ENOENT) {
		http_reply_error(req, 404, "File not found", NULL);
		return;
	}
	if (rc < 0) {
		http_reply_error(req, 500, "Internal error", "the file store did not answer");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string("File deleted successfully"));
	json_object_object_add(o, "session_id", json_object_new_string(bucket));
	json_object_object_add(o, "fileId", json_object_new_string(id));
	http_reply_json(req, 200, o);
}


/* One uploaded part, stored in bucket: 0 and its id, or an HTTP status and why. */
static int
store_upload(struct app *app, const struct http_req *req, const struct http_part *p,
    const char *bucket, int read_only, char id[ID_LEN + 1], const char **why)
{
	struct file_new nf = { .bucket = bucket, .name = p->filename,
	    .owner = request_user(req, NULL), .read_only = read_only };
	const char *problem;
	struct db_file row;
	int rc;

	if (p->too_big) {
		*why = "File size limit exceeded";
		return 413;
	}
	if ((problem = name_problem(p->filename, strlen(p->filename))) != NULL) {
		*why = problem;
		return 400;
	}
	if ((rc = files_store_named(app->db, app->blobs, &nf, p->data, p->len, &row)) < 0) {
		log_error("upload: %s not stored: %s", p->filename, strerror(-rc));
		/* Nothing was kept (files.h): the client may send it again later. */
		if (rc == -ENOSPC || rc == -EDQUOT) {
			*why = "Insufficient storage: the file store is full";
			return 507;
		}
		if (rc == -EBUSY) {
			*why = "the file store is busy; try again";
			return 503;
		}
		*why = "the file store did not take the file";
		return 500;
	}
	memcpy(id, row.id, ID_LEN + 1);
	log_info("upload: %s stored as %s/%s (%lld bytes%s)", row.name, bucket, row.id,
	    row.size, read_only ? ", read-only" : "");
	return 0;
}

/* A store failure: 503 (a lock held elsewhere) says when to come back. */
static void
reply_store_error(struct http_req *req, int status, const char *why)
{
	if (status == 503)
		http_add_header(req, "Retry-After", "2");
	http_reply_error(req, status, why, NULL);
}

static int
is_true(const char *v)
{
	return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static struct json_object *
upload_reply_head(const char *message, const char *bucket)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "message", json_object_new_string(message));
	/* Legacy clients read session_id, current ones storage_session_id. */
	json_object_object_add(o, "session_id", json_object_new_string(bucket));
	json_object_object_add(o, "storage_session_id", json_object_new_string(bucket));
	return o;
}

/* POST /upload: every file part into one new bucket; any failure fails it. */
void
handle_upload(struct http_req *req, void *appv)
{
	struct app *app = appv;
	struct json_object *files = json_object_new_array(), *o, *f;
	const struct http_part *p;
	const char *why = NULL;
	char bucket[ID_LEN + 1], id[ID_LEN + 1];
	int read_only = is_true(http_req_field(req, "read_only")), status = 0;
	size_t i, n = 0;

	if (id_new(bucket) < 0) {
		json_object_put(files);
		http_reply_error(req, 500, "Internal error", "no randomness");
		return;
	}
	for (i = 0; i < http_req_nparts(req) && !status; i++) {
		p = http_req_part(req, i);
		if (!p->filename)
			continue;
		if ((status = store_upload(app, req, p, bucket, read_only, id, &why)))
			break;
		f = json_object_new_object();
		json_object_object_add(f, "fileId", json_object_new_string(id));
		json_object_object_add(f, "filename", json_object_new_string(p->filename));
		json_object_array_add(files, f);
		n++;
	}
	if (status || n == 0) {
		json_object_put(files);
		if (status == 400)
			http_reply_error(req, 400, "Invalid file name", why);
		else if (status)
			reply_store_error(req, status, why);
		else
			http_reply_error(req, 400, "No file uploaded", "send a multipart part named file");
		return;
	}
	o = upload_reply_head("success", bucket);
	json_object_object_add(o, "files", files);
	http_reply_json(req, 200, o);
}

/* POST /upload/batch: one bucket, a status per file, partial success allowed. */
void
handle_upload_batch(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const struct cfg *cfg = app->cfg;
	struct json_object *files = json_object_new_array(), *o, *f;
	const struct http_part *p;
	const char *why;
	char bucket[ID_LEN + 1], id[ID_LEN + 1];
	int read_only = is_true(http_req_field(req, "read_only")), ok = 0, bad = 0, limited = 0;
	int status = 0, store_status = 0;
	size_t i;

	if (id_new(bucket) < 0) {
		json_object_put(files);
		http_reply_error(req, 500, "Internal error", "no randomness");
		return;
	}
	for (i = 0; i < http_req_nparts(req); i++) {
		p = http_req_part(req, i);
		if (!p->filename)
			continue;
		f = json_object_new_object();
		json_object_object_add(f, "filename", json_object_new_string(p->filename));
		if (ok + bad >= cfg->max_files_per_session) {
			limited = 1;
			why = "Too many files in one batch";
		} else if ((status = store_upload(app, req, p, bucket, read_only, id, &why)) == 0) {
			json_object_object_add(f, "status", json_object_new_string("success"));
			json_object_object_add(f, "fileId", json_object_new_string(id));
			json_object_array_add(files, f);
			ok++;
			continue;
		}
		/* The store's own failure, not the file's: the batch's status if all failed. */
		if (!limited && status >= 500)
			store_status = status;
		json_object_object_add(f, "status", json_object_new_string("error"));
		json_object_object_add(f, "error", json_object_new_string(why));
		json_object_array_add(files, f);
		bad++;
	}
	o = upload_reply_head(bad == 0 && ok ? "success" : ok ? "partial_success" : "error", bucket);
	json_object_object_add(o, "files", files);
	json_object_object_add(o, "succeeded", json_object_new_int(ok));
	json_object_object_add(o, "failed", json_object_new_int(bad));
	if (limited) {
		json_object_object_add(o, "filesLimitReached", json_object_new_boolean(1));
		json_object_object_add(o, "maxFiles", json_object_new_int(cfg->max_files_per_session));
	}
	if (!ok && store_status == 503)
		http_add_header(req, "Retry-After", "2");
	http_reply_json(req, ok ? 200 : store_status ? store_status : 400, o);
}

/* GET /v1/librechat/files/{file_id}: download by id alone. */
void
handle_download_by_id(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *id = http_req_param(req, 0);
	struct db_file f;
	off_t size;
	int fd;

	if (!id_valid(id) || db_file_by_id(app->db, id, &f) < 0 || !may_see(req, &f) ||
	    blobs_open_read(app->blobs, f.bucket, f.id, &fd, &size) < 0) {
		file_not_found(req);
		return;
	}
	add_disposition(req, f.name);
	http_reply_fd(req, 200, fd, (long long)size, f.mime);
}

/* GET /v1/librechat/files?session_id=<bucket>: the bucket's files, normalized. */
void
handle_list_session_files(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *bucket = http_req_query(req, "session_id");
	struct listing l = { json_object_new_array(), DETAIL_NORMALIZED, req };
	struct json_object *o;

	if (!bucket) {
		json_object_put(l.arr);
		http_reply_error(req, 400, "session_id is required", NULL);
		return;
	}
	if (id_valid(bucket) && db_file_list(app->db, bucket, add_listed, &l) < 0) {
		json_object_put(l.arr);
		http_reply_error(req, 500, "Internal error", "the file store did not answer");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "session_id", json_object_new_string(bucket));
	json_object_object_add(o, "files", l.arr);
	http_reply_json(req, 200, o);
}

/* DELETE /v1/librechat/files/{file_id} */
void
handle_delete_by_id(struct http_req *req, void *appv)
{
	struct app *app = appv;
	const char *id = http_req_param(req, 0);
	struct json_object *o;
	struct db_file f;

	if (!id_valid(id) || db_file_by_id(app->db, id, &f) < 0 || !may_see(req, &f) ||
	    files_delete(app->db, app->blobs, f.bucket, f.id) < 0) {
		file_not_found(req);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string("File deleted successfully"));
	json_object_object_add(o, "session_id", json_object_new_string(f.bucket));
	json_object_object_add(o, "fileId", json_object_new_string(f.id));
	http_reply_json(req, 200, o);
}
