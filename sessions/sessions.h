/*
 * Sessions: session id -> one long-lived sandbox container with an open
 * runner channel.  Execs in one session are serialized by its lock; different
 * sessions run in parallel.  SQLite holds the truth about sessions; the
 * in-memory table caches containers and channels.  Route handlers call this
 * module, never Docker.
 */
#ifndef CIP_SESSIONS_H
#define CIP_SESSIONS_H

#include <stddef.h>

#include "cfg.h"
#include "docker.h"
#include "abort.h"
#include "exec_req.h"
#include "ids.h"
#include "metrics.h"
#include "../storage/blobs.h"
#include "../storage/db.h"

enum sess_rc {
	SESS_OK = 0,
	SESS_EUNAVAIL = -1,	/* the engine does not answer: 503 */
	SESS_EENGINE = -2,	/* the engine refused (no image, bad config): 502 */
	SESS_ESANDBOX = -3,	/* the sandbox failed or stopped answering: 502 */
	SESS_EINTERNAL = -4,	/* out of memory, database failure: 500 */
	SESS_EINPUT = -5,	/* a files[] ref that does not exist (any more): 422 */
	SESS_EBUSY = -6,	/* every container is busy at CI_MAX_LIVE_CONTAINERS: 503 */
	SESS_EFULL = -7,	/* the session store's disk is full: 507 */
	SESS_ESTOREBUSY = -8,	/* another process holds the database's lock: 503 */
};

/* A file the run created or changed, now stored in the session's bucket. */
struct exec_file {
	char id[ID_LEN + 1];
	char bucket[ID_LEN + 1];	/* the session's, or an inherited input's */
	char *name;		/* relative to /mnt/data */
	int inherited;		/* an unchanged input, echoed */
	char from_id[ID_LEN + 1], from_bucket[ID_LEN + 1];	/* the input it changed */
};

struct exec_result {
	char session_id[ID_LEN + 1];
	char *out, *err;		/* raw bytes, NUL-terminated, caller frees */
	size_t out_len, err_len;
	unsigned long long out_total, err_total;	/* bytes the program wrote */
	int overflow;			/* stdout was cut at CI_MAX_OUTPUT_BYTES */
	int created;			/* the session is new (runtime_status "new") */
	int cancelled;			/* stopped because the client went away */
	int exit_code;
	int signal;
	int timed_out;
	long wall_ms;
	struct exec_file *files;
	size_t nfiles;
	/* Outputs the run made that we tried to store, and how many of them failed. */
	size_t outputs_attempted, outputs_failed;
	/*
	 * The names of this call's inputs the run deleted, when /mnt/data was
	 * listed completely (deleted_known).
	 */
	char **deleted;
	size_t ndeleted;
	int deleted_known;
};

struct sessions;

/* The owner of what a request that names no user creates. */
#define SESSIONS_ANONYMOUS "local"

/*
 * Who a request acts for.  A verified user (a JWT's subject) owns exactly
 * what carries its name.  Without a token the names a client sends are
 * claims: a request that names no user (LibreChat's own helper calls) is
 * not a different user, and an unguessable session or file id is the
 * capability; one that names another user than a file's owner is refused.
 */
struct caller {
	const char *user;	/* NULL: the request names no user */
	int verified;		/* user is a verified token's subject */
};
/* 1 if who may use what owner owns, by the rule above. */
int caller_may_use(const struct caller *who, const char *owner);

/* cfg, dk, db, blobs and mx (may be NULL) are borrowed and must outlive the manager. */
struct sessions *sessions_new(const struct cfg *cfg, struct docker *dk, struct db *db,
    struct blobs *blobs, struct metrics *mx);
/*
 * For the unit tests: sandboxes from sbx (a fake), no Engine client, so
 * sessions_reconcile does nothing.  sbx's state is borrowed.
 */
struct sandboxes;
struct sessions *sessions_new_with(const struct cfg *cfg, const struct sandboxes *sbx,
    struct db *db, struct blobs *blobs, struct metrics *mx);
/* Close channels; containers are left for the next start to adopt. */
void sessions_free(struct sessions *sm);

/*
 * A run whose program calls tools (programmatic tool calling, src/ptc.c):
 * it runs under the tool preamble of its language with env added, and
 * each line of calls it writes goes to answer, which returns the line of
 * results (malloc'd, *len set) once the client has them, or NULL to stop
 * the run.  answer may block for as long as the client takes.
 */
struct tool_hooks {
	const char *env;		/* "CIP_PTC_TOOLS=..." */
	char *(*answer)(void *ctx, const char *calls, size_t len, size_t *outlen);
	void *ctx;
};

/* What may change a run's course: both may be NULL. */
struct exec_hooks {
	const struct abort_check *gone;	/* fired: the client went away (Stop) */
	const struct tool_hooks *tools;	/* the program calls tools */
};

/*
 * Run req for who.  Fills res (free with exec_result_free) and returns
 * SESS_OK even when the user's program failed; otherwise an error and a
 * client-facing reason in why (details are logged).  While the program
 * runs, hooks->gone is asked whether the client is still there: if not,
 * the run is stopped (Stop in LibreChat); what it wrote so far is still
 * captured, and res->cancelled says so.
 */
int sessions_exec(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    const struct exec_hooks *hooks, struct exec_result *res, char *why, size_t whylen);
void exec_result_free(struct exec_result *res);

/* Admin view of a session; the strings are borrowed for the callback. */
struct session_info {
	const char *id, *user;
	const char *container_id;	/* "" when it holds none */
	const char *state;		/* "active" */
	long long created_at, last_used_at, expires_at;	/* unix ms */
	long files;
	long long bytes;
	int live;		/* holds a container now */
};
typedef int (*session_info_cb)(const struct session_info *info, void *ctx);
/* Every active session of user (everyone's if NULL); cb returning non-zero stops. */
int sessions_list(struct sessions *sm, const char *user, session_info_cb cb, void *ctx);
/*
 * End a session now: its container, its files and its row go.  Waits for an
 * exec in progress.  -ENOENT if there is no such active session of user
 * (of anyone's if user is NULL); -EIO if it ended but storage kept some of
 * its files (logged, counted in cip_store_failures_total).
 */
int sessions_delete(struct sessions *sm, const char *id, const char *user);
/*
 * One sweep: end the sessions whose TTL ran out (a session mid-run waits for
 * the next sweep) and delete the files past retention.  Never blocks an exec.
 */
void sessions_sweep(struct sessions *sm);
/*
 * At startup, before serving: containers with our label are adopted by their
 * live session or removed (unknown or ended session); sessions whose
 * container is gone forget it; unlabelled containers whose image matches
 * CI_SANDBOX_IMAGE_PREFIXES are removed.  Others are never touched.
 */
void sessions_reconcile(struct sessions *sm);
/*
 * The warm pool (CI_POOL_SIZE): start it after sessions_reconcile, which
 * removes the pooled containers a previous run left; stopping it removes
 * the pooled containers.  Stop it once no request or sweep can run.
 */
int sessions_start_pool(struct sessions *sm);
void sessions_stop_pool(struct sessions *sm);
/* The sweeper thread: a sweep every CI_SWEEP_INTERVAL_SECONDS. */
int sessions_start_sweeper(struct sessions *sm);
void sessions_stop_sweeper(struct sessions *sm);
/*
 * At shutdown, with no request left: remove every session's container.
 * Sessions stay, with their files: the next call re-creates the container.
 */
void sessions_close_all(struct sessions *sm);

/* The gauges of /metrics, sampled now; -1 (and -1 fields) if the database failed. */
int sessions_sample(struct sessions *sm, struct metrics_sample *out);
/* 0 when the engine answers and the database takes writes; else why. */
int sessions_health(struct sessions *sm, char *why, size_t whylen);

#endif
