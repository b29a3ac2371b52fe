#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

struct db {
	sqlite3 *h;
	pthread_mutex_t mu;
};

/* Migration i brings the schema from version i to i + 1.  Append only. */
static const char *const migrations[] = {
	"CREATE TABLE sessions ("
	"  id TEXT PRIMARY KEY,"
	"  user_id TEXT NOT NULL,"
	"  hint TEXT,"
	"  container_id TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  last_used_at INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'active'"
	");"
	"CREATE INDEX sessions_hint ON sessions(user_id, hint) WHERE hint IS NOT NULL;"
	"CREATE INDEX sessions_state ON sessions(state, created_at);"
	"CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at INTEGER);",

	"CREATE TABLE files ("
	"  bucket TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  mime TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  read_only INTEGER NOT NULL DEFAULT 0,"
	"  owner TEXT NOT NULL,"
	"  session_id TEXT,"
	"  from_id TEXT,"
	"  from_bucket TEXT,"
	"  PRIMARY KEY (bucket, id)"
	");"
	"CREATE INDEX files_created ON files(created_at);",

	"CREATE INDEX files_id ON files(id);",

	/* The sessions holding a container, oldest use first: the cap and eviction. */
	("CREATE INDEX sessions_holding ON sessions(last_used_at)"
	 " WHERE state = 'active' AND container_id <> '';"),
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int
db_exec(struct db *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
db_schema_version(struct db *db)
{
	sqlite3_stmt *st;
	int v = -1;

	pthread_mutex_lock(&db->mu);
	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return v;
}

static int
db_migrate(struct db *db, char *err, size_t errlen)
{
	char sql[64];
	int v = db_schema_version(db), i;

	if (v < 0) {
		snprintf(err, errlen, "cannot read the schema version");
		return -1;
	}
	if (v > NMIGRATIONS) {
		snprintf(err, errlen, "database schema %d is newer than this proxy (%d)", v,
		    NMIGRATIONS);
		return -1;
	}
	for (i = v; i < NMIGRATIONS; i++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", i + 1);
		if (db_exec(db, "BEGIN IMMEDIATE", err, errlen) < 0)
			return -1;
		if (db_exec(db, migrations[i], err, errlen) < 0 ||
		    db_exec(db, sql, err, errlen) < 0 || db_exec(db, "COMMIT", err, errlen) < 0) {
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		log_info("database schema migrated to version %d", i + 1);
	}
	return 0;
}

int
db_open(const char *path, struct db **out, char *err, size_t errlen)
{
	struct db *db = calloc(1, sizeof(*db));

	*out = NULL;
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&db->mu, NULL);
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    db->h ? sqlite3_errmsg(db->h) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db->h, 5000);
	if (db_exec(db, "PRAGMA journal_mode=WAL", err, errlen) < 0 ||
	    db_exec(db, "PRAGMA synchronous=NORMAL", err, errlen) < 0 ||
	    db_exec(db, "PRAGMA foreign_keys=ON", err, errlen) < 0 ||
	    db_migrate(db, err, errlen) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	db_close(db);
	return -EIO;
}

void
db_close(struct db *db)
{
	if (!db)
		return;
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

/* Prepare under the lock held by the caller; logs on failure. */
static sqlite3_stmt *
prep(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("sqlite: prepare failed: %s", sqlite3_errmsg(db->h));
		return NULL;
	}
	return st;
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/*
 * The -errno of a failed SQLite call: a full disk and a lock held past the
 * busy timeout are passing conditions the caller reports as such (507,
 * 503), not as a broken store.
 */
static int
sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

/* Step a statement that returns no rows; 0, -ENOENT if it changed none, or sqlite_errno. */
static int
step_done(struct db *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		log_error("sqlite: %s", sqlite3_errmsg(db->h));
		return sqlite_errno(rc);
	}
	return sqlite3_changes(db->h) > 0 ? 0 : -ENOENT;
}

int
db_session_insert(struct db *db, const struct db_session *s)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	st = prep(db, "INSERT INTO sessions (id, user_id, hint, container_id, created_at,"
	    " last_used_at, state) VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (st) {
		sqlite3_bind_text(st, 1, s->id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, s->user_id, -1, SQLITE_TRANSIENT);
		bind_text_or_null(st, 3, s->hint);
		bind_text_or_null(st, 4, s->container_id);
		sqlite3_bind_int64(st, 5, s->created_at);
		sqlite3_bind_int64(st, 6, s->last_used_at);
		sqlite3_bind_text(st, 7, s->state[0] ? s->state : "active", -1, SQLITE_TRANSIENT);
		rc = step_done(db, st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

static void
copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int
read_session(struct db *db, sqlite3_stmt *st, struct db_session *out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW) {
		log_error("sqlite: %s", sqlite3_errmsg(db->h));
		return -EIO;
	}
	copy_col(out->id, sizeof(out->id), st, 0);
	copy_col(out->user_id, sizeof(out->user_id), st, 1);
	copy_col(out->hint, sizeof(out->hint), st, 2);
	copy_col(out->container_id, sizeof(out->container_id), st, 3);
	out->created_at = sqlite3_column_int64(st, 4);
	out->last_used_at = sqlite3_column_int64(st, 5);
	copy_col(out->state, sizeof(out->state), st, 6);
	return 0;
}

#define SESSION_COLS "id, user_id, hint, container_id, created_at, last_used_at, state"

int
db_session_get(struct db *db, const char *id, struct db_session *out)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "SELECT " SESSION_COLS " FROM sessions WHERE id = ?"))) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = read_session(db, st, out);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int
db_session_by_hint(struct db *db, const char *user, const char *hint, struct db_session *out)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "SELECT " SESSION_COLS " FROM sessions WHERE user_id = ? AND"
	    " hint = ? AND state = 'active' ORDER BY created_at DESC LIMIT 1"))) {
		sqlite3_bind_text(st, 1, user, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, hint, -1, SQLITE_TRANSIENT);
		rc = read_session(db, st, out);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int
db_session_by_container(struct db *db, const char *container_id, struct db_session *out)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "SELECT " SESSION_COLS " FROM sessions WHERE container_id = ?"
	    " AND state = 'active' LIMIT 1"))) {
		sqlite3_bind_text(st, 1, container_id, -1, SQLITE_TRANSIENT);
		rc = read_session(db, st, out);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/* A statement with two text parameters (val may be NULL or ""), no rows back. */
static int
exec_text2(struct db *db, const char *sql, const char *id, const char *val)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, sql))) {
		bind_text_or_null(st, 1, val);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
		rc = step_done(db, st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int
db_session_set_container(struct db *db, const char *id, const char *container_id)
{
	return exec_text2(db, "UPDATE sessions SET container_id = ? WHERE id = ?", id,
	    container_id);
}

int
db_session_set_state(struct db *db, const char *id, const char *state)
{
	return exec_text2(db, "UPDATE sessions SET state = ? WHERE id = ?", id, state);
}

int
db_session_delete(struct db *db, const char *id)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "DELETE FROM sessions WHERE id = ?"))) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = step_done(db, st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

struct session_row {
	struct db_session s;
	long files;
	long long bytes;
};

/*
 * Run a session query (columns SESSION_COLS, then file count and bytes),
 * collect under the lock and call back without it: cb may use the db.
 */
static int
session_query(struct db *db, sqlite3_stmt *st, db_session_cb cb, void *ctx)
{
	struct session_row *rows = NULL, *grown;
	size_t n = 0, alloc = 0, i;
	int r, rc;

	rc = 0;
	for (;;) {
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			if (!(grown = realloc(rows, alloc * sizeof(*rows)))) {
				rc = -ENOMEM;
				break;
			}
			rows = grown;
		}
		r = read_session(db, st, &rows[n].s);
		if (r == -ENOENT)
			break;
		if (r < 0) {
			rc = r;
			break;
		}
		rows[n].files = (long)sqlite3_column_int64(st, 7);
		rows[n].bytes = sqlite3_column_int64(st, 8);
		n++;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db->mu);
	for (i = 0; rc == 0 && i < n; i++)
		if (cb(&rows[i].s, rows[i].files, rows[i].bytes, ctx))
			break;
	free(rows);
	return rc;
}

#define SESSION_COLS_S "s.id, s.user_id, s.hint, s.container_id, s.created_at," \
	" s.last_used_at, s.state, COUNT(f.id), COALESCE(SUM(f.size), 0)"
#define SESSION_FROM " FROM sessions s LEFT JOIN files f ON f.bucket = s.id" \
	" WHERE s.state = 'active'"

int
db_session_list(struct db *db, db_session_cb cb, void *ctx)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&db->mu);
	if (!(st = prep(db, "SELECT " SESSION_COLS_S SESSION_FROM
	    " GROUP BY s.id ORDER BY s.created_at"))) {
		pthread_mutex_unlock(&db->mu);
		return -EIO;
	}
	return session_query(db, st, cb, ctx);
}

int
db_session_expired(struct db *db, long long now_ms, long long ttl_ms, int idle,
    db_session_cb cb, void *ctx)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&db->mu);
	st = prep(db, idle ?
	    "SELECT " SESSION_COLS_S SESSION_FROM " AND s.last_used_at + ? <= ? GROUP BY s.id" :
	    "SELECT " SESSION_COLS_S SESSION_FROM " AND s.created_at + ? <= ? GROUP BY s.id");
	if (!st) {
		pthread_mutex_unlock(&db->mu);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, ttl_ms);
	sqlite3_bind_int64(st, 2, now_ms);
	return session_query(db, st, cb, ctx);
}

int
db_session_in_state(struct db *db, const char *state, db_session_cb cb, void *ctx)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&db->mu);
	if (!(st = prep(db, "SELECT " SESSION_COLS_S " FROM sessions s LEFT JOIN files f"
	    " ON f.bucket = s.id WHERE s.state = ? GROUP BY s.id"))) {
		pthread_mutex_unlock(&db->mu);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
	return session_query(db, st, cb, ctx);
}

int
db_session_touch(struct db *db, const char *id, long long now_ms)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "UPDATE sessions SET last_used_at = ? WHERE id = ?"))) {
		sqlite3_bind_int64(st, 1, now_ms);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
		rc = step_done(db, st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

#define FILE_COLS "bucket, id, name, size, sha256, mime, created_at, read_only, owner," \
	" session_id, from_id, from_bucket"

int
db_file_insert(struct db *db, const struct db_file *f)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "INSERT INTO files (" FILE_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"))) {
		sqlite3_bind_text(st, 1, f->bucket, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, f->id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, f->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, f->size);
		sqlite3_bind_text(st, 5, f->sha256, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 6, f->mime, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 7, f->created_at);
		sqlite3_bind_int(st, 8, f->read_only);
		sqlite3_bind_text(st, 9, f->owner, -1, SQLITE_TRANSIENT);
		bind_text_or_null(st, 10, f->session_id);
		bind_text_or_null(st, 11, f->from_id);
		bind_text_or_null(st, 12, f->from_bucket);
		rc = step_done(db, st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

static void
read_file_row(sqlite3_stmt *st, struct db_file *f)
{
	copy_col(f->bucket, sizeof(f->bucket), st, 0);
	copy_col(f->id, sizeof(f->id), st, 1);
	copy_col(f->name, sizeof(f->name), st, 2);
	f->size = sqlite3_column_int64(st, 3);
	copy_col(f->sha256, sizeof(f->sha256), st, 4);
	copy_col(f->mime, sizeof(f->mime), st, 5);
	f->created_at = sqlite3_column_int64(st, 6);
	f->read_only = sqlite3_column_int(st, 7);
	copy_col(f->owner, sizeof(f->owner), st, 8);
	copy_col(f->session_id, sizeof(f->session_id), st, 9);
	copy_col(f->from_id, sizeof(f->from_id), st, 10);
	copy_col(f->from_bucket, sizeof(f->from_bucket), st, 11);
}

/* One row by a query taking two text parameters (b may be NULL: unused). */
static int
file_query(struct db *db, const char *sql, const char *a, const char *b, struct db_file *out)
{
	sqlite3_stmt *st;
	int rc = -EIO, r;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, sql))) {
		sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
		if (b)
			sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			read_file_row(st, out);
			rc = 0;
		} else {
			rc = r == SQLITE_DONE ? -ENOENT : -EIO;
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int
db_file_get(struct db *db, const char *bucket, const char *id, struct db_file *out)
{
	return file_query(db, "SELECT " FILE_COLS " FROM files WHERE bucket = ? AND id = ?",
	    bucket, id, out);
}

int
db_file_by_id(struct db *db, const char *id, struct db_file *out)
{
	return file_query(db, "SELECT " FILE_COLS " FROM files WHERE id = ? LIMIT 1", id, NULL,
	    out);
}

/* Rows of a file query with one bound parameter (text, or an integer). */
static int
file_rows(struct db *db, const char *sql, const char *text, long long num, db_file_cb cb,
    void *ctx)
{
	struct db_file *rows = NULL, *grown, one;
	size_t n = 0, alloc = 0, i;
	sqlite3_stmt *st;
	int rc = -EIO, r;

	/* Collect under the lock, call back without it: cb may use the db. */
	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, sql))) {
		if (text)
			sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(st, 1, num);
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			read_file_row(st, &one);
			if (n == alloc) {
				alloc = alloc ? alloc * 2 : 16;
				if (!(grown = realloc(rows, alloc * sizeof(*rows))))
					break;
				rows = grown;
			}
			rows[n++] = one;
		}
		rc = r == SQLITE_DONE ? 0 : -EIO;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	for (i = 0; rc == 0 && i < n; i++)
		if (cb(&rows[i], ctx))
			break;
	free(rows);
	return rc;
}

int
db_file_list(struct db *db, const char *bucket, db_file_cb cb, void *ctx)
{
	return file_rows(db, "SELECT " FILE_COLS " FROM files WHERE bucket = ?"
	    " ORDER BY created_at, rowid", bucket, 0, cb, ctx);
}

int
db_file_older(struct db *db, long long cutoff_ms, db_file_cb cb, void *ctx)
{
	return file_rows(db, "SELECT " FILE_COLS " FROM files WHERE created_at < ?", NULL,
	    cutoff_ms, cb, ctx);
}

int
db_file_delete(struct db *db, const char *bucket, const char *id)
{
	return exec_text2(db, "DELETE FROM files WHERE bucket = ? AND id = ?", id, bucket);
}

int
db_check_writable(struct db *db, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&db->mu);
	if (db_exec(db, "BEGIN IMMEDIATE", err, errlen) < 0)
		rc = -EIO;
	else if (db_exec(db, "INSERT OR REPLACE INTO health (id, checked_at) VALUES (1, 0)",
	    err, errlen) < 0)
		rc = -EIO;
	if (sqlite3_get_autocommit(db->h) == 0)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int
db_totals(struct db *db, struct db_totals *out)
{
	sqlite3_stmt *st;
	int rc = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "SELECT (SELECT COUNT(*) FROM sessions WHERE state = 'active'),"
	    " (SELECT COUNT(*) FROM sessions WHERE state = 'active' AND container_id <> ''),"
	    " COUNT(*), COALESCE(SUM(size), 0) FROM files"))) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			out->sessions_active = sqlite3_column_int64(st, 0);
			out->containers = sqlite3_column_int64(st, 1);
			out->files = sqlite3_column_int64(st, 2);
			out->bytes = sqlite3_column_int64(st, 3);
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int
db_count_holding(struct db *db)
{
	sqlite3_stmt *st;
	int n = -EIO;

	pthread_mutex_lock(&db->mu);
	if ((st = prep(db, "SELECT COUNT(*) FROM sessions"
	    " WHERE state = 'active' AND container_id <> ''"))) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->mu);
	return n;
}

int
db_session_holding(struct db *db, long long used_before_ms, int limit, db_session_cb cb,
    void *ctx)
{
	sqlite3_stmt *st;

	pthread_mutex_lock(&db->mu);
	if (!(st = prep(db, "SELECT " SESSION_COLS_S SESSION_FROM
	    " AND s.container_id <> '' AND s.last_used_at < ?"
	    " GROUP BY s.id ORDER BY s.last_used_at LIMIT ?"))) {
		pthread_mutex_unlock(&db->mu);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, used_before_ms);
	sqlite3_bind_int(st, 2, limit);
	return session_query(db, st, cb, ctx);
}
