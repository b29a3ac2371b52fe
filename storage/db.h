/*
 * The metadata store: SQLite in WAL mode, schema versioned with
 * PRAGMA user_version.  One connection behind a mutex (our load is small, and
 * it spares us SQLITE_BUSY between our own threads).  Returns 0 or -errno:
 * -ENOENT when a row is missing; for a failed write -ENOSPC (disk full) or
 * -EBUSY (another process held the lock past the 5 s busy timeout); -EIO
 * when SQLite failed otherwise.  Failures are logged here.
 */
#ifndef CIP_DB_H
#define CIP_DB_H

#include <stddef.h>

#include "attr.h"

#define DB_USER_MAX 256
#define DB_HINT_MAX 256
#define DB_CONTAINER_MAX 128
#define DB_NAME_MAX 1024
#define DB_MIME_MAX 128

struct db;

struct db_session {
	char id[22];
	char user_id[DB_USER_MAX];
	char hint[DB_HINT_MAX];		/* "" when none */
	char container_id[DB_CONTAINER_MAX];	/* "" when none */
	long long created_at;		/* unix ms */
	long long last_used_at;
	char state[16];			/* "active", "expired", "deleted" */
};

/* Open (creating the file and its directory's schema); err says why not. */
int db_open(const char *path, struct db **out, char *err, size_t errlen);
void db_close(struct db *db);
int db_schema_version(struct db *db);

CIP_MUST_CHECK int db_session_insert(struct db *db, const struct db_session *s);
int db_session_get(struct db *db, const char *id, struct db_session *out);
/* The newest active session of user with that hint. */
int db_session_by_hint(struct db *db, const char *user, const char *hint, struct db_session *out);
/* The active session holding container_id (a warm-pool container has no session label). */
int db_session_by_container(struct db *db, const char *container_id, struct db_session *out);
CIP_MUST_CHECK int db_session_set_container(struct db *db, const char *id, const char *container_id);
CIP_MUST_CHECK int db_session_touch(struct db *db, const char *id, long long now_ms);
CIP_MUST_CHECK int db_session_set_state(struct db *db, const char *id, const char *state);
CIP_MUST_CHECK int db_session_delete(struct db *db, const char *id);
/* Active sessions with their stored files' count and bytes, oldest first. */
typedef int (*db_session_cb)(const struct db_session *s, long files, long long bytes, void *ctx);
int db_session_list(struct db *db, db_session_cb cb, void *ctx);
/*
 * Active sessions whose TTL ran out at now_ms: counted from creation, or
 * from last use when idle is set.
 */
int db_session_expired(struct db *db, long long now_ms, long long ttl_ms, int idle,
    db_session_cb cb, void *ctx);
/* Sessions in state (e.g. "deleted": a delete not finished), whatever their age. */
int db_session_in_state(struct db *db, const char *state, db_session_cb cb, void *ctx);

/* A stored file: its bytes are the blob bucket/id (blobs.h). */
struct db_file {
	char bucket[22];
	char id[22];
	char name[DB_NAME_MAX];		/* path relative to /mnt/data */
	long long size;
	char sha256[65];
	char mime[DB_MIME_MAX];
	long long created_at;		/* unix ms */
	int read_only;
	char owner[DB_USER_MAX];
	char session_id[22];		/* the exec session that wrote it, or "" */
	char from_id[22], from_bucket[22];	/* the input it modified, or "" */
};

CIP_MUST_CHECK int db_file_insert(struct db *db, const struct db_file *f);
int db_file_get(struct db *db, const char *bucket, const char *id, struct db_file *out);
/* The file with that id, whatever its bucket (ids are unique by birth). */
int db_file_by_id(struct db *db, const char *id, struct db_file *out);
/* Every file of a bucket, oldest first; cb returning non-zero stops the walk. */
typedef int (*db_file_cb)(const struct db_file *f, void *ctx);
int db_file_list(struct db *db, const char *bucket, db_file_cb cb, void *ctx);
CIP_MUST_CHECK int db_file_delete(struct db *db, const char *bucket, const char *id);
/* Every file created before cutoff_ms, whatever its bucket. */
int db_file_older(struct db *db, long long cutoff_ms, db_file_cb cb, void *ctx);

/* Active sessions that hold a container now. */
int db_count_holding(struct db *db);
/*
 * Up to limit active sessions holding a container, last used before
 * used_before_ms, least recently used first.
 */
int db_session_holding(struct db *db, long long used_before_ms, int limit, db_session_cb cb,
    void *ctx);
/* Counts for the metrics: active sessions, those holding a container, files, bytes. */
struct db_totals {
	long long sessions_active, containers, files, bytes;
};
int db_totals(struct db *db, struct db_totals *out);
/* Health: a write in a transaction that is rolled back. */
int db_check_writable(struct db *db, char *err, size_t errlen);

#endif
