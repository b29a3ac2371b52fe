/*
 * The HTTP server: libmicrohttpd's epoll loop on two I/O threads reads
 * requests; a complete one is suspended and handed to a worker thread
 * (handlers may block for a whole exec), so a slow or idle client costs a
 * descriptor and a few KB, never a thread.  Also: a route table, path
 * normalisation (`//` folded, every route also under /v1), header and body
 * timeouts, body size caps and the auth gate.  Handlers see an opaque
 * request and answer with exactly one reply.
 */
#ifndef CIP_HTTP_H
#define CIP_HTTP_H

#include <stddef.h>

struct json_object;
struct cfg;
struct jwt_key;
struct http_req;
struct http_server;

typedef void (*http_handler)(struct http_req *req, void *app);
/*
 * Run before every routed handler, once auth and body passed: 0 lets the
 * handler run; non-zero means the filter answered the request itself.
 */
typedef int (*http_filter)(struct http_req *req, void *app);

/* HTTP_AUTH_METRICS: as HTTP_AUTH unless CI_METRICS_AUTH=false. */
enum http_auth { HTTP_PUBLIC = 0, HTTP_AUTH, HTTP_AUTH_METRICS };
/* How the body is read: raw bytes, or multipart/form-data parts. */
enum http_body { HTTP_BODY_RAW = 0, HTTP_BODY_FORM };

struct http_route {
	const char *method;
	const char *pattern;	/* "/exec", "/files/{}/{}": {} matches one segment */
	http_handler handler;
	enum http_auth auth;
	enum http_body body;
};

/*
 * One part of a multipart form.  A file part past the per-file cap keeps no
 * bytes and says too_big; the request goes on, so the handler can answer.
 */
struct http_part {
	char *name;		/* the form field */
	char *filename;		/* NULL for a plain field; as sent, paths kept */
	char *data;		/* NUL-terminated */
	size_t len;
	int too_big;
};

/*
 * Start serving; the route table, app and jwt key (NULL without CI_AUTH=jwt)
 * must outlive the server.  filter may be NULL.
 */
struct http_server *http_start(const struct cfg *cfg, const struct jwt_key *jwt,
    const struct http_route *routes, size_t nroutes, http_filter filter, void *app,
    char *err, size_t errlen);
/* Answer new requests 503 "shutting down" (in-flight requests go on). */
void http_quiesce(struct http_server *srv);
/* Wait up to timeout_ms for the requests being handled to be answered. */
void http_drain(struct http_server *srv, long timeout_ms);
/* Stop: connections still open are closed. */
void http_stop(struct http_server *srv);

/*
 * 1 if the client has closed its connection (LibreChat's Stop aborts the
 * fetch): asked while a long handler runs.  Never reads request bytes.
 */
int http_req_client_gone(struct http_req *req);
/* The user a verified JWT names (its sub), or NULL. */
const char *http_req_jwt_user(const struct http_req *req);
/* The i-th {} segment of the matched pattern, or NULL. */
const char *http_req_param(const struct http_req *req, size_t i);
const char *http_req_header(const struct http_req *req, const char *name);
const char *http_req_query(const struct http_req *req, const char *name);
const char *http_req_body(const struct http_req *req, size_t *len);
/* The parts of an HTTP_BODY_FORM request, in order; borrowed. */
size_t http_req_nparts(const struct http_req *req);
const struct http_part *http_req_part(const struct http_req *req, size_t i);
/* The first plain field named name, or NULL. */
const char *http_req_field(const struct http_req *req, const char *name);

/* Reply with a JSON body; takes ownership of obj. */
void http_reply_json(struct http_req *req, int status, struct json_object *obj);
/* Reply {"error": error[, "details": details]}. */
void http_reply_error(struct http_req *req, int status, const char *error, const char *details);
/* Reply with a copy of len bytes of body. */
void http_reply_bytes(struct http_req *req, int status, const void *body, size_t len,
    const char *ctype);
/* Reply with size bytes read from fd, which the server closes when done. */
void http_reply_fd(struct http_req *req, int status, int fd, long long size, const char *ctype);
/* Add a header to the coming reply. */
void http_add_header(struct http_req *req, const char *name, const char *value);

/* Exposed for the tests: fold "//", drop a trailing "/" and a leading "/v1". */
void http_normalize_path(const char *in, char *out, size_t cap);
/* Match path against pattern; fills up to maxp params (pointers into scratch). */
int http_match(const char *pattern, const char *path, char *scratch, size_t scratchlen,
    const char **params, size_t maxp, size_t *nparams);

#endif
