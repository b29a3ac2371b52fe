#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "workers.h"

#define MAX_PARAMS 4
#define MAX_PATH 2048
#define MAX_HEADERS 8
/* I/O threads: parsing is cheap; two keep one busy callback from stalling all. */
#define IO_THREADS 2
/* Descriptors kept for everything but client connections: workers' engine
 * calls, blobs, SQLite, runner channels. */
#define FD_RESERVE 1024
/*
 * Connections MHD accepts past the cap, to answer them 503 and close: at
 * its own limit MHD stops accepting, and a flood would wait in the kernel's
 * backlog instead of being told.
 */
#define REFUSAL_SLACK 1024

struct http_server {
	struct MHD_Daemon *d;
	const struct cfg *cfg;
	const struct jwt_key *jwt;
	const struct http_route *routes;
	size_t nroutes;
	http_filter filter;
	void *app;
	struct sockaddr_storage addr;
	struct workers *workers;	/* run the handlers */
	pthread_mutex_t mu;
	int handling;		/* requests handed to workers and not yet answered, under mu */
	unsigned cap;		/* CI_MAX_CONNECTIONS, or lower to fit the descriptor limit */
	unsigned open;		/* connections open now, under mu */
	unsigned refused;	/* connections refused at the cap since the last log line, under mu */
	long long refused_logged_ms;	/* when that line was last written, under mu */
	int draining;		/* shutting down: new requests get a 503; atomic */
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const struct http_route *route;
	const char *method;
	char path[MAX_PATH];
	char scratch[MAX_PATH];
	const char *params[MAX_PARAMS];
	size_t nparams;
	struct buf body;
	int too_big;
	int replied;
	int unauthorized;	/* answered 401 once the body is drained */
	int dispatched;		/* handed to a worker: the worker answers */
	const char *deny_why;	/* why, for the log; never a credential */
	char jwt_user[256];	/* sub of a verified token, or "" */
	struct MHD_PostProcessor *pp;	/* HTTP_BODY_FORM */
	struct http_part *parts;
	size_t nparts, form_bytes;
	int form_bad;		/* the multipart body could not be parsed */
	char *hdr_name[MAX_HEADERS], *hdr_value[MAX_HEADERS];
	size_t nhdr;
};

void
http_normalize_path(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (; *in && *in != '?' && o + 1 < cap; in++) {
		if (*in == '/' && o > 0 && out[o - 1] == '/')
			continue;
		out[o++] = *in;
	}
	if (o == 0 || out[0] != '/') {
		memmove(out + 1, out, o < cap - 1 ? o : cap - 2);
		out[0] = '/';
		o = o < cap - 1 ? o + 1 : cap - 1;
	}
	if (o > 1 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
	/* Every route lives at the root and under /v1. */
	if (strncmp(out, "/v1", 3) == 0 && (out[3] == '/' || out[3] == '\0')) {
		memmove(out, out + 3, strlen(out + 3) + 1);
		if (out[0] == '\0')
			strcpy(out, "/");
	}
}

int
http_match(const char *pattern, const char *path, char *scratch, size_t scratchlen,
    const char **params, size_t maxp, size_t *nparams)
{
	const char *p = pattern, *q = path;
	size_t n = 0, o = 0, seg;

	*nparams = 0;
	while (*p && *q) {
		if (p[0] == '{' && p[1] == '}') {
			seg = strcspn(q, "/");
			if (seg == 0 || n == maxp || o + seg + 1 > scratchlen)
				return 0;
			memcpy(scratch + o, q, seg);
			scratch[o + seg] = '\0';
			params[n++] = scratch + o;
			o += seg + 1;
			p += 2;
			q += seg;
			continue;
		}
		if (*p++ != *q++)
			return 0;
	}
	if (*p || *q)
		return 0;
	*nparams = n;
	return 1;
}

const char *
http_req_jwt_user(const struct http_req *req)
{
	return req->jwt_user[0] ? req->jwt_user : NULL;
}

/*
 * The auth gate.  A credential of a kind CI_AUTH lists must be good: a
 * bad Bearer token (jwt) or a wrong key (api-key) is refused even where
 * CI_AUTH also has none.  CI_AUTH=none alone ignores credentials, so an
 * old LibreChat still sending its key keeps working.
 */
static int
authorized(struct http_req *req)
{
	const struct cfg *cfg = req->srv->cfg;
	const char *authz = http_req_header(req, "Authorization");
	const char *key = http_req_header(req, "X-API-Key");
	char why[128];

	if (authz && strncasecmp(authz, "Bearer ", 7) == 0 && req->srv->jwt) {
		if (jwt_verify(req->srv->jwt, authz + 7, clock_wall_ms() / 1000, req->jwt_user,
		    sizeof(req->jwt_user), why, sizeof(why)) == 0)
			return 1;
		log_info("auth: bearer token refused: %s", why);
		req->deny_why = "bearer token refused";
		return 0;
	}
	req->deny_why = "wrong API key";
	if (key && (cfg->auth & CFG_AUTH_API_KEY))
		return auth_check_api_key(cfg, key) == 0;
	/* Without JWTs, a Bearer credential is the key: what Prometheus can send. */
	if (authz && strncasecmp(authz, "Bearer ", 7) == 0 && (cfg->auth & CFG_AUTH_API_KEY))
		return auth_check_api_key(cfg, authz + 7) == 0;
	req->deny_why = key || authz ? "credentials of a kind CI_AUTH does not accept" :
	    "no credentials (CI_AUTH does not include none)";
	return (cfg->auth & CFG_AUTH_NONE) != 0;
}

static int
needs_auth(const struct http_req *req)
{
	if (req->route->auth == HTTP_AUTH_METRICS)
		return req->srv->cfg->metrics_auth;
	return req->route->auth == HTTP_AUTH;
}

const char *
http_req_param(const struct http_req *req, size_t i)
{
	return i < req->nparams ? req->params[i] : NULL;
}

const char *
http_req_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_req_query(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_req_body(const struct http_req *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.data ? req->body.data : "";
}

size_t
http_req_nparts(const struct http_req *req)
{
	return req->nparts;
}

const struct http_part *
http_req_part(const struct http_req *req, size_t i)
{
	return i < req->nparts ? &req->parts[i] : NULL;
}

const char *
http_req_field(const struct http_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nparts; i++)
		if (!req->parts[i].filename && strcmp(req->parts[i].name, name) == 0)
			return req->parts[i].data;
	return NULL;
}

static struct http_part *
new_part(struct http_req *req, const char *key, const char *filename)
{
	struct http_part *grown, *p;

	if (!(grown = realloc(req->parts, (req->nparts + 1) * sizeof(*grown))))
		return NULL;
	req->parts = grown;
	p = &req->parts[req->nparts];
	memset(p, 0, sizeof(*p));
	if (!(p->name = strdup(key ? key : "")) || (filename && !(p->filename = strdup(filename))) ||
	    !(p->data = calloc(1, 1))) {
		free(p->name);
		free(p->filename);
		return NULL;
	}
	req->nparts++;
	return p;
}

/*
 * MHD's post processor hands us each part in pieces (off = 0 starts one).
 * A file past the per-file cap is dropped but marked; the whole form past
 * the request cap stops the parse (413).
 */
static enum MHD_Result
form_iterator(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
    const char *content_type, const char *transfer_encoding, const char *data,
    uint64_t off, size_t size)
{
	struct http_req *req = cls;
	const struct cfg *cfg = req->srv->cfg;
	struct http_part *p;
	size_t cap = filename ? (size_t)cfg->max_file_bytes : 65536;
	char *grown;

	p = req->nparts ? &req->parts[req->nparts - 1] : NULL;
	/* A part starts at off 0; an empty first call of the same part is merged. */
	if (!p || (off == 0 && (p->len || p->too_big || strcmp(p->name, key ? key : "") != 0 ||
	    !p->filename != !filename || (filename && strcmp(p->filename, filename) != 0)))) {
		if (!(p = new_part(req, key, filename)))
			return MHD_NO;
	}
	req->form_bytes += size;
	if (req->form_bytes > (size_t)cfg->max_request_bytes) {
		req->too_big = 1;
		return MHD_NO;
	}
	if (p->too_big || !size)
		return MHD_YES;
	if (p->len + size > cap) {
		p->too_big = 1;
		free(p->data);
		p->data = calloc(1, 1);
		p->len = 0;
		return p->data ? MHD_YES : MHD_NO;
	}
	if (!(grown = realloc(p->data, p->len + size + 1)))
		return MHD_NO;
	p->data = grown;
	memcpy(p->data + p->len, data, size);
	p->len += size;
	p->data[p->len] = '\0';
	return MHD_YES;
}

void
http_add_header(struct http_req *req, const char *name, const char *value)
{
	if (req->nhdr == MAX_HEADERS)
		return;
	req->hdr_name[req->nhdr] = strdup(name);
	req->hdr_value[req->nhdr] = strdup(value);
	req->nhdr++;
}

static void
queue_response(struct http_req *req, int status, struct MHD_Response *r, const char *ctype)
{
	size_t i;

	if (!r)
		return;
	MHD_add_response_header(r, "Content-Type", ctype);
	/*
	 * One request per connection.  LibreChat (Node 20) pools sockets in one
	 * agent for axios and node-fetch; axios's 5 s timeout on a freshness
	 * check stays on the pooled socket, and a following /exec that runs
	 * over 5 s on it dies with "socket hang up".  LibreChat also calls
	 * /exec itself with axios (readSandboxFile, 15 s), so no route is safe
	 * to keep.  A closed socket is never reused; a new loopback or LAN
	 * connection costs well under 1 ms.
	 */
	MHD_add_response_header(r, "Connection", "close");
	for (i = 0; i < req->nhdr; i++)
		if (req->hdr_name[i] && req->hdr_value[i])
			MHD_add_response_header(r, req->hdr_name[i], req->hdr_value[i]);
	MHD_queue_response(req->conn, (unsigned)status, r);
	MHD_destroy_response(r);
}

static void
queue(struct http_req *req, int status, const char *body, size_t len, const char *ctype)
{
	if (req->replied)
		return;
	req->replied = 1;
	queue_response(req, status, MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY), ctype);
}

void
http_reply_bytes(struct http_req *req, int status, const void *body, size_t len,
    const char *ctype)
{
	queue(req, status, body, len, ctype);
}

int
http_req_client_gone(struct http_req *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd pf;
	char c;

	if (!ci)
		return 0;
	pf.fd = ci->connect_fd;
	pf.events = POLLIN | POLLRDHUP;
	if (poll(&pf, 1, 0) <= 0)
		return 0;
	if (pf.revents & (POLLRDHUP | POLLHUP | POLLERR))
		return 1;
	/* Readable: the next request of a keep-alive client, or the EOF of one gone. */
	return recv(pf.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void
http_reply_fd(struct http_req *req, int status, int fd, long long size, const char *ctype)
{
	struct MHD_Response *r;

	if (req->replied) {
		close(fd);
		return;
	}
	req->replied = 1;
	/* MHD owns fd from here, and may sendfile(2) it. */
	if (!(r = MHD_create_response_from_fd64((uint64_t)size, fd))) {
		close(fd);
		req->replied = 0;
		http_reply_error(req, 500, "Internal error", "cannot stream the file");
		return;
	}
	queue_response(req, status, r, ctype);
}

void
http_reply_json(struct http_req *req, int status, struct json_object *obj)
{
	size_t len = 0;
	const char *s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	if (s)
		queue(req, status, s, len, "application/json");
	else
		queue(req, 500, "{\"error\":\"out of memory\"}", 25, "application/json");
	json_object_put(obj);
}

void
http_reply_error(struct http_req *req, int status, const char *error, const char *details)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(error));
	if (details)
		json_object_object_add(o, "details", json_object_new_string(details));
	http_reply_json(req, status, o);
}

/* Find the route for the request; 404 or 405 is answered here. */
static int
route_request(struct http_req *req, const char *url)
{
	const struct http_server *srv = req->srv;
	int path_known = 0;
	size_t i;

	http_normalize_path(url, req->path, sizeof(req->path));
	for (i = 0; i < srv->nroutes; i++) {
		if (!http_match(srv->routes[i].pattern, req->path, req->scratch,
		    sizeof(req->scratch), req->params, MAX_PARAMS, &req->nparams))
			continue;
		path_known = 1;
		if (strcmp(srv->routes[i].method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 && strcmp(srv->routes[i].method, "GET") == 0)) {
			req->route = &srv->routes[i];
			return 0;
		}
	}
	if (path_known)
		http_reply_error(req, 405, "Method not allowed", NULL);
	else
		http_reply_error(req, 404, "Not found", NULL);
	return -1;
}

/* Checks made before any body byte is read: route, auth, declared size. */
static void
first_call(struct http_req *req, const char *url)
{
	const struct cfg *cfg = req->srv->cfg;
	const char *cl;
	char details[96];

	/* The header is in: from here the body's (and the reply's) progress counts. */
	MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    (unsigned)cfg->body_timeout_s);
	if (__atomic_load_n(&req->srv->draining, __ATOMIC_RELAXED)) {
		http_reply_error(req, 503, "Service unavailable", "shutting down");
		return;
	}
	if (route_request(req, url) < 0)
		return;
	/*
	 * A refused client still gets to send its body (we discard it): answering
	 * mid-upload closes the connection under a client still writing, and it
	 * would see a broken pipe instead of the 401.
	 */
	if (needs_auth(req) && !authorized(req))
		req->unauthorized = 1;
	cl = http_req_header(req, "Content-Length");
	if (cl && strtoull(cl, NULL, 10) > (unsigned long long)cfg->max_request_bytes) {
		snprintf(details, sizeof(details), "the limit is %ld bytes", cfg->max_request_bytes);
		http_reply_error(req, 413, req->route->body == HTTP_BODY_FORM ?
		    "File size limit exceeded" : "Request body too large", details);
		return;
	}
	if (req->route->body == HTTP_BODY_FORM && !req->unauthorized) {
		const char *ct = http_req_header(req, "Content-Type");
		if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
		    !(req->pp = MHD_create_post_processor(req->conn, 65536, form_iterator, req)))
			http_reply_error(req, 400, "Invalid content type. Must be multipart/form-data.",
			    NULL);
	}
}

/*
 * A worker runs the handler while MHD keeps the connection suspended (it
 * neither reads it nor times it out).  The reply is queued on the suspended
 * connection, which MHD allows from any thread; resuming hands it back to
 * the I/O threads, and req belongs to them again from that call on.
 */
static void
run_handler(void *arg)
{
	struct http_req *req = arg;
	struct http_server *srv = req->srv;

	if (!srv->filter || srv->filter(req, srv->app) == 0)
		req->route->handler(req, srv->app);
	if (!req->replied)
		http_reply_error(req, 500, "Internal error", "the handler gave no answer");
	pthread_mutex_lock(&srv->mu);
	srv->handling--;
	pthread_mutex_unlock(&srv->mu);
	MHD_resume_connection(req->conn);
}

/* Hand a complete, admitted request to a worker; a 503 if none can take it. */
static void
dispatch(struct http_req *req)
{
	struct http_server *srv = req->srv;

	req->dispatched = 1;
	pthread_mutex_lock(&srv->mu);
	srv->handling++;
	pthread_mutex_unlock(&srv->mu);
	MHD_suspend_connection(req->conn);
	if (workers_submit(srv->workers, run_handler, req) == 0)
		return;
	pthread_mutex_lock(&srv->mu);
	srv->handling--;
	pthread_mutex_unlock(&srv->mu);
	log_error("http: no worker can take %s %s (out of memory or threads)", req->method,
	    req->path);
	http_reply_error(req, 503, "Service unavailable", "the server is out of threads or memory");
	MHD_resume_connection(req->conn);
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;
	char details[96];

	if (!req) {
		if (!(req = calloc(1, sizeof(*req))))
			return MHD_NO;
		req->srv = srv;
		req->conn = conn;
		req->method = method;
		buf_init(&req->body, (size_t)srv->cfg->max_request_bytes);
		*con_cls = req;
		first_call(req, url);
		return MHD_YES;
	}
	if (*upload_size) {
		/* Drop the body of a request already answered, refused, or too big. */
		if (req->replied || req->too_big || req->unauthorized || req->form_bad) {
			/* drained */
		} else if (req->pp) {
			if (MHD_post_process(req->pp, upload_data, *upload_size) != MHD_YES &&
			    !req->too_big)
				req->form_bad = 1;
		} else {
			if (buf_add(&req->body, upload_data, *upload_size) < 0)
				return MHD_NO;
			req->too_big = buf_truncated(&req->body);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->replied || req->dispatched)
		return MHD_YES;
	if (req->unauthorized) {
		log_warn("401 %s %s: %s", req->method, req->path, req->deny_why);
		http_reply_error(req, 401, "Unauthorized", "missing or invalid credentials "
		    "(X-API-Key or Bearer token)");
		return MHD_YES;
	}
	if (req->too_big) {
		snprintf(details, sizeof(details), "the limit is %ld bytes", srv->cfg->max_request_bytes);
		http_reply_error(req, 413, req->pp ? "File size limit exceeded" :
		    "Request body too large", details);
		return MHD_YES;
	}
	if (req->form_bad) {
		http_reply_error(req, 400, "Malformed multipart/form-data body", NULL);
		return MHD_YES;
	}
	dispatch(req);
	return MHD_YES;
}

static void
request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_req *req = *con_cls;
	size_t i;

	if (!req)
		return;
	buf_free(&req->body);
	if (req->pp)
		MHD_destroy_post_processor(req->pp);
	for (i = 0; i < req->nparts; i++) {
		free(req->parts[i].name);
		free(req->parts[i].filename);
		free(req->parts[i].data);
	}
	free(req->parts);
	for (i = 0; i < req->nhdr; i++) {
		free(req->hdr_name[i]);
		free(req->hdr_value[i]);
	}
	free(req);
	*con_cls = NULL;
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("http: %s", msg);
}

/* One log line per 10 s with a count: a flood must not flood the log. */
static void
log_refusal(struct http_server *srv)
{
	long long now = clock_mono_ms();
	unsigned n;

	pthread_mutex_lock(&srv->mu);
	n = ++srv->refused;
	if (srv->refused_logged_ms && now - srv->refused_logged_ms < 10000) {
		pthread_mutex_unlock(&srv->mu);
		return;
	}
	srv->refused_logged_ms = now;
	srv->refused = 0;
	pthread_mutex_unlock(&srv->mu);
	log_warn("http: %u connection(s) refused with 503: CI_MAX_CONNECTIONS=%u are open", n,
	    srv->cap);
}

/*
 * A connection past the cap gets a 503 at once and is shut down; MHD then
 * reads its end and closes it.  The reply is small enough for any socket
 * buffer, so the one non-blocking send writes it whole or the client is
 * already gone.
 */
static void
refuse_connection(struct http_server *srv, struct MHD_Connection *conn)
{
	static const char reply[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n"
	    "Content-Length: 64\r\n\r\n"
	    "{\"error\":\"Service unavailable\",\"details\":\"too many connections\"}";
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	log_refusal(srv);
	if (!ci)
		return;
	if (send(ci->connect_fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("http: refusing a connection: %s", strerror(errno));
	shutdown(ci->connect_fd, SHUT_RDWR);
}

static void
notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct http_server *srv = cls;
	int over;

	pthread_mutex_lock(&srv->mu);
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		over = ++srv->open > srv->cap;
	else
		over = 0, srv->open--;
	pthread_mutex_unlock(&srv->mu);
	if (over)
		refuse_connection(srv, conn);
}

static int
resolve_listen(struct http_server *srv, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
	    .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%d", srv->cfg->port);
	rc = getaddrinfo(srv->cfg->host, port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "CI_HOST=\"%s\" is not a numeric IPv4 or IPv6 address",
		    srv->cfg->host);
		return -1;
	}
	memcpy(&srv->addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

/*
 * Fit the cap to the descriptor limit: raise the soft limit toward the hard
 * one, keep FD_RESERVE for everything else, and say so when
 * CI_MAX_CONNECTIONS had to come down.  Returns MHD's own limit: the cap
 * plus the slack that lets refusals be answered.
 */
static unsigned
fit_connection_cap(struct http_server *srv)
{
	const struct cfg *cfg = srv->cfg;
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + REFUSAL_SLACK + FD_RESERVE, avail;

	srv->cap = (unsigned)cfg->max_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return srv->cap + REFUSAL_SLACK;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= want)
		return srv->cap + REFUSAL_SLACK;
	avail = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
	srv->cap = (unsigned)(avail - avail / 5);
	log_warn("http: CI_MAX_CONNECTIONS=%d lowered to %u: the descriptor limit is %lu "
	    "(raise it: LimitNOFILE=, docker run --ulimit nofile=)", cfg->max_connections,
	    srv->cap, (unsigned long)rl.rlim_cur);
	return (unsigned)avail;
}

static void
server_free(struct http_server *srv)
{
	workers_free(srv->workers);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

struct http_server *
http_start(const struct cfg *cfg, const struct jwt_key *jwt, const struct http_route *routes,
    size_t nroutes, http_filter filter, void *app, char *err, size_t errlen)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | MHD_USE_ITC;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&srv->mu, NULL);
	srv->cfg = cfg;
	srv->jwt = jwt;
	srv->routes = routes;
	srv->nroutes = nroutes;
	srv->app = app;
	srv->filter = filter;
	if (!(srv->workers = workers_new((size_t)cfg->max_active_requests))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (resolve_listen(srv, err, errlen) < 0)
		goto fail;
	if (srv->addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/*
	 * The logger goes first, or MHD logs the options before it by itself.
	 * The daemon-wide timeout is the header's; first_call() sets the body's.
	 */
	srv->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, access_handler, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&srv->addr,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)IO_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, fit_connection_cap(srv),
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, srv,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->header_timeout_s,
	    MHD_OPTION_NOTIFY_COMPLETED, request_done, srv,
	    MHD_OPTION_END);
	if (!srv->d) {
		snprintf(err, errlen, "cannot listen on %s port %d (in use, or not permitted)",
		    cfg->host, cfg->port);
		goto fail;
	}
	return srv;
fail:
	server_free(srv);
	return NULL;
}

/*
 * Not MHD_quiesce_daemon: with a thread pool on epoll it takes the listen
 * socket out of each thread's epoll set without a lock, racing a thread
 * that does the same at its connection limit, and MHD aborts the process
 * ("Failed to remove listen FD from epoll set", seen once at SIGTERM).
 * Connections are still accepted while in-flight requests finish, and a
 * new request gets a 503 that says why, better than a refused connection.
 */
void
http_quiesce(struct http_server *srv)
{
	__atomic_store_n(&srv->draining, 1, __ATOMIC_RELAXED);
}

void
http_drain(struct http_server *srv, long timeout_ms)
{
	long waited = 0;
	int busy;

	for (;;) {
		pthread_mutex_lock(&srv->mu);
		busy = srv->handling;
		pthread_mutex_unlock(&srv->mu);
		if (!busy || waited >= timeout_ms)
			break;
		usleep(50000);
		waited += 50;
	}
	/* A reply just queued still has to be written out. */
	usleep(200000);
	if (busy)
		log_warn("shutdown: %d request(s) still running after %ld ms", busy, waited);
}

void
http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	/*
	 * Workers first: each resumes its connection before it ends, and MHD
	 * must not be stopped with a connection still suspended under a worker.
	 */
	workers_free(srv->workers);
	srv->workers = NULL;
	MHD_stop_daemon(srv->d);
	server_free(srv);
}
