/*
 * code-interpreter-proxy: LibreChat's code interpreter on your own Docker
 * engine.  main reads the configuration, checks the engine and the image,
 * opens the database, serves HTTP until SIGTERM or SIGINT, then stops.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "docker.h"
#include "docker_json.h"
#include "engine_limits.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "ptc.h"
#include "routes.h"
#include "../sessions/sessions.h"
#include "../storage/blobs.h"
#include "../storage/db.h"

static const char *
env_get(const char *name, void *ctx)
{
	return getenv(name);
}

static void
usage(void)
{
	printf("usage: code-interpreter-proxy [--help | --version | --config-table | --healthcheck]\n\n"
	    "LibreChat's code interpreter (LIBRECHAT_CODE_BASEURL) on a Docker engine.\n"
	    "With no argument, serve until SIGTERM.  --healthcheck asks the running proxy\n"
	    "(at CI_HOST:CI_PORT) for GET /health and exits 0 if it answers 200.\n"
	    "Configured by CI_* environment variables:\n\n");
	cfg_print_table();
}

/*
 * Refuse an engine that would silently drop a sandbox cap, unless the
 * operator accepted that cap (CI_ACCEPT_UNENFORCED_LIMITS).  Every cap is
 * always asked for: CI_MAX_MEMORY_MB, CI_MAX_PIDS and CI_MAX_CPUS have no
 * "off" value.
 */
static int
check_limits(struct docker *dk, const struct cfg *cfg)
{
	struct docker_err err = { 0, "" };
	struct docker_info info;
	char msg[1200];
	int read;

	read = docker_info(dk, &info, &err) == DOCKER_OK;
	switch (engine_limits_verdict(read ? &info : NULL, err.msg, CFG_LIMIT_ALL,
	    cfg->accept_unenforced, msg, sizeof(msg))) {
	case ENGINE_LIMITS_OK:
		return 0;
	case ENGINE_LIMITS_ACCEPTED:
		log_warn("%s", msg);
		return 0;
	case ENGINE_LIMITS_REFUSED:
		break;
	}
	log_error("%s", msg);
	return -1;
}

/* Wait for the engine to answer, up to the configured window. */
static int
wait_for_engine(struct docker *dk, const struct cfg *cfg)
{
	struct docker_err err = { 0, "" };
	int waited = 0, rc;

	if (cfg->docker_plain_remote)
		log_warn("CI_DOCKER_HOST=%s: the engine is reached unencrypted and anyone who "
		    "reaches its port controls it; set CI_DOCKER_TLS_CA, CI_DOCKER_TLS_CERT and "
		    "CI_DOCKER_TLS_KEY (README: \"A remote engine over TLS\")", cfg->docker_host);
	while ((rc = docker_negotiate(dk, &err)) != DOCKER_OK) {
		/* Certificates do not mend by waiting. */
		if (rc == DOCKER_ETLS) {
			log_error("docker engine at %s refuses our TLS connection: %s",
			    cfg->docker_host, err.msg);
			return -1;
		}
		if (waited >= cfg->docker_wait_s) {
			log_error("docker engine at %s does not answer after %d s: %s",
			    cfg->docker_host, waited, err.msg);
			return -1;
		}
		if (waited == 0)
			log_warn("waiting for the docker engine at %s: %s", cfg->docker_host, err.msg);
		sleep(1);
		waited++;
	}
	log_info("docker engine at %s, API %s%s%s", cfg->docker_host, docker_api_version(dk),
	    docker_is_podman(dk) ? " (podman)" : "", cfg->docker_tls ? ", over TLS" : "");
	if (check_limits(dk, cfg) < 0)
		return -1;
	if (docker_image_exists(dk, cfg->sandbox_image, &err) != DOCKER_OK) {
		log_error("sandbox image %s is missing (%s); build it with: "
		    "make sandbox-image (or docker/build-sandbox-image.sh)", cfg->sandbox_image,
		    err.msg);
		return -1;
	}
	return 0;
}

/* mkdir -p: the storage path's parents may not exist yet (/data on a new host). */
static int
make_dirs(const char *path, mode_t mode)
{
	char tmp[4096], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int
prepare_storage(const struct cfg *cfg)
{
	if (make_dirs(cfg->storage_path, 0750) < 0) {
		log_error("cannot create CI_FILE_STORAGE_PATH %s: %s", cfg->storage_path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static size_t
discard(char *p, size_t size, size_t n, void *ctx)
{
	return size * n;
}

/*
 * --healthcheck, for a container's HEALTHCHECK: the image needs no curl.
 * A wildcard listen address is reached on loopback.
 */
static int
healthcheck(const struct cfg *cfg)
{
	const char *host = cfg->host;
	char url[600];
	long status = 0;
	CURLcode cc;
	CURL *h;

	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "") == 0)
		host = "127.0.0.1";
	if (strcmp(host, "::") == 0)
		host = "::1";
	snprintf(url, sizeof(url), strchr(host, ':') ? "http://[%s]:%d/health" :
	    "http://%s:%d/health", host, cfg->port);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(h = curl_easy_init()))
		return 1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	if (cc != CURLE_OK) {
		printf("%s: %s\n", url, curl_easy_strerror(cc));
		return 1;
	}
	printf("%s: %ld\n", url, status);
	return status == 200 ? 0 : 1;
}

static int
serve(const struct cfg *cfg, const struct jwt_key *jwt, struct docker *dk, struct db *db,
    struct blobs *blobs)
{
	struct app app = { cfg, NULL, db, blobs, NULL, NULL };
	struct http_server *srv;
	sigset_t set;
	char err[256];
	int sig = 0;

	if (!(app.metrics = metrics_new()))
		return -1;
	if (!(app.sessions = sessions_new(cfg, dk, db, blobs, app.metrics))) {
		metrics_free(app.metrics);
		return -1;
	}
	if (!(app.ptc = ptc_new(cfg, app.sessions))) {
		sessions_free(app.sessions);
		metrics_free(app.metrics);
		return -1;
	}
	/* Signals go to this thread only: every thread started from here blocks them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!(srv = http_start(cfg, jwt, routes, nroutes, route_filter, &app, err, sizeof(err)))) {
		log_error("%s", err);
		ptc_free(app.ptc);
		sessions_free(app.sessions);
		metrics_free(app.metrics);
		return -1;
	}
	if (cfg->sweep_on_startup) {
		sessions_reconcile(app.sessions);
		sessions_sweep(app.sessions);
	}
	if (sessions_start_pool(app.sessions) < 0)
		log_warn("no warm pool: every new session creates its container");
	if (sessions_start_sweeper(app.sessions) < 0)
		log_warn("no sweeper thread: expired sessions stay until restart");
	log_info("listening on %s:%d", cfg->host, cfg->port);
	sigwait(&set, &sig);
	log_info("%s: new requests get a 503; finishing in-flight requests",
	    sig == SIGTERM ? "SIGTERM" : "SIGINT");
	http_quiesce(srv);
	/* In-flight runs finish, bounded by the run timeout and some grace. */
	http_drain(srv, (long)cfg->max_run_timeout_s * 1000 + 20000);
	http_stop(srv);
	/* Programs waiting for tool results are stopped; their workers end. */
	ptc_free(app.ptc);
	sessions_stop_sweeper(app.sessions);
	sessions_stop_pool(app.sessions);
	if (cfg->close_on_shutdown) {
		log_info("removing the sandbox containers (CI_CLOSE_SESSIONS_ON_SHUTDOWN=true)");
		sessions_close_all(app.sessions);
	}
	sessions_free(app.sessions);
	metrics_free(app.metrics);
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	struct cfg *cfg = NULL;
	struct docker *dk = NULL;
	struct db *db = NULL;
	struct blobs *blobs = NULL;
	struct jwt_key *jwt = NULL;
	char err[512];
	int rc = 1;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage();
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("code-interpreter-proxy %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--config-table")) {
		cfg_print_table();
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--healthcheck") != 0) {
		fprintf(stderr, "code-interpreter-proxy: unknown argument %s (see --help)\n", argv[1]);
		return 2;
	}
	if (cfg_load(env_get, NULL, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "code-interpreter-proxy: %s\n", err);
		return 2;
	}
	if (argc > 1) {
		rc = healthcheck(cfg);
		cfg_free(cfg);
		return rc;
	}
	log_setup(cfg->log_level, cfg->log_format);
	if ((cfg->auth & CFG_AUTH_JWT) &&
	    jwt_key_load(cfg->jwt_public_key, &jwt, err, sizeof(err)) < 0) {
		fprintf(stderr, "code-interpreter-proxy: %s\n", err);
		cfg_free(cfg);
		return 2;
	}
	if (jwt)
		log_info("auth: Bearer tokens verified with an %s key", jwt_key_alg(jwt));
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("libcurl failed to initialise");
		goto out;
	}
	if (prepare_storage(cfg) < 0)
		goto out;
	if (db_open(cfg->db_path, &db, err, sizeof(err)) < 0) {
		log_error("database: %s", err);
		goto out;
	}
	if (blobs_open(cfg->storage_path, &blobs, err, sizeof(err)) < 0) {
		log_error("file storage: %s", err);
		goto out;
	}
	if (!(dk = docker_new(cfg->docker_host, (long)cfg->docker_timeout_s * 1000)) ||
	    (cfg->docker_tls && docker_set_tls(dk, cfg->docker_tls_ca, cfg->docker_tls_cert,
	    cfg->docker_tls_key) != DOCKER_OK) || wait_for_engine(dk, cfg) < 0)
		goto out;
	rc = serve(cfg, jwt, dk, db, blobs) < 0 ? 1 : 0;
out:
	blobs_close(blobs);
	jwt_key_free(jwt);
	docker_free(dk);
	db_close(db);
	cfg_free(cfg);
	curl_global_cleanup();
	return rc;
}
