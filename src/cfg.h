/*
 * Configuration: every CI_* environment variable, parsed and validated in one
 * place at startup from one table.  A bad value stops the daemon with a
 * message naming the variable.  After startup the struct is read-only.
 */
#ifndef CIP_CFG_H
#define CIP_CFG_H

#include <stddef.h>

#include "log.h"

/* Accepted ways to authenticate (CI_AUTH), a bit set. */
#define CFG_AUTH_API_KEY 1
#define CFG_AUTH_NONE 2
#define CFG_AUTH_JWT 4

/*
 * Sandbox limits the engine might not enforce (CI_ACCEPT_UNENFORCED_LIMITS),
 * a bit set: the caps of CI_MAX_MEMORY_MB, CI_MAX_PIDS and CI_MAX_CPUS.
 */
#define CFG_LIMIT_MEMORY 1
#define CFG_LIMIT_PIDS 2
#define CFG_LIMIT_CPU 4
#define CFG_LIMIT_ALL (CFG_LIMIT_MEMORY | CFG_LIMIT_PIDS | CFG_LIMIT_CPU)

/* Most modules CI_PYTHON_PRELOAD may name (the runner takes as many). */
#define CFG_PRELOAD_MAX 64

struct cfg {
	int auth;			/* CFG_AUTH_* bits */
	char *api_key;
	char *jwt_public_key;		/* PEM text or a PEM file; "" = none */
	char *host;
	int port;
	char *storage_path;
	char *db_path;			/* derived from storage_path if unset */
	int max_memory_mb;
	int max_run_timeout_s;
	double max_cpus;
	int max_pids;
	int workspace_mb;
	int tmp_mb;
	long max_output_bytes;
	long max_file_bytes;
	int max_files_per_run;
	int max_files_per_session;
	long max_request_bytes;
	int max_connections;
	int max_active_requests;
	int header_timeout_s;
	int body_timeout_s;
	char *sandbox_image;
	char *sandbox_runtime;		/* "" = the engine's default */
	char *python_preload;		/* modules of the pre-loaded Python server; "" = none */
	int python_preload_mb;		/* added to the memory cap when there is a server */
	char *sandbox_label;
	char *image_prefixes;		/* comma list; "" = by label only */
	char *docker_host;
	char *docker_tls_ca;		/* "" = no TLS */
	char *docker_tls_cert;		/* "" = no client certificate */
	char *docker_tls_key;
	int docker_tls;			/* derived: tcp:// with CI_DOCKER_TLS_CA */
	int docker_plain_remote;	/* derived: tcp:// without TLS to a host not on loopback */
	int docker_timeout_s;
	int docker_wait_s;
	int nofile_limit;
	int nproc_limit;
	int accept_unenforced;		/* CFG_LIMIT_* bits the operator accepts unenforced */
	double session_ttl_min;
	int session_ttl_idle;		/* CI_SESSION_TTL_MODE=idle */
	double sweep_interval_s;
	double file_retention_h;
	int close_on_shutdown;
	int pool_size;			/* CI_POOL_SIZE */
	int max_live;			/* CI_MAX_LIVE_CONTAINERS */
	int ptc_wait_s;			/* CI_PTC_CONTINUATION_SECONDS */
	double container_idle_min;	/* CI_CONTAINER_IDLE_MINUTES; 0: never */
	int metrics_auth;		/* CI_METRICS_AUTH */
	int sweep_on_startup;
	enum log_level log_level;
	enum log_format log_format;
};

/* How the table reads a variable: getenv, or a stand-in in unit tests. */
typedef const char *(*cfg_getenv_fn)(const char *name, void *ctx);

/*
 * Parse every variable.  Returns 0 and a new cfg in *out (free with
 * cfg_free), or -1 with a message naming the bad variable in err.
 */
int cfg_load(cfg_getenv_fn get, void *ctx, struct cfg **out, char *err, size_t errlen);
void cfg_free(struct cfg *c);

/* Print the table (name, default, meaning) as a Markdown table. */
void cfg_print_table(void);

#endif
