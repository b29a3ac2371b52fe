/*
 * Private to sessions/: what its files share.  The layout, by job:
 *
 *   file             job                                          called by
 *   sessions.c       create, free, list, delete, end, health,     routes, main
 *                    metrics, pool start/stop, shutdown
 *   exec.c           sequence one /exec                           routes
 *   registry.c       the session table, refs, resolving a row     exec, slots,
 *                                                                 sweep, sessions
 *   slots.c          container cap, warm pool, eviction, a        exec, sweep,
 *                    container and channel for a session          sessions
 *   runner_client.c  requests to the runner and its replies       exec, transfer
 *   transfer.c       files in and out of /mnt/data                exec, slots
 *   sweep.c          TTL expiry, idle eviction, file retention    main (thread)
 *   reconcile.c      adopt or remove containers at startup        main
 *   sandbox.c        the sandbox operation table, and the         slots, pool,
 *                    Engine's: containers and their relay exec    sessions
 *                    (with reconcile.c, all of the docker_* calls)
 *   pool.c           the warm pool's thread                       slots
 *   channel.c        one runner channel over a byte stream        sandbox, runner_client
 *   workspace.c      a listing of /mnt/data, and its diff         transfer
 *
 * Unit tests drive all of it through sessions_new_with and a fake table
 * (tests/unit/fake_sandbox.c).
 *
 * Locks: sm->mu guards the table (never held across I/O); a session's lock
 * is held for a whole exec, and taken with trylock by eviction and the
 * sweeper, which skip a busy session; sm->cap_mu guards the slot count.
 */
#ifndef CIP_SESSIONS_INT_H
#define CIP_SESSIONS_INT_H

#include <pthread.h>

#include "clock.h"
#include "channel.h"
#include "log.h"
#include "mime.h"
#include "pool.h"
#include "sandbox.h"
#include "sessions.h"
#include "workspace.h"
#include "../storage/files.h"

#define NBUCKETS 256
/* Beyond the run timeout: the runner's kill and drain, and the channel. */
#define RUN_GRACE_MS 15000
#define CONTROL_TIMEOUT_MS 30000

struct session {
	char id[ID_LEN + 1];
	char user[DB_USER_MAX];
	pthread_mutex_t lock;		/* held for a whole exec */
	char container_id[DOCKER_ID_MAX];
	struct channel *ch;
	struct workspace *ws;		/* /mnt/data after the last run, or NULL */
	struct session *next;
	int refs;	/* the table's (while listed) and each request's; under sm->mu */
	int gone;	/* ended: out of the table; written holding both locks */
	int in_ptc;	/* its program waits for the client's tool results; under sm->mu */
};

struct sessions {
	const struct cfg *cfg;
	struct sandboxes sbx;		/* where containers come from */
	int own_sbx;			/* sbx is the Engine's, made by sessions_new */
	struct docker *dk;		/* for reconcile.c; NULL with sessions_new_with */
	struct db *db;
	struct blobs *blobs;
	struct metrics *mx;
	struct pool *pool;		/* NULL with CI_POOL_SIZE=0 */
	pthread_mutex_t cap_mu;		/* guards creating */
	int creating;			/* container slots reserved, not yet recorded */
	pthread_mutex_t mu;		/* guards the table, not the sessions */
	struct session *table[NBUCKETS];
	pthread_t sweeper;
	int sweeping, stopping;		/* under sweep_mu */
	pthread_mutex_t sweep_mu;
	pthread_cond_t sweep_cv;
};

/*
 * What a call to a session's runner came to.  Lost means the channel
 * failed: the sandbox may be gone, and a call before the run may be
 * retried on a new one; failed means the channel is fine but the runner
 * answered with an error (or the request or its answer could not be made
 * sense of).
 */
enum runner_rc {
	RUNNER_OK = 0,
	RUNNER_ELOST,
	RUNNER_EFAILED,
};

/* sessions.c */
void store_failed(struct sessions *sm, const char *what, const char *id);
long long session_ttl_ms(const struct cfg *c);
void session_retire(struct sessions *sm, struct session *s, const char *state,
    const char *why);
void remove_uncached_container(struct sessions *sm, const struct db_session *row);
int session_finish_delete(struct sessions *sm, const struct db_session *row);

/* registry.c */
struct session *registry_get(struct sessions *sm, const struct db_session *row);
void session_release(struct sessions *sm, struct session *s);
void registry_unlink(struct sessions *sm, struct session *s);
int registry_resolve(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    struct db_session *row, int *created);
struct session *registry_cached(struct sessions *sm, const char *id);

/* slots.c */
void forget_channel(struct session *s);
void drop_container(struct sessions *sm, struct session *s, const char *reason);
int reserve_slot(void *ctx);
void release_slot(void *ctx);
int ensure_channel(struct sessions *sm, struct session *s, char *why, size_t whylen);
void evict_idle(struct sessions *sm, long long cutoff_ms);

/* runner_client.c */
enum runner_rc runner_call(struct session *s, const struct proto_msg *req, struct proto_msg **rep,
    int timeout_ms, const struct abort_check *ab, char *detail, size_t detlen);
/* The RUN of req's code file; tool_env set: under the tool preamble (sessions.h). */
struct proto_msg *build_run(const struct cfg *c, const struct exec_req *req,
    const char *file, const char *tool_env);
struct proto_msg *build_put(const struct exec_req *req, const char *file);
/* The run's time limit: the request's timeout up to CI_MAX_RUN_TIMEOUT_SECONDS. */
long long run_timeout_ms(const struct cfg *c, const struct exec_req *req);
int result_from_reply(const struct cfg *c, const struct exec_req *req,
    const struct proto_msg *rep, struct exec_result *res);

/* transfer.c */
enum runner_rc list_workspace(const struct cfg *c, struct session *s, struct workspace **out,
    char *detail, size_t detlen);
void capture_outputs(struct sessions *sm, struct session *s, const struct exec_req *req,
    const char *file, const struct workspace *after, struct exec_result *res);
int check_inputs(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    char *why, size_t whylen);
int restore_workspace(struct sessions *sm, struct session *s);
int put_inputs(struct sessions *sm, struct session *s, const struct caller *who,
    const struct exec_req *req, enum runner_rc *rr, char *why, size_t whylen, char *detail,
    size_t detlen);

#endif
