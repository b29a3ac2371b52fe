/*
 * Programmatic tool calling (librechat-api.md 3.3): the model's Python or
 * bash calls LibreChat's tools, which the client runs.  A run is an /exec
 * on a worker thread whose program stays alive and blocked while the
 * client runs the tools it asked for: each round of calls ends the HTTP
 * request that started it ("tool_call_required", a continuation token),
 * and the next request's results resume the same process.  Nothing is
 * replayed, so side effects happen once.  Tokens are unguessable, single
 * use, bound to the caller, and expire with CI_PTC_CONTINUATION_SECONDS.
 */
#ifndef CIP_PTC_H
#define CIP_PTC_H

#include <stddef.h>

#include "abort.h"
#include "cfg.h"
#include "exec_req.h"
#include "ptc_parse.h"
#include "../sessions/sessions.h"

/* A token: two ids (about 250 random bits). */
#define PTC_TOKEN_LEN (2 * ID_LEN)
/* The most rounds of tool calls one run may ask for (the client's own limit). */
#define PTC_MAX_ROUNDS 20

struct ptc;
struct json_object;

enum ptc_state { PTC_TOOL_CALLS = 1, PTC_DONE };

/* Where a request left its run, for the route to answer. */
struct ptc_reply {
	enum ptc_state state;
	const struct lang *lang;	/* the run's: py or bash */
	char session_id[ID_LEN + 1];
	/* PTC_TOOL_CALLS */
	char token[PTC_TOKEN_LEN + 1];
	struct json_object *tool_calls;	/* [{id, name, input}], the caller's */
	/* PTC_DONE */
	int rc;				/* sessions_exec's */
	char why[512];			/* with rc != SESS_OK */
	char error[256];		/* a failure of the calling itself, or "" */
	struct exec_result res;		/* with rc == SESS_OK; the caller's */
};
void ptc_reply_free(struct ptc_reply *r);

/* cfg and sm are borrowed. */
struct ptc *ptc_new(const struct cfg *cfg, struct sessions *sm);
/* Stop every run (their programs are cancelled) and wait for the workers. */
void ptc_free(struct ptc *p);

/*
 * Start req (now the run's) for who with tools, a JSON array of tool
 * definitions (borrowed; empty: a plain run), and wait for its first
 * round of calls or its end.  gone: the client went away (the run is then
 * cancelled).  0 with out filled, or -EINVAL with err (a 400).
 */
int ptc_start(struct ptc *p, const struct caller *who, struct exec_req *req,
    struct json_object *tools, const char *request_id, const struct abort_check *gone,
    struct ptc_reply *out, char *err, size_t errlen);
/*
 * The results of the round token stands for (tool_results, borrowed):
 * resume the run and wait as ptc_start does.  0; -ENOENT for no such
 * live token (a 404), -EINVAL with err (a 400).
 */
int ptc_continue(struct ptc *p, const struct caller *who, const char *token,
    struct json_object *results, const char *request_id, const struct abort_check *gone,
    struct ptc_reply *out, char *err, size_t errlen);
/*
 * Cancel the run a request id was sent with: 0 (cancellation requested),
 * 1 (it had already completed), -ENOENT, or -EACCES (another caller's).
 */
int ptc_cancel(struct ptc *p, const struct caller *who, const char *request_id);

#endif
