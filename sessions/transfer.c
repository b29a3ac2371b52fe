/*
 * Files between storage and /mnt/data: listing the workspace, putting a
 * request's input files in, restoring a session's stored files into a new
 * container, and storing the files a run created or changed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessions_int.h"

/* List /mnt/data as the capture rules see it. */
enum runner_rc
list_workspace(const struct cfg *c, struct session *s, struct workspace **out,
    char *detail, size_t detlen)
{
	struct proto_msg *req = proto_msg_new(PROTO_LIST), *rep = NULL;
	enum runner_rc r = RUNNER_EFAILED;

	*out = NULL;
	if (req && proto_add_u64(req, "max_depth", 10) == 0 &&
	    proto_add_u64(req, "max_entries", 10000) == 0 &&
	    proto_add_u64(req, "hash_max", (uint64_t)c->max_file_bytes) == 0 &&
	    proto_add_u64(req, "hidden", 0) == 0) {
		r = runner_call(s, req, &rep, CONTROL_TIMEOUT_MS, NULL, detail, detlen);
		if (r == RUNNER_OK && !(*out = workspace_parse(rep))) {
			snprintf(detail, detlen, "runner: a listing that does not parse");
			r = RUNNER_EFAILED;
		}
	}
	proto_msg_free(req);
	proto_msg_free(rep);
	return r;
}

/* The files[] ref placed at path by this request, or NULL. */
static const struct exec_file_ref *
input_at(const struct exec_req *req, const char *path)
{
	size_t i;

	for (i = req->nfiles; i-- > 0; )	/* the last ref of a name wins */
		if (strcmp(req->files[i].name, path) == 0)
			return &req->files[i];
	return NULL;
}

/* Fetch one file from the sandbox and store it as the session owner's; 0 or -1 (logged). */
static int
store_output(struct sessions *sm, struct session *s, const char *path,
    const struct exec_file_ref *from, struct exec_file *out)
{
	struct proto_msg *req = proto_msg_new(PROTO_GET), *rep = NULL;
	struct file_new nf = { .bucket = s->id, .name = path, .owner = s->user,
	    .session_id = s->id, .from_id = from ? from->id : NULL,
	    .from_bucket = from ? from->bucket : NULL };
	struct db_file row;
	char detail[600];
	const char *data;
	size_t len;
	int rc = -1;

	if (!req || proto_add_str(req, "path", path) < 0 ||
	    proto_add_u64(req, "max", (uint64_t)sm->cfg->max_file_bytes) < 0 ||
	    runner_call(s, req, &rep, CONTROL_TIMEOUT_MS, NULL, detail, sizeof(detail)) != RUNNER_OK) {
		log_warn("session %s: output %s not fetched: %s", s->id, path,
		    req ? detail : "out of memory");
		goto out;
	}
	data = proto_get(rep, "data", &len);
	/* The runner was told the cap; one that sends more is not believed. */
	if (data && len > (size_t)sm->cfg->max_file_bytes) {
		log_warn("session %s: output %s refused: the runner sent %zu bytes, over "
		    "CI_MAX_FILE_SIZE_BYTES", s->id, path, len);
		goto out;
	}
	if (!data || !(out->name = strdup(path)))
		goto out;
	if (from) {
		snprintf(out->from_id, sizeof(out->from_id), "%s", from->id);
		snprintf(out->from_bucket, sizeof(out->from_bucket), "%s", from->bucket);
	}
	if (files_store_named(sm->db, sm->blobs, &nf, data, len, &row) < 0) {
		log_error("session %s: output %s not stored", s->id, path);
		free(out->name);
		out->name = NULL;
		goto out;
	}
	memcpy(out->id, row.id, sizeof(out->id));
	memcpy(out->bucket, row.bucket, sizeof(out->bucket));
	log_info("session %s: captured %s (%zu bytes, %s) as %s", s->id, path, len, row.mime, row.id);
	rc = 0;
out:
	proto_msg_free(req);
	proto_msg_free(rep);
	return rc;
}

/* Inputs uploaded read-only are infrastructure: never reported as changed. */
static int
is_read_only_input(struct sessions *sm, const struct exec_req *req, const char *path)
{
	const struct exec_file_ref *ref = input_at(req, path);
	struct db_file row;

	return ref && db_file_get(sm->db, ref->bucket, ref->id, &row) == 0 && row.read_only;
}

/* Unchanged inputs, echoed as inherited in the slots the outputs left. */
static void
echo_inherited(const struct exec_req *req, const struct workspace *after,
    struct exec_result *res, size_t max)
{
	const struct exec_file_ref *ref;
	const struct ws_entry *e;
	struct exec_file *f;
	size_t i, j;
	int dup;

	for (i = 0; i < req->nfiles && res->nfiles < max; i++) {
		ref = &req->files[i];
		if (input_at(req, ref->name) != ref || !(e = workspace_find(after, ref->name)) ||
		    e->type != 'f')
			continue;
		for (j = 0, dup = 0; j < res->nfiles; j++)
			dup |= strcmp(res->files[j].name, ref->name) == 0;
		if (dup)	/* changed: reported above, with modified_from */
			continue;
		f = &res->files[res->nfiles];
		if (!(f->name = strdup(ref->name)))
			return;
		snprintf(f->id, sizeof(f->id), "%s", ref->id);
		snprintf(f->bucket, sizeof(f->bucket), "%s", ref->bucket);
		f->inherited = 1;
		res->nfiles++;
	}
}

/* 1 if a segment of path is hidden: the listing does not look inside such directories. */
static int
under_hidden(const char *path)
{
	return path[0] == '.' || strstr(path, "/.") != NULL;
}

/*
 * The inputs of this call that are no longer regular files in after, if
 * after is a complete listing (librechat-api.md 3.1 deleted_files): a
 * truncated one, or an input inside a directory the listing skips, tells
 * nothing.
 */
static void
find_deleted(const struct exec_req *req, const struct workspace *after, struct exec_result *res)
{
	const struct ws_entry *e;
	size_t i;

	if (after->truncated || (req->nfiles && !(res->deleted = calloc(req->nfiles,
	    sizeof(*res->deleted)))))
		return;
	for (i = 0; i < req->nfiles; i++) {
		if (input_at(req, req->files[i].name) != &req->files[i])
			continue;
		if (under_hidden(req->files[i].name))
			return;		/* cannot tell: say nothing */
		e = workspace_find(after, req->files[i].name);
		if ((!e || e->type != 'f') &&
		    !(res->deleted[res->ndeleted++] = strdup(req->files[i].name))) {
			res->ndeleted--;
			return;		/* out of memory: say nothing */
		}
	}
	res->deleted_known = 1;
}

/*
 * The files the run created or changed (regular files only: a symlink is
 * never followed), within the size and count caps, are stored in the
 * session's bucket and listed in res.
 */
void
capture_outputs(struct sessions *sm, struct session *s, const struct exec_req *req,
    const char *file, const struct workspace *after, struct exec_result *res)
{
	const struct cfg *c = sm->cfg;
	const struct ws_entry *e;
	size_t i;

	if (c->max_files_per_run > 0 &&
	    !(res->files = calloc((size_t)c->max_files_per_run, sizeof(*res->files))))
		return;
	for (i = 0; i < after->n; i++) {
		e = &after->e[i];
		if (!workspace_changed(s->ws, e) || strcmp(e->path, file) == 0 ||
		    is_read_only_input(sm, req, e->path))
			continue;
		if (e->size > c->max_file_bytes) {
			log_info("session %s: output %s skipped: %lld bytes is over "
			    "CI_MAX_FILE_SIZE_BYTES", s->id, e->path, e->size);
			continue;
		}
		if (res->nfiles == (size_t)c->max_files_per_run) {
			log_info("session %s: more than %d outputs; the rest are not captured",
			    s->id, c->max_files_per_run);
			break;
		}
		res->outputs_attempted++;
		if (store_output(sm, s, e->path, input_at(req, e->path),
		    &res->files[res->nfiles]) == 0)
			res->nfiles++;
		else
			res->outputs_failed++;
	}
	echo_inherited(req, after, res, (size_t)c->max_files_per_run);
	find_deleted(req, after, res);
}

/* Read a stored file's bytes; NULL (logged) if the blob cannot be read. */
static char *
read_blob(struct sessions *sm, const struct db_file *f, size_t *len)
{
	char *data = NULL;
	off_t size;
	ssize_t n;
	size_t got = 0;
	int fd;

	if (blobs_open_read(sm->blobs, f->bucket, f->id, &fd, &size) < 0)
		return NULL;
	if ((data = malloc((size_t)size + 1)))
		while (got < (size_t)size && (n = read(fd, data + got, (size_t)size - got)) > 0)
			got += (size_t)n;
	close(fd);
	if (data && got != (size_t)size) {
		free(data);
		data = NULL;
	}
	*len = got;
	return data;
}

/* Restore batches: one PUT carries at most this many bytes of files. */
#define RESTORE_BATCH (32u << 20)

struct restore {
	struct db_file *rows;
	size_t n, alloc;
};

/* Add a stored file's row to the restore list; 1 (stop) if out of memory. */
static int
collect_row(const struct db_file *f, void *ctx)
{
	struct restore *r = ctx;
	struct db_file *grown;

	if (r->n == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 16;
		if (!(grown = realloc(r->rows, r->alloc * sizeof(*grown))))
			return 1;
		r->rows = grown;
	}
	r->rows[r->n++] = *f;
	return 0;
}

/* Send a restore batch; 0, or -1 with the channel lost. */
static int
flush_restore(struct session *s, struct proto_msg **put, size_t *bytes)
{
	struct proto_msg *rep = NULL;
	char detail[600];
	int r = 0;

	if (*put && runner_call(s, *put, &rep, CONTROL_TIMEOUT_MS, NULL, detail, sizeof(detail)) !=
	    RUNNER_OK) {
		log_error("session %s: restore: %s", s->id, detail);
		r = -1;
	}
	proto_msg_free(*put);
	proto_msg_free(rep);
	*put = NULL;
	*bytes = 0;
	return r;
}

/*
 * Put the newest stored version of every file of the session's bucket back
 * in /mnt/data of its new container.  Files too old to be kept are gone
 * for good; inputs from other buckets come back with the next call's refs.
 */
/* Files restored; -1 when something failed (the workspace is unknown). */
int
restore_workspace(struct sessions *sm, struct session *s)
{
	struct restore r = { NULL, 0, 0 };
	struct proto_msg *put = NULL;
	size_t i, j, len, bytes = 0, restored = 0;
	char *data;
	int newer, rc = -1;

	if (db_file_list(sm->db, s->id, collect_row, &r) < 0)
		goto out;
	if (r.n == 0) {
		rc = 0;
		goto out;
	}
	for (i = r.n; i-- > 0; ) {	/* newest first: the first of a name wins */
		for (j = i + 1, newer = 0; j < r.n && !newer; j++)
			newer = strcmp(r.rows[j].name, r.rows[i].name) == 0;
		if (newer || !(data = read_blob(sm, &r.rows[i], &len)))
			continue;
		if ((!put && !(put = proto_msg_new(PROTO_PUT))) ||
		    proto_add_str(put, "path", r.rows[i].name) < 0 ||
		    proto_add(put, "data", data, len) < 0) {
			free(data);
			goto out;
		}
		free(data);
		restored++;
		if ((bytes += len) >= RESTORE_BATCH && flush_restore(s, &put, &bytes) < 0)
			goto out;
	}
	if (flush_restore(s, &put, &bytes) == 0) {
		if (restored)
			log_info("session %s re-hydrated: %zu file(s) restored from storage", s->id,
			    restored);
		rc = restored ? (int)restored : -1;
	}
out:
	proto_msg_free(put);
	free(r.rows);
	return rc;
}

/*
 * 1 if who may use stored file row through ref.  Agent and skill files are
 * shared.  A user's file (legacy refs carry no kind) is its owner's: a
 * verified caller must be the owner; an unverified one may not claim to be
 * someone else, but one that names no user holds the unguessable id, and
 * a file uploaded by no one is anyone's who has its id (sessions.h).
 */
static int
input_allowed(const struct caller *who, const struct exec_file_ref *ref,
    const struct db_file *row)
{
	if (ref->kind && strcmp(ref->kind, "user") != 0)
		return 1;
	return caller_may_use(who, row->owner);
}

/* The stored file ref i names, if who may use it; else SESS_EINPUT and why. */
static int
find_input(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    size_t i, struct db_file *row, char *why, size_t whylen)
{
	const struct exec_file_ref *ref = &req->files[i];

	if (db_file_get(sm->db, ref->bucket, ref->id, row) == 0 && input_allowed(who, ref, row))
		return SESS_OK;
	snprintf(why, whylen, "files[%zu] (%s) does not exist or has expired", i, ref->name);
	return SESS_EINPUT;
}

/*
 * Before anything is created for the request: every files[] ref names a
 * stored file who may use.  SESS_OK, or SESS_EINPUT and why.
 */
int
check_inputs(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    char *why, size_t whylen)
{
	struct db_file row;
	size_t i;
	int rc;

	for (i = 0; i < req->nfiles; i++)
		if (input_at(req, req->files[i].name) == &req->files[i] &&
		    (rc = find_input(sm, who, req, i, &row, why, whylen)) != SESS_OK)
			return rc;
	return SESS_OK;
}

/*
 * Put every files[] ref at /mnt/data/<name>, skipping those already there
 * with the same content.  One PUT carries them all.  SESS_EINPUT if a ref
 * names no stored file, SESS_EINTERNAL out of memory, SESS_ESANDBOX with *rr
 * saying how the runner call failed.
 */
int
put_inputs(struct sessions *sm, struct session *s, const struct caller *who,
    const struct exec_req *req, enum runner_rc *rr, char *why, size_t whylen, char *detail,
    size_t detlen)
{
	struct proto_msg *put = NULL, *rep = NULL;
	const struct exec_file_ref *ref;
	const struct ws_entry *e;
	struct db_file row;
	size_t i, len, n = 0;
	char *data;
	int r = SESS_OK;

	*rr = RUNNER_OK;
	for (i = 0; i < req->nfiles; i++) {
		ref = &req->files[i];
		if (input_at(req, ref->name) != ref)
			continue;	/* a later ref of the same name wins */
		/* Checked before the session was made; again, as it may have expired since. */
		if ((r = find_input(sm, who, req, i, &row, why, whylen)) != SESS_OK)
			goto out;
		e = workspace_find(s->ws, ref->name);
		if (e && e->type == 'f' && strcmp(e->sha256, row.sha256) == 0)
			continue;	/* already there, same bytes */
		if (!(data = read_blob(sm, &row, &len))) {
			snprintf(why, whylen, "files[%zu] (%s) cannot be read from storage", i,
			    ref->name);
			r = SESS_EINPUT;
			goto out;
		}
		if ((!put && !(put = proto_msg_new(PROTO_PUT))) ||
		    proto_add_str(put, "path", ref->name) < 0 ||
		    proto_add(put, "data", data, len) < 0 ||
		    workspace_set(s->ws, ref->name, row.size, row.sha256) < 0) {
			free(data);
			snprintf(why, whylen, "out of memory");
			r = SESS_EINTERNAL;
			goto out;
		}
		free(data);
		n++;
	}
	if (put && (*rr = runner_call(s, put, &rep, CONTROL_TIMEOUT_MS, NULL, detail, detlen)) !=
	    RUNNER_OK) {
		/* The snapshot no longer tells the truth about those paths. */
		workspace_free(s->ws);
		s->ws = NULL;
		r = SESS_ESANDBOX;
	}
	if (n)
		log_info("session %s: %zu input file(s) put in place", s->id, n);
out:
	proto_msg_free(put);
	proto_msg_free(rep);
	return r;
}
