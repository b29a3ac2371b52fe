/* The API's routes: handlers that parse, call sessions/, and shape replies. */
#ifndef CIP_ROUTES_H
#define CIP_ROUTES_H

#include <stddef.h>

#include "http.h"
#include "metrics.h"

struct blobs;
struct cfg;
struct db;
struct metrics;
struct sessions;

/* What every handler gets as its app pointer. */
struct app {
	const struct cfg *cfg;
	struct sessions *sessions;
	struct db *db;		/* file metadata, for the file routes */
	struct blobs *blobs;	/* file contents */
	struct metrics *metrics;
	struct ptc *ptc;	/* programmatic tool calling runs */
};

extern const struct http_route routes[];
/*
 * Before every route: the execution profile LibreChat expects (default or
 * stateful; any other is refused as the contract says), and attached
 * workspaces, which we do not serve.
 */
int route_filter(struct http_req *req, void *app);
extern const size_t nroutes;

/* routes.c */
/* The JSON reply of a finished run: /exec's, and a completed PTC run's. */
struct exec_result;
struct json_object *exec_reply(const struct exec_result *r, int stateful);
/* How a finished run counts in cip_execs_total. */
enum metrics_outcome exec_outcome(int rc, const struct exec_result *r);
struct json_object *iso_time(long long ms);
/* The user a request acts for: JWT sub, User-Id, then body_user, then "local". */
const char *request_user(const struct http_req *req, const char *body_user);
/* The same as a struct caller (sessions.h): NULL user when it names no one. */
struct caller;
void request_caller(const struct http_req *req, const char *body_user, struct caller *who);
/*
 * Whose data a request may see: a verified JWT's sub, the User-Id header, or
 * LibreChat's ?kind=user&id=; NULL when the request names nobody (the
 * operator with the key sees everything).
 */
const char *request_identity(const struct http_req *req);
/* The same as a struct caller (sessions.h), for caller_may_use. */
void request_reader(const struct http_req *req, struct caller *who);

/* routes_ptc.c: programmatic tool calling */
void handle_programmatic(struct http_req *req, void *app);
void handle_programmatic_cancel(struct http_req *req, void *app);

/* routes_files.c: upload, download, listings */
void handle_upload(struct http_req *req, void *app);
void handle_upload_batch(struct http_req *req, void *app);
void handle_download(struct http_req *req, void *app);
void handle_download_by_id(struct http_req *req, void *app);
void handle_list_files(struct http_req *req, void *app);
void handle_list_session_files(struct http_req *req, void *app);
void handle_object(struct http_req *req, void *app);
void handle_delete_file(struct http_req *req, void *app);
void handle_delete_by_id(struct http_req *req, void *app);

#endif
