/*
 * The CI_* table.  One row per variable: its type, bounds, default and
 * meaning.  Parsing, validation, defaults and README's table all come from
 * here, so they cannot drift apart.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"

enum cfg_type { T_STR, T_INT, T_LONG, T_DOUBLE, T_ENUM, T_FLAGS };

struct cfg_var {
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def;
	double min, max;
	const char *const *choices;	/* T_ENUM: index is the value; T_FLAGS: bit */
	int flags;			/* T_STR: V_* */
	const char *help;
};

#define V_NONEMPTY 1	/* "" is refused */
#define V_FILE 2	/* unless "", a regular file we can read */

static const char *const level_choices[] = { "debug", "info", "warn", "error", NULL };
static const char *const format_choices[] = { "text", "json", NULL };
static const char *const auth_choices[] = { "api-key", "none", "jwt", NULL };
static const char *const ttl_mode_choices[] = { "created", "idle", NULL };
static const char *const bool_choices[] = { "false", "true", NULL };
/* Bits as CFG_LIMIT_*, then "all", which cfg_load widens to the three. */
static const char *const limit_choices[] = { "memory", "pids", "cpu", "all", NULL };
#define LIMIT_WORD_ALL 8

#define OFF(f) offsetof(struct cfg, f)

static const struct cfg_var cfg_vars[] = {
	{ "CI_AUTH", T_FLAGS, OFF(auth), "api-key", 0, 0, auth_choices, 0,
	  "how clients authenticate, a comma list: api-key (X-API-Key), jwt (Bearer), none" },
	{ "CI_API_KEY", T_STR, OFF(api_key), "dev-ci-key", 0, 0, NULL, 1,
	  "key clients send in X-API-Key" },
	{ "CI_JWT_PUBLIC_KEY", T_STR, OFF(jwt_public_key), "", 0, 0, NULL, 0,
	  "with CI_AUTH=jwt: LibreChat's Ed25519 or RSA public key, PEM text or a PEM file" },
	{ "CI_HOST", T_STR, OFF(host), "0.0.0.0", 0, 0, NULL, 1,
	  "address to listen on" },
	{ "CI_PORT", T_INT, OFF(port), "8000", 1, 65535, NULL, 0,
	  "TCP port to listen on" },
	{ "CI_FILE_STORAGE_PATH", T_STR, OFF(storage_path), "/data/code-interpreter", 0, 0, NULL, 1,
	  "directory for the SQLite database and stored files" },
	{ "CI_DB_PATH", T_STR, OFF(db_path), "", 0, 0, NULL, 0,
	  "SQLite database file (default: CI_FILE_STORAGE_PATH/proxy.db)" },
	{ "CI_MAX_MEMORY_MB", T_INT, OFF(max_memory_mb), "512", 16, 1048576, NULL, 0,
	  "memory cap of a sandbox container, swap included (MiB)" },
	{ "CI_MAX_RUN_TIMEOUT_SECONDS", T_INT, OFF(max_run_timeout_s), "30", 1, 3600, NULL, 0,
	  "wall-clock limit of one run; everything it started is killed then" },
	{ "CI_MAX_CPUS", T_DOUBLE, OFF(max_cpus), "1", 0.01, 1024, NULL, 0,
	  "CPUs a sandbox container may use" },
	{ "CI_MAX_PIDS", T_INT, OFF(max_pids), "128", 16, 65536, NULL, 0,
	  "processes and threads a sandbox container may hold" },
	{ "CI_WORKSPACE_MB", T_INT, OFF(workspace_mb), "256", 1, 1048576, NULL, 0,
	  "size of the /mnt/data tmpfs (MiB; counts against memory)" },
	{ "CI_TMP_MB", T_INT, OFF(tmp_mb), "64", 1, 1048576, NULL, 0,
	  "size of the /tmp tmpfs (MiB; counts against memory)" },
	{ "CI_MAX_OUTPUT_BYTES", T_LONG, OFF(max_output_bytes), "65536", 1024, 67108864, NULL, 0,
	  "stdout and stderr kept per run, each; the rest is dropped and marked" },
	{ "CI_MAX_FILE_SIZE_BYTES", T_LONG, OFF(max_file_bytes), "10485760", 1, 1073741824, NULL, 0,
	  "largest file stored: an upload past it is refused (413), an output not captured" },
	{ "CI_MAX_FILES_PER_RUN", T_INT, OFF(max_files_per_run), "50", 0, 10000, NULL, 0,
	  "most new or changed files captured from one run" },
	{ "CI_MAX_FILES_PER_SESSION", T_INT, OFF(max_files_per_session), "200", 1, 100000, NULL, 0,
	  "most files one upload request (one bucket) may hold" },
	{ "CI_MAX_REQUEST_BYTES", T_LONG, OFF(max_request_bytes), "52428800", 1024, 1073741824, NULL, 0,
	  "largest JSON request body (413 past it)" },
	{ "CI_MAX_CONNECTIONS", T_INT, OFF(max_connections), "10000", 16, 1000000, NULL, 0,
	  "open HTTP connections: one costs a descriptor and a few KB, not a thread; past it new ones are closed at once (lowered to fit the descriptor limit)" },
	{ "CI_MAX_ACTIVE_REQUESTS", T_INT, OFF(max_active_requests), "256", 1, 65536, NULL, 0,
	  "requests handled at once (each on a thread, an exec for its whole run); more wait their turn" },
	{ "CI_HEADER_TIMEOUT_SECONDS", T_INT, OFF(header_timeout_s), "10", 1, 3600, NULL, 0,
	  "a connection that sends no byte of its request header for this long is closed" },
	{ "CI_BODY_TIMEOUT_SECONDS", T_INT, OFF(body_timeout_s), "60", 1, 3600, NULL, 0,
	  "a request whose body (or a client reading its reply) makes no progress for this long is closed" },
	{ "CI_SANDBOX_IMAGE", T_STR, OFF(sandbox_image), "code-interpreter-sandbox:latest", 0, 0, NULL, 1,
	  "image of the sandbox containers" },
	{ "CI_SANDBOX_RUNTIME", T_STR, OFF(sandbox_runtime), "", 0, 0, NULL, 0,
	  "OCI runtime of the sandboxes, e.g. runsc (default: the engine's)" },
	{ "CI_SANDBOX_LABEL", T_STR, OFF(sandbox_label), "cip.managed", 0, 0, NULL, 1,
	  "label key (value 1) that marks the containers this proxy manages" },
	{ "CI_SANDBOX_IMAGE_PREFIXES", T_STR, OFF(image_prefixes), "", 0, 0, NULL, 0,
	  "comma list: unlabelled containers whose image starts so are the seed's, removed at startup" },
	{ "CI_DOCKER_HOST", T_STR, OFF(docker_host), "unix:///var/run/docker.sock", 0, 0, NULL, 1,
	  "Docker Engine API endpoint: unix:///path or tcp://host:port (plain HTTP unless CI_DOCKER_TLS_CA is set: keep that to loopback)" },
	{ "CI_DOCKER_TLS_CA", T_STR, OFF(docker_tls_ca), "", 0, 0, NULL, V_FILE,
	  "with tcp://: PEM file of the CA that signed the engine's certificate; set, the engine is reached over TLS and verified (hostname included)" },
	{ "CI_DOCKER_TLS_CERT", T_STR, OFF(docker_tls_cert), "", 0, 0, NULL, V_FILE,
	  "with CI_DOCKER_TLS_CA: PEM file of our client certificate, for an engine that verifies its clients (dockerd --tlsverify); with CI_DOCKER_TLS_KEY" },
	{ "CI_DOCKER_TLS_KEY", T_STR, OFF(docker_tls_key), "", 0, 0, NULL, V_FILE,
	  "PEM file of the client certificate's private key (unencrypted); with CI_DOCKER_TLS_CERT" },
	{ "CI_DOCKER_TIMEOUT_SECONDS", T_INT, OFF(docker_timeout_s), "60", 1, 3600, NULL, 0,
	  "limit of one Engine API call (create, start, remove, ...)" },
	{ "CI_DOCKER_WAIT_SECONDS", T_INT, OFF(docker_wait_s), "30", 0, 3600, NULL, 0,
	  "how long startup waits for the engine to answer" },
	{ "CI_SANDBOX_NOFILE", T_INT, OFF(nofile_limit), "4096", 64, 1048576, NULL, 0,
	  "open-file limit (RLIMIT_NOFILE) in a sandbox" },
	{ "CI_SANDBOX_NPROC", T_INT, OFF(nproc_limit), "8192", 64, 1048576, NULL, 0,
	  "RLIMIT_NPROC in a sandbox (per host uid; CI_MAX_PIDS is the real cap)" },
	{ "CI_ACCEPT_UNENFORCED_LIMITS", T_FLAGS, OFF(accept_unenforced), "", 0, 0, limit_choices, 0,
	  "caps the engine may leave unenforced (rootless Podman on cgroup v1 drops all three) while the proxy still starts: a comma list of memory, pids, cpu, or all (empty: refuse to start)" },
	{ "CI_POOL_SIZE", T_INT, OFF(pool_size), "2", 0, 256, NULL, 0,
	  "warm sandbox containers kept ready for new sessions (0: none); each serves one session only" },
	{ "CI_MAX_LIVE_CONTAINERS", T_INT, OFF(max_live), "64", 1, 100000, NULL, 0,
	  "most sandbox containers at once, pooled ones included; at the cap the least recently used idle session loses its container (503 if all are busy)" },
	{ "CI_PYTHON_PRELOAD", T_STR, OFF(python_preload), "numpy pandas matplotlib.pyplot", 0, 0, NULL, 0,
	  "modules the sandbox's pre-loaded Python server imports once; every python3 is forked from it (empty: no server, each python3 starts afresh)" },
	{ "CI_PYTHON_PRELOAD_MB", T_INT, OFF(python_preload_mb), "160", 0, 1048576, NULL, 0,
	  "memory added to each sandbox's cap for the pre-loaded Python server and its spare children, so runs keep CI_MAX_MEMORY_MB (0: the server counts within it)" },
	{ "CI_PTC_CONTINUATION_SECONDS", T_INT, OFF(ptc_wait_s), "300", 1, 86400, NULL, 0,
	  "programmatic tool calling: how long a program waits, alive, for the client's tool results before it is stopped; its continuation token expires with it" },
	{ "CI_CONTAINER_IDLE_MINUTES", T_DOUBLE, OFF(container_idle_min), "15", 0, 525600, NULL, 0,
	  "a session unused this long loses its container, not its files (0: never); the next call re-creates it" },
	{ "CI_SESSION_TTL_MINUTES", T_DOUBLE, OFF(session_ttl_min), "60", 0.01, 525600, NULL, 0,
	  "a session ends this long after its creation (or last use, see the mode)" },
	{ "CI_SESSION_TTL_MODE", T_ENUM, OFF(session_ttl_idle), "created", 0, 0, ttl_mode_choices, 0,
	  "created (the TTL counts from creation, as the seed) or idle (from last use)" },
	{ "CI_SWEEP_INTERVAL_SECONDS", T_DOUBLE, OFF(sweep_interval_s), "60", 0.1, 86400, NULL, 0,
	  "how often the sweeper ends expired sessions and deletes expired files" },
	{ "CI_FILE_RETENTION_HOURS", T_DOUBLE, OFF(file_retention_h), "24", 0.0001, 87600, NULL, 0,
	  "stored files are deleted this long after their creation" },
	{ "CI_METRICS_AUTH", T_ENUM, OFF(metrics_auth), "true", 0, 0, bool_choices, 0,
	  "true: GET /metrics needs the same credentials as the admin routes; false: open to all" },
	{ "CI_CLOSE_SESSIONS_ON_SHUTDOWN", T_ENUM, OFF(close_on_shutdown), "true", 0, 0, bool_choices, 0,
	  "true: SIGTERM removes the sandbox containers; false: keeps them for the next start" },
	{ "CI_SANDBOX_SWEEP_ON_STARTUP", T_ENUM, OFF(sweep_on_startup), "true", 0, 0, bool_choices, 0,
	  "true: at startup, end expired sessions and remove containers of unknown ones" },
	{ "CI_LOG_LEVEL", T_ENUM, OFF(log_level), "info", 0, 0, level_choices, 0,
	  "debug, info, warn or error" },
	{ "CI_LOG_FORMAT", T_ENUM, OFF(log_format), "text", 0, 0, format_choices, 0,
	  "text or json" },
};

#define NVARS (sizeof(cfg_vars) / sizeof(cfg_vars[0]))

/* Dotted Python module names separated by spaces or commas, at most CFG_PRELOAD_MAX. */
static int
preload_list_valid(const char *s)
{
	int n = 0, at_start = 1;

	if (strlen(s) > 1024)
		return 0;
	for (; *s; s++) {
		if (*s == ' ' || *s == ',') {
			if (!at_start && s[-1] == '.')
				return 0;
			at_start = 1;
			continue;
		}
		if (at_start) {
			if (!(isalpha((unsigned char)*s) || *s == '_') || ++n > CFG_PRELOAD_MAX)
				return 0;
			at_start = 0;
		} else if (*s == '.') {
			if (s[-1] == '.' || !(isalpha((unsigned char)s[1]) || s[1] == '_'))
				return 0;
		} else if (!(isalnum((unsigned char)*s) || *s == '_')) {
			return 0;
		}
	}
	return 1;
}

static int
parse_number(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(*out))
		return -1;
	return 0;
}

/* "a,b" -> the bits of a and b in choices; -1 on an unknown word. */
static int
parse_flags(const char *val, const char *const *choices)
{
	char word[32];
	const char *p = val;
	size_t n;
	int bits = 0, i;

	while (*p) {
		n = strcspn(p, ",");
		while (n && *p == ' ') {
			p++;
			n--;
		}
		while (n && p[n - 1] == ' ')
			n--;
		if (n == 0 || n >= sizeof(word))
			return -1;
		memcpy(word, p, n);
		word[n] = '\0';
		for (i = 0; choices[i] && strcmp(word, choices[i]) != 0; i++)
			;
		if (!choices[i])
			return -1;
		bits |= 1 << i;
		p += strcspn(p, ",");
		if (*p == ',' && *++p == '\0')
			return -1;	/* a trailing comma */
	}
	return bits;
}

/* 0 if path is a regular file we can read; else 1, with the reason in err. */
static int
file_unreadable(const char *name, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0 || access(path, R_OK) < 0) {
		snprintf(err, errlen, "%s=\"%s\": cannot read it: %s", name, path, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s=\"%s\": not a regular file", name, path);
		return 1;
	}
	return 0;
}

static int
cfg_set(struct cfg *c, const struct cfg_var *v, const char *val, char *err, size_t errlen)
{
	char *field = (char *)c + v->off;
	double d;
	int i;

	switch (v->type) {
	case T_STR:
		if ((v->flags & V_NONEMPTY) && val[0] == '\0')
			goto bad;
		if ((v->flags & V_FILE) && val[0] && file_unreadable(v->name, val, err, errlen))
			return -1;
		if (!(*(char **)field = strdup(val)))
			goto nomem;
		return 0;
	case T_INT:
	case T_LONG:
	case T_DOUBLE:
		if (parse_number(val, &d) < 0 || d < v->min || d > v->max ||
		    (v->type != T_DOUBLE && d != floor(d)))
			goto bad;
		if (v->type == T_INT)
			*(int *)field = (int)d;
		else if (v->type == T_LONG)
			*(long *)field = (long)d;
		else
			*(double *)field = d;
		return 0;
	case T_ENUM:
		for (i = 0; v->choices[i]; i++)
			if (strcmp(val, v->choices[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		goto bad;
	case T_FLAGS:
		/* An empty list is refused unless it is the default. */
		if ((*(int *)field = parse_flags(val, v->choices)) < 0 ||
		    (*(int *)field == 0 && v->def[0]))
			goto bad;
		return 0;
	}
bad:
	if (v->type == T_ENUM || v->type == T_STR || v->type == T_FLAGS)
		snprintf(err, errlen, "%s=\"%s\" is not valid: %s", v->name, val, v->help);
	else
		snprintf(err, errlen, "%s=\"%s\" is not valid: want a %snumber from %g to %g (%s)",
		    v->name, val, v->type == T_DOUBLE ? "" : "whole ", v->min, v->max, v->help);
	return -1;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int
host_is_numeric(const char *h)
{
	unsigned char a[16];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* tcp://host:port, host a name, an IPv4 address or a bracketed IPv6 one. */
static int
tcp_host_valid(const char *h)
{
	const char *colon;
	char *end;
	long port;

	if (strncmp(h, "tcp://", 6) != 0)
		return 0;
	h += 6;
	colon = strrchr(h, ':');
	if (!colon || colon == h || (h[0] == '[' && colon[-1] != ']'))
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return !errno && end != colon + 1 && *end == '\0' && port >= 1 && port <= 65535;
}

/* Does tcp://host:port's host name this machine's loopback? */
static int
tcp_host_loopback(const char *h)
{
	char host[256];
	unsigned char a[16];
	size_t n;

	h += 6;
	n = (size_t)(strrchr(h, ':') - h);
	if (h[0] == '[') {
		h++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, &in6addr_loopback, 16) == 0;
}

/*
 * The CI_DOCKER_TLS_* files: only with tcp://, certificate and key together,
 * and a client certificate only with the CA that verifies the engine.  Sets
 * the derived docker_tls and docker_plain_remote.
 */
static int
docker_tls_check(struct cfg *c, char *err, size_t errlen)
{
	int tcp = strncmp(c->docker_host, "tcp://", 6) == 0;
	int ca = c->docker_tls_ca[0] != '\0';
	int cert = c->docker_tls_cert[0] != '\0', key = c->docker_tls_key[0] != '\0';

	if (!tcp && (ca || cert || key)) {
		snprintf(err, errlen, "CI_DOCKER_TLS_%s is set but CI_DOCKER_HOST=\"%s\" is not "
		    "tcp://host:port: TLS is for an engine reached over TCP only",
		    ca ? "CA" : cert ? "CERT" : "KEY", c->docker_host);
		return -1;
	}
	if (cert != key) {
		snprintf(err, errlen, "CI_DOCKER_TLS_%s is set but CI_DOCKER_TLS_%s is empty: a "
		    "client certificate needs both its certificate and its key",
		    cert ? "CERT" : "KEY", cert ? "KEY" : "CERT");
		return -1;
	}
	if (cert && !ca) {
		snprintf(err, errlen, "CI_DOCKER_TLS_CERT and CI_DOCKER_TLS_KEY are set but "
		    "CI_DOCKER_TLS_CA is empty: set it to the CA that signed the engine's "
		    "certificate (the engine is verified against it alone)");
		return -1;
	}
	c->docker_tls = ca;
	c->docker_plain_remote = tcp && !ca && !tcp_host_loopback(c->docker_host);
	return 0;
}

int
cfg_load(cfg_getenv_fn get, void *ctx, struct cfg **out, char *err, size_t errlen)
{
	struct cfg *c;
	const char *val;
	size_t i, n;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < NVARS; i++) {
		val = get(cfg_vars[i].name, ctx);
		if (!val)
			val = cfg_vars[i].def;
		if (cfg_set(c, &cfg_vars[i], val, err, errlen) < 0)
			goto fail;
	}
	if (c->db_path[0] == '\0') {
		free(c->db_path);
		n = strlen(c->storage_path) + sizeof("/proxy.db");
		if (!(c->db_path = malloc(n)))
			goto fail;
		snprintf(c->db_path, n, "%s/proxy.db", c->storage_path);
	}
	if ((c->auth & CFG_AUTH_JWT) && !c->jwt_public_key[0]) {
		snprintf(err, errlen, "CI_AUTH includes jwt but CI_JWT_PUBLIC_KEY is empty: set it "
		    "to LibreChat's public key (PEM text or file)");
		goto fail;
	}
	if (!host_is_numeric(c->host)) {
		snprintf(err, errlen, "CI_HOST=\"%s\" is not valid: want a numeric IPv4 or "
		    "IPv6 address such as 0.0.0.0, 127.0.0.1 or ::", c->host);
		goto fail;
	}
	if ((strncmp(c->docker_host, "unix://", 7) != 0 || !c->docker_host[7]) &&
	    !tcp_host_valid(c->docker_host)) {
		snprintf(err, errlen, "CI_DOCKER_HOST=\"%s\" is not valid: "
		    "want unix:///path/to/docker.sock or tcp://host:port", c->docker_host);
		goto fail;
	}
	if (docker_tls_check(c, err, errlen) < 0)
		goto fail;
	if (!preload_list_valid(c->python_preload)) {
		snprintf(err, errlen, "CI_PYTHON_PRELOAD=\"%.200s\" is not valid: want module names "
		    "(such as numpy or matplotlib.pyplot) separated by spaces or commas, at most %d, "
		    "or empty to turn the server off", c->python_preload, CFG_PRELOAD_MAX);
		goto fail;
	}
	if (c->pool_size >= c->max_live) {
		snprintf(err, errlen, "CI_POOL_SIZE=%d is not valid: it must be below "
		    "CI_MAX_LIVE_CONTAINERS=%d, or no session could ever hold a container",
		    c->pool_size, c->max_live);
		goto fail;
	}
	if (c->accept_unenforced & LIMIT_WORD_ALL)
		c->accept_unenforced = CFG_LIMIT_ALL;
	if (c->workspace_mb > c->max_memory_mb)
		log_warn("CI_WORKSPACE_MB (%d) exceeds CI_MAX_MEMORY_MB (%d): tmpfs pages "
		    "count against the memory cap", c->workspace_mb, c->max_memory_mb);
	*out = c;
	return 0;
fail:
	cfg_free(c);
	return -1;
}

void
cfg_free(struct cfg *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < NVARS; i++)
		if (cfg_vars[i].type == T_STR)
			free(*(char **)((char *)c + cfg_vars[i].off));
	free(c);
}

void
cfg_print_table(void)
{
	size_t i;

	printf("| variable | default | meaning |\n|---|---|---|\n");
	for (i = 0; i < NVARS; i++)
		printf("| `%s` | %s%s%s | %s |\n", cfg_vars[i].name,
		    cfg_vars[i].def[0] ? "`" : "", cfg_vars[i].def[0] ? cfg_vars[i].def : "(empty)",
		    cfg_vars[i].def[0] ? "`" : "", cfg_vars[i].help);
}
