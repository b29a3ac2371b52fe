/*
 * Engine API calls.  Control calls are plain libcurl requests with a capped
 * response body; the exec stream is a CONNECT_ONLY connection over which we
 * write the upgrade request ourselves, because libcurl's easy API has no
 * HTTP hijack.  The API version is min(the engine's, the newest we know).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "buf.h"
#include "docker.h"
#include "docker_json.h"
#include "log.h"

/* Newest API version whose fields we use and have checked against. */
#define API_NEWEST_MAJOR 1
#define API_NEWEST_MINOR 45
#define RESP_CAP (8u << 20)

struct docker {
	char *socket_path;	/* unix socket, or NULL for tcp */
	char *base_url;		/* "http://localhost", "http(s)://host:port" */
	char *tls_ca;		/* with https: the one CA the engine is verified against */
	char *tls_cert, *tls_key;	/* NULL, or our client certificate */
	char api[16];		/* "v1.41" */
	long timeout_ms;
	int podman;
	unsigned long long errors;	/* failed calls, for the metrics; atomic */
};

struct docker_stream {
	CURL *h;
	curl_socket_t fd;
	char *pre;		/* stream bytes read ahead: with the headers, or by quiet */
	size_t prelen, preoff;
	int end;		/* read ahead: 0 nothing, 1 EOF, -errno an error */
};

struct docker *
docker_new(const char *host, long timeout_ms)
{
	struct docker *dk = calloc(1, sizeof(*dk));
	char url[512];

	if (!dk)
		return NULL;
	dk->timeout_ms = timeout_ms;
	strcpy(dk->api, "v1.41");
	if (strncmp(host, "unix://", 7) == 0) {
		dk->socket_path = strdup(host + 7);
		dk->base_url = strdup("http://localhost");
	} else {
		snprintf(url, sizeof(url), "http://%s", host + 6);
		dk->base_url = strdup(url);
	}
	if (!dk->base_url || (strncmp(host, "unix://", 7) == 0 && !dk->socket_path)) {
		docker_free(dk);
		return NULL;
	}
	return dk;
}

int
docker_set_tls(struct docker *dk, const char *ca_file, const char *cert_file,
    const char *key_file)
{
	char url[512];

	if (dk->socket_path || strncmp(dk->base_url, "http://", 7) != 0)
		return DOCKER_EAPI;	/* TLS is for tcp:// (cfg checks it) */
	snprintf(url, sizeof(url), "https://%s", dk->base_url + 7);
	free(dk->base_url);
	dk->base_url = strdup(url);
	dk->tls_ca = strdup(ca_file);
	if (cert_file && cert_file[0]) {
		dk->tls_cert = strdup(cert_file);
		dk->tls_key = strdup(key_file);
	}
	if (!dk->base_url || !dk->tls_ca || (cert_file && cert_file[0] &&
	    (!dk->tls_cert || !dk->tls_key)))
		return DOCKER_ENOMEM;
	return DOCKER_OK;
}

void
docker_free(struct docker *dk)
{
	if (!dk)
		return;
	free(dk->socket_path);
	free(dk->base_url);
	free(dk->tls_ca);
	free(dk->tls_cert);
	free(dk->tls_key);
	free(dk);
}

const char *
docker_api_version(const struct docker *dk)
{
	return dk->api + 1;
}

int
docker_is_podman(const struct docker *dk)
{
	return dk->podman;
}

static void
set_err(struct docker_err *err, long status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(struct docker_err *err, long status, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

static size_t
collect_body(char *p, size_t sz, size_t n, void *ctx)
{
	if (buf_add(ctx, p, sz * n) < 0)
		return 0;
	return sz * n;
}

struct ping_headers {
	char api[16];
	int podman;
};

static size_t
collect_ping_header(char *p, size_t sz, size_t n, void *ctx)
{
	struct ping_headers *ph = ctx;
	size_t len = sz * n, i;

	if (len > 12 && strncasecmp(p, "Api-Version:", 12) == 0) {
		p += 12;
		len -= 12;
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		for (i = 0; i < len && i < sizeof(ph->api) - 1 && p[i] > ' '; i++)
			ph->api[i] = p[i];
		ph->api[i] = '\0';
	} else if (len > 19 && strncasecmp(p, "Libpod-Api-Version:", 19) == 0) {
		ph->podman = 1;
	}
	return sz * n;
}

/* A handle for one call; curl writes its detailed error to errbuf (CURL_ERROR_SIZE). */
static CURL *
dk_handle(struct docker *dk, const char *url, long timeout_ms, char *errbuf)
{
	CURL *h = curl_easy_init();

	if (!h)
		return NULL;
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (dk->socket_path)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, dk->socket_path);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The engine is never reached through an http_proxy of the environment. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (dk->tls_ca) {
		/* Our CA alone: not the system's store, which any public CA is in. */
		curl_easy_setopt(h, CURLOPT_CAINFO, dk->tls_ca);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		if (dk->tls_cert) {
			curl_easy_setopt(h, CURLOPT_SSLCERT, dk->tls_cert);
			curl_easy_setopt(h, CURLOPT_SSLKEY, dk->tls_key);
		}
	}
	return h;
}

/* curl's own words for a failed call: its error buffer, else the code's text. */
static const char *
curl_why(CURLcode cc, const char *errbuf)
{
	return errbuf[0] ? errbuf : curl_easy_strerror(cc);
}

static int
map_status(long status, const char *msg)
{
	if (status == 404)
		return DOCKER_ENOTFOUND;
	if (status == 409)
		return DOCKER_ECONFLICT;
	/* Podman answers 500 where dockerd says 409. */
	if (status == 500 && (strstr(msg, "container state improper") ||
	    strstr(msg, "already in use") || strstr(msg, "is not running")))
		return DOCKER_ECONFLICT;
	return DOCKER_EAPI;
}

/* Count a failure of the engine (not a 404 or 409, which are answers). */
static int
counted(struct docker *dk, int rc)
{
	if (rc == DOCKER_EUNAVAIL || rc == DOCKER_EAPI)
		__atomic_fetch_add(&dk->errors, 1, __ATOMIC_RELAXED);
	return rc;
}

unsigned long long
docker_error_count(const struct docker *dk)
{
	return __atomic_load_n(&dk->errors, __ATOMIC_RELAXED);
}

/*
 * One request.  path is relative to the versioned base ("/containers/...").
 * Returns DOCKER_OK for a 2xx/304 status (body in resp if given).
 */
static int
dk_call(struct docker *dk, const char *method, const char *path, const char *json,
    struct buf *resp, struct docker_err *err)
{
	char url[2048], what[64], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdr = NULL;
	struct buf body;
	long status = 0;
	CURL *h;
	CURLcode cc;
	int rc;

	buf_init(&body, RESP_CAP);
	snprintf(url, sizeof(url), "%s/%s%s", dk->base_url, dk->api, path);
	snprintf(what, sizeof(what), "%s %.40s", method, path);
	if (!(h = dk_handle(dk, url, dk->timeout_ms, errbuf))) {
		set_err(err, 0, "out of memory");
		return DOCKER_ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (json) {
		/* Without it dockerd assumes a form body and refuses with 400. */
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp ? resp : &body);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	if (cc != CURLE_OK) {
		set_err(err, 0, "%s: %s", what, curl_why(cc, errbuf));
		rc = DOCKER_EUNAVAIL;
	} else if (status / 100 == 2 || status == 304) {
		rc = DOCKER_OK;
	} else {
		char msg[400];
		docker_json_message((resp ? resp : &body)->data, (resp ? resp : &body)->len, msg,
		    sizeof(msg));
		set_err(err, status, "%s: %ld %s", what, status, msg);
		rc = map_status(status, msg);
	}
	buf_free(&body);
	return counted(dk, rc);
}

/*
 * GET /_ping; the headers tell the engine's API version and kind.  With
 * tls12, TLS 1.3 is not offered (see tls_refusal).  *ccp: curl's code.
 */
static int
ping_request(struct docker *dk, struct ping_headers *ph, int tls12, CURLcode *ccp,
    struct docker_err *err)
{
	char url[600], errbuf[CURL_ERROR_SIZE], msg[200];
	struct buf body;
	long status = 0;
	size_t n;
	CURL *h;
	CURLcode cc;
	int rc = DOCKER_OK;

	*ccp = CURLE_OK;
	buf_init(&body, 4096);
	snprintf(url, sizeof(url), "%s/_ping", dk->base_url);
	if (!(h = dk_handle(dk, url, 5000, errbuf))) {
		set_err(err, 0, "out of memory");
		return DOCKER_ENOMEM;
	}
	if (tls12)
		curl_easy_setopt(h, CURLOPT_SSLVERSION,
		    (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_ping_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, ph);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	*ccp = cc;
	if (cc != CURLE_OK) {
		set_err(err, 0, "GET /_ping: %s", curl_why(cc, errbuf));
		rc = DOCKER_EUNAVAIL;
	} else if (status != 200) {
		docker_json_message(body.data, body.len, msg, sizeof(msg));
		for (n = strlen(msg); n && msg[n - 1] == ' '; n--)
			msg[n - 1] = '\0';
		set_err(err, status, "GET /_ping: status %ld%s%s", status, msg[0] ? ": " : "", msg);
		/* Go's answer to plain HTTP on a TLS port. */
		rc = status == 400 && strstr(msg, "HTTPS server") ? DOCKER_ETLS : DOCKER_EUNAVAIL;
	}
	buf_free(&body);
	return rc;
}

/* Codes of a TLS handshake that failed: a fault of certificates or settings. */
static int
tls_failure(CURLcode cc)
{
	switch (cc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return 1;
	default:
		return 0;
	}
}

/* What to look at for a refusal, from curl's code and OpenSSL's words. */
static const char *
tls_hint(CURLcode cc, const char *why)
{
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	    cc == CURLE_SSL_ISSUER_ERROR)
		return "the engine's certificate is not signed by CI_DOCKER_TLS_CA, or does not "
		    "name the host of CI_DOCKER_HOST";
	if (cc == CURLE_SSL_CERTPROBLEM)
		return "CI_DOCKER_TLS_CERT or CI_DOCKER_TLS_KEY is not a PEM certificate and "
		    "its key";
	if (strstr(why, "bad certificate") || strstr(why, "certificate required") ||
	    strstr(why, "unknown ca") || cc == CURLE_SSL_CLIENTCERT)
		return "the engine refuses our client certificate: set CI_DOCKER_TLS_CERT and "
		    "CI_DOCKER_TLS_KEY to one signed by a CA the engine trusts (its --tlscacert)";
	if (strstr(why, "wrong version number") || strstr(why, "packet length too long"))
		return "the engine does not speak TLS on this port";
	if (strstr(why, "HTTPS server"))
		return "the engine wants TLS: set CI_DOCKER_TLS_CA, CI_DOCKER_TLS_CERT and "
		    "CI_DOCKER_TLS_KEY";
	return "see CI_DOCKER_TLS_CA, CI_DOCKER_TLS_CERT and CI_DOCKER_TLS_KEY";
}

/*
 * Is this failed ping a TLS refusal?  Returns DOCKER_ETLS (err completed
 * with a hint) or rc.  Under TLS 1.3 the client's handshake ends before
 * the engine has checked our certificate, so a refused (or missing) client
 * certificate shows as a send or receive failure after it, and which one,
 * in which words, is a race.  One more ping offering TLS 1.2 only, where
 * the engine decides within the handshake, gives OpenSSL's reason.
 */
static int
tls_refusal(struct docker *dk, CURLcode cc, int rc, struct docker_err *err)
{
	struct ping_headers ph = { "", 0 };
	struct docker_err e12 = { 0, "" };
	char first[sizeof(err->msg)];
	CURLcode cc12;

	if (!err)
		return rc;
	snprintf(first, sizeof(first), "%s", err->msg);
	if (rc == DOCKER_ETLS) {	/* plain HTTP to a TLS port */
		set_err(err, err->status, "%s (%s)", first, tls_hint(cc, first));
		return rc;
	}
	if (rc != DOCKER_EUNAVAIL || !dk->tls_ca)
		return rc;
	if (tls_failure(cc)) {
		set_err(err, 0, "%s (%s)", first, tls_hint(cc, first));
		return DOCKER_ETLS;
	}
	if (cc != CURLE_SEND_ERROR && cc != CURLE_RECV_ERROR && cc != CURLE_GOT_NOTHING)
		return rc;
	/* An engine that speaks TLS 1.3 only cannot tell us more: keep waiting. */
	if (ping_request(dk, &ph, 1, &cc12, &e12) == DOCKER_OK || !tls_failure(cc12) ||
	    strstr(e12.msg, "protocol version") || strstr(e12.msg, "unsupported protocol"))
		return rc;
	set_err(err, 0, "%s (offered TLS 1.2 only, the handshake says: %s; %s)", first,
	    e12.msg + strlen("GET /_ping: "), tls_hint(cc12, e12.msg));
	return DOCKER_ETLS;
}

int
docker_ping(struct docker *dk, struct docker_err *err)
{
	struct ping_headers ph = { "", 0 };
	CURLcode cc;
	int rc = ping_request(dk, &ph, 0, &cc, err);

	return counted(dk, rc == DOCKER_ETLS ? DOCKER_EUNAVAIL : rc);
}

int
docker_negotiate(struct docker *dk, struct docker_err *err)
{
	struct ping_headers ph = { "", 0 };
	int v, rc, newest = API_NEWEST_MAJOR * 100 + API_NEWEST_MINOR;
	CURLcode cc;

	if ((rc = ping_request(dk, &ph, 0, &cc, err)) != DOCKER_OK)
		return tls_refusal(dk, cc, rc, err);
	v = docker_json_api_version(ph.api);
	if (!v)
		v = 141;	/* no header: an old engine; 1.41 is widely served */
	if (v > newest)
		v = newest;
	snprintf(dk->api, sizeof(dk->api), "v%d.%d", v / 100, v % 100);
	dk->podman = ph.podman;
	return DOCKER_OK;
}

int
docker_image_exists(struct docker *dk, const char *image, struct docker_err *err)
{
	char path[600], *esc;
	CURL *h = curl_easy_init();
	int rc;

	if (!h || !(esc = curl_easy_escape(h, image, 0))) {
		curl_easy_cleanup(h);
		return DOCKER_ENOMEM;
	}
	snprintf(path, sizeof(path), "/images/%s/json", esc);
	curl_free(esc);
	curl_easy_cleanup(h);
	rc = dk_call(dk, "GET", path, NULL, NULL, err);
	return rc;
}

static struct json_object *
tmpfs_options(const struct docker *dk, const struct docker_create_spec *s)
{
	struct json_object *t = json_object_new_object();
	/*
	 * Podman copies the image's directory into each tmpfs (tmpcopyup)
	 * unless told not to; dockerd mounts them empty.  Empty on both, so
	 * the workspace starts the same whatever the image holds there.
	 */
	const char *nocopy = dk->podman ? ",notmpcopyup" : "";
	char opt[128];

	/* Explicit options everywhere: engines' defaults differ (noexec, size). */
	snprintf(opt, sizeof(opt), "rw,nosuid,nodev,exec,size=%dm%s", s->tmp_mb, nocopy);
	json_object_object_add(t, "/tmp", json_object_new_string(opt));
	snprintf(opt, sizeof(opt), "rw,nosuid,nodev,exec,size=%dm%s", s->workspace_mb, nocopy);
	json_object_object_add(t, "/mnt/data", json_object_new_string(opt));
	snprintf(opt, sizeof(opt), "rw,nosuid,nodev,noexec,size=1m,mode=0700%s", nocopy);
	json_object_object_add(t, "/run/cip", json_object_new_string(opt));
	if (dk->podman) {
		/*
		 * Podman adds these writable (mode 1777), unsized, on a read-only
		 * rootfs.  Ours leave them as dockerd's are to the user: /run
		 * root's (it holds /run/cip, so it cannot be read-only), /var/tmp
		 * read-only.
		 */
		snprintf(opt, sizeof(opt), "rw,nosuid,nodev,noexec,size=1m,mode=0755%s", nocopy);
		json_object_object_add(t, "/run", json_object_new_string(opt));
		snprintf(opt, sizeof(opt), "ro,nosuid,nodev,noexec,size=1m%s", nocopy);
		json_object_object_add(t, "/var/tmp", json_object_new_string(opt));
	}
	return t;
}

static struct json_object *
ulimit(const char *name, long v)
{
	struct json_object *u = json_object_new_object();

	json_object_object_add(u, "Name", json_object_new_string(name));
	json_object_object_add(u, "Soft", json_object_new_int64(v));
	json_object_object_add(u, "Hard", json_object_new_int64(v));
	return u;
}

static struct json_object *
string_array(const char *const *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* The hardened HostConfig: no network, three capabilities, read-only root. */
static struct json_object *
host_config(const struct docker *dk, const struct docker_create_spec *s)
{
	static const char *const caps[] = { "SETUID", "SETGID", "KILL" };
	static const char *const drop[] = { "ALL" };
	static const char *const secopt[] = { "no-new-privileges" };
	struct json_object *hc = json_object_new_object(), *ul, *lc, *rp;

	json_object_object_add(hc, "Memory", json_object_new_int64(s->memory_bytes));
	json_object_object_add(hc, "MemorySwap", json_object_new_int64(s->memory_bytes));
	json_object_object_add(hc, "NanoCpus", json_object_new_int64(s->nano_cpus));
	json_object_object_add(hc, "PidsLimit", json_object_new_int64(s->pids));
	json_object_object_add(hc, "NetworkMode", json_object_new_string("none"));
	json_object_object_add(hc, "ReadonlyRootfs", json_object_new_boolean(1));
	json_object_object_add(hc, "Tmpfs", tmpfs_options(dk, s));
	json_object_object_add(hc, "CapDrop", string_array(drop, 1));
	json_object_object_add(hc, "CapAdd", string_array(caps, 3));
	json_object_object_add(hc, "SecurityOpt", string_array(secopt, 1));
	json_object_object_add(hc, "Init", json_object_new_boolean(0));
	json_object_object_add(hc, "AutoRemove", json_object_new_boolean(0));
	ul = json_object_new_array();
	json_object_array_add(ul, ulimit("nofile", s->nofile));
	json_object_array_add(ul, ulimit("nproc", s->nproc));
	json_object_object_add(hc, "Ulimits", ul);
	rp = json_object_new_object();
	json_object_object_add(rp, "Name", json_object_new_string("no"));
	json_object_object_add(hc, "RestartPolicy", rp);
	lc = json_object_new_object();
	json_object_object_add(lc, "Type", json_object_new_string("none"));
	json_object_object_add(hc, "LogConfig", lc);
	if (s->runtime && s->runtime[0])
		json_object_object_add(hc, "Runtime", json_object_new_string(s->runtime));
	return hc;
}

int
docker_create(struct docker *dk, const struct docker_create_spec *s,
    char id[DOCKER_ID_MAX], struct docker_err *err)
{
	struct json_object *body = json_object_new_object(), *labels;
	struct buf out;
	size_t i;
	int rc;

	buf_init(&out, RESP_CAP);
	labels = json_object_new_object();
	for (i = 0; i < s->nlabels; i++)
		json_object_object_add(labels, s->labels[i].key,
		    json_object_new_string(s->labels[i].value));
	json_object_object_add(body, "Image", json_object_new_string(s->image));
	/* PID 1 is the image's runner, as root; it drops to uid 1000 for user code. */
	json_object_object_add(body, "User", json_object_new_string("0:0"));
	json_object_object_add(body, "WorkingDir", json_object_new_string("/mnt/data"));
	json_object_object_add(body, "Labels", labels);
	json_object_object_add(body, "NetworkDisabled", json_object_new_boolean(1));
	/*
	 * The runner (PID 1) has nothing to save on a stop: the proxy's storage
	 * is the truth.  SIGKILL spares a stopping engine its 10 s wait per
	 * sandbox, which held the in-flight replies of an engine restart.
	 */
	json_object_object_add(body, "StopSignal", json_object_new_string("SIGKILL"));
	if (s->env) {
		struct json_object *env = json_object_new_array();

		for (i = 0; s->env[i]; i++)
			json_object_array_add(env, json_object_new_string(s->env[i]));
		json_object_object_add(body, "Env", env);
	}
	json_object_object_add(body, "HostConfig", host_config(dk, s));
	rc = dk_call(dk, "POST", "/containers/create",
	    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), &out, err);
	if (rc == DOCKER_OK && docker_json_id(out.data, id) < 0) {
		set_err(err, 201, "create: no container id in the engine's answer");
		rc = DOCKER_EAPI;
	}
	json_object_put(body);
	buf_free(&out);
	return rc;
}

int
docker_start(struct docker *dk, const char *id, struct docker_err *err)
{
	char path[256];

	snprintf(path, sizeof(path), "/containers/%s/start", id);
	return dk_call(dk, "POST", path, NULL, NULL, err);
}

/* Container id's State: *running, and *oom (it ended and the OOM killer did it). */
static int
inspect_state(struct docker *dk, const char *id, int *running, int *oom,
    struct docker_err *err)
{
	struct buf out;
	char path[256];
	int rc;

	*running = *oom = 0;
	buf_init(&out, RESP_CAP);
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	rc = dk_call(dk, "GET", path, NULL, &out, err);
	if (rc == DOCKER_OK) {
		*running = docker_json_running(out.data);
		*oom = !*running && docker_json_oom_killed(out.data);
	}
	buf_free(&out);
	return rc;
}

int
docker_inspect_running(struct docker *dk, const char *id, int *running, struct docker_err *err)
{
	int oom;

	return inspect_state(dk, id, running, &oom, err);
}

int
docker_inspect_oom_killed(struct docker *dk, const char *id, int *oom, struct docker_err *err)
{
	int running;

	return inspect_state(dk, id, &running, oom, err);
}

int
docker_remove(struct docker *dk, const char *id, struct docker_err *err)
{
	char path[256];
	int rc, attempt;

	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
	for (attempt = 0; attempt < 3; attempt++) {
		rc = dk_call(dk, "DELETE", path, NULL, NULL, err);
		if (rc == DOCKER_OK || rc == DOCKER_ENOTFOUND)
			return DOCKER_OK;
		/* 409 "removal already in progress" means it is going away. */
		if (rc == DOCKER_ECONFLICT && err && strstr(err->msg, "already in progress"))
			return DOCKER_OK;
		/* Podman refuses a container that is still exiting: retry. */
		if (rc != DOCKER_EAPI && rc != DOCKER_ECONFLICT)
			return rc;
		usleep(500000);
	}
	return rc;
}

int
docker_list_containers(struct docker *dk, const char *key, const char *value,
    docker_container_cb cb, void *ctx, struct docker_err *err)
{
	struct json_object *filter, *arr;
	char label[512], path[1200], *esc = NULL;
	struct buf out;
	CURL *h;
	int rc;

	strcpy(path, "/containers/json?all=1");
	if (key && value) {
		snprintf(label, sizeof(label), "%s=%s", key, value);
		filter = json_object_new_object();
		arr = json_object_new_array();
		json_object_array_add(arr, json_object_new_string(label));
		json_object_object_add(filter, "label", arr);
		h = curl_easy_init();
		esc = h ? curl_easy_escape(h, json_object_to_json_string_ext(filter,
		    JSON_C_TO_STRING_PLAIN), 0) : NULL;
		json_object_put(filter);
		curl_easy_cleanup(h);
		if (!esc)
			return DOCKER_ENOMEM;
		snprintf(path, sizeof(path), "/containers/json?all=1&filters=%s", esc);
		curl_free(esc);
	}
	buf_init(&out, RESP_CAP);
	rc = dk_call(dk, "GET", path, NULL, &out, err);
	if (rc == DOCKER_OK)
		docker_json_containers(out.data, key, cb, ctx);
	buf_free(&out);
	return rc;
}

int
docker_exec_create(struct docker *dk, const char *id, const char *const *argv,
    const char *user, int attach_stdin, char exec_id[DOCKER_ID_MAX], struct docker_err *err)
{
	struct json_object *body = json_object_new_object();
	struct buf out;
	char path[256];
	size_t argc = 0;
	int rc;

	while (argv[argc])
		argc++;
	json_object_object_add(body, "AttachStdin", json_object_new_boolean(attach_stdin));
	json_object_object_add(body, "AttachStdout", json_object_new_boolean(1));
	json_object_object_add(body, "AttachStderr", json_object_new_boolean(1));
	json_object_object_add(body, "Tty", json_object_new_boolean(0));
	json_object_object_add(body, "User", json_object_new_string(user));
	json_object_object_add(body, "Cmd", string_array(argv, argc));
	buf_init(&out, RESP_CAP);
	snprintf(path, sizeof(path), "/containers/%s/exec", id);
	rc = dk_call(dk, "POST", path, json_object_to_json_string_ext(body,
	    JSON_C_TO_STRING_PLAIN), &out, err);
	if (rc == DOCKER_OK && docker_json_id(out.data, exec_id) < 0) {
		set_err(err, 201, "exec create: no exec id in the engine's answer");
		rc = DOCKER_EAPI;
	}
	json_object_put(body);
	buf_free(&out);
	return rc;
}

/* Wait for fd, until deadline (a clock_mono_ms time; -1: no limit). */
static int
wait_socket(curl_socket_t fd, short events, long long deadline)
{
	struct pollfd pf = { .fd = fd, .events = events };
	long long left;
	int r, timeout_ms;

	left = deadline < 0 ? -1 : deadline - clock_mono_ms();
	/* Never a negative wait by accident: poll would take it as no limit. */
	timeout_ms = left < 0 ? (deadline < 0 ? -1 : 0) : left > 86400000 ? 86400000 : (int)left;

	do
		r = poll(&pf, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int
docker_stream_send(struct docker_stream *s, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;
	long long deadline = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	size_t sent;
	CURLcode cc;
	int r;

	while (len) {
		cc = curl_easy_send(s->h, p, len, &sent);
		if (cc == CURLE_OK) {
			p += sent;
			len -= sent;
			continue;
		}
		if (cc != CURLE_AGAIN)
			return -EPIPE;
		if ((r = wait_socket(s->fd, POLLOUT, deadline)) < 0)
			return r;
	}
	return 0;
}

/*
 * Ask curl, not the socket, whether bytes wait: under TLS it may hold
 * decrypted bytes while the socket has nothing, and the socket may hold
 * bytes that are no data (a session ticket).  What comes is kept for recv.
 */
int
docker_stream_quiet(struct docker_stream *s)
{
	char b[4096], *p;
	size_t got;
	CURLcode cc;

	if (s->preoff < s->prelen || s->end)
		return 0;
	cc = curl_easy_recv(s->h, b, sizeof(b), &got);
	if (cc == CURLE_AGAIN)
		return 1;
	if (cc != CURLE_OK) {
		s->end = -ECONNRESET;
		return 0;
	}
	if (got == 0) {
		s->end = 1;
		return 0;
	}
	/* Unasked bytes: the caller gives up on the stream, but recv still returns them. */
	if (!(p = realloc(s->pre, got))) {
		s->end = -ENOMEM;
		return 0;
	}
	memcpy(p, b, got);
	s->pre = p;
	s->prelen = got;
	s->preoff = 0;
	return 0;
}

long
docker_stream_recv(struct docker_stream *s, void *buf, size_t cap, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	size_t got, n;
	CURLcode cc;
	int r;

	if (s->preoff < s->prelen) {
		n = s->prelen - s->preoff < cap ? s->prelen - s->preoff : cap;
		memcpy(buf, s->pre + s->preoff, n);
		s->preoff += n;
		return (long)n;
	}
	if (s->end)
		return s->end > 0 ? 0 : s->end;
	/* curl first, always: TLS may have decrypted bytes the socket no longer shows. */
	for (;;) {
		cc = curl_easy_recv(s->h, buf, cap, &got);
		if (cc == CURLE_OK)
			return (long)got;	/* 0 is EOF */
		if (cc != CURLE_AGAIN)
			return -ECONNRESET;
		if ((r = wait_socket(s->fd, POLLIN, deadline)) < 0)
			return r;
	}
}

void
docker_stream_close(struct docker_stream *s)
{
	if (!s)
		return;
	curl_easy_cleanup(s->h);
	free(s->pre);
	free(s);
}

/* Read the upgrade answer's head; leftover stream bytes go to s->pre. */
static int
read_upgrade_head(struct docker_stream *s, long timeout_ms, struct docker_err *err)
{
	char head[8192], *end;
	size_t len = 0, hl;
	long n;
	int status = 0;

	for (;;) {
		n = docker_stream_recv(s, head + len, sizeof(head) - 1 - len, (int)timeout_ms);
		if (n <= 0) {
			set_err(err, 0, "exec start: %s", n == 0 ? "connection closed" : strerror((int)-n));
			return DOCKER_EUNAVAIL;
		}
		len += (size_t)n;
		head[len] = '\0';
		if ((end = strstr(head, "\r\n\r\n")))
			break;
		if (len == sizeof(head) - 1) {
			set_err(err, 0, "exec start: oversize answer head");
			return DOCKER_EAPI;
		}
	}
	hl = (size_t)(end + 4 - head);
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	if (status != 101 && status != 200) {
		char *nl = strchr(head, '\r');
		if (nl)
			*nl = '\0';
		set_err(err, status, "exec start: %s: %.200s", head, end + 4);
		return status == 404 ? DOCKER_ENOTFOUND : status == 409 ? DOCKER_ECONFLICT : DOCKER_EAPI;
	}
	if (len > hl) {
		if (!(s->pre = malloc(len - hl)))
			return DOCKER_ENOMEM;
		memcpy(s->pre, head + hl, len - hl);
		s->prelen = len - hl;
	}
	return DOCKER_OK;
}

int
docker_exec_attach(struct docker *dk, const char *exec_id, struct docker_stream **out,
    struct docker_err *err)
{
	static const char body[] = "{\"Detach\":false,\"Tty\":false}";
	struct docker_stream *s = calloc(1, sizeof(*s));
	char url[600], req[1024], errbuf[CURL_ERROR_SIZE];
	CURLcode cc;
	int rc, len;

	*out = NULL;
	if (!s)
		return DOCKER_ENOMEM;
	snprintf(url, sizeof(url), "%s/", dk->base_url);
	if (!(s->h = dk_handle(dk, url, dk->timeout_ms, errbuf))) {
		free(s);
		return DOCKER_ENOMEM;
	}
	/*
	 * Connect only (and the TLS handshake, with https): we speak HTTP
	 * ourselves so we can keep the connection.
	 */
	curl_easy_setopt(s->h, CURLOPT_CONNECT_ONLY, 1L);
	cc = curl_easy_perform(s->h);
	if (cc == CURLE_OK)
		cc = curl_easy_getinfo(s->h, CURLINFO_ACTIVESOCKET, &s->fd);
	/* The buffer is on our stack: later sends and receives must not write to it. */
	curl_easy_setopt(s->h, CURLOPT_ERRORBUFFER, NULL);
	if (cc != CURLE_OK) {
		set_err(err, 0, "exec start: %s", curl_why(cc, errbuf));
		docker_stream_close(s);
		return counted(dk, DOCKER_EUNAVAIL);
	}
	len = snprintf(req, sizeof(req),
	    "POST /%s/exec/%s/start HTTP/1.1\r\nHost: docker\r\n"
	    "User-Agent: code-interpreter-proxy/" PACKAGE_VERSION "\r\n"
	    "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	    "Content-Length: %zu\r\n\r\n%s", dk->api, exec_id, sizeof(body) - 1, body);
	if (docker_stream_send(s, req, (size_t)len, (int)dk->timeout_ms) < 0) {
		set_err(err, 0, "exec start: cannot send the request");
		docker_stream_close(s);
		return counted(dk, DOCKER_EUNAVAIL);
	}
	if ((rc = read_upgrade_head(s, dk->timeout_ms, err)) != DOCKER_OK) {
		docker_stream_close(s);
		return counted(dk, rc);
	}
	*out = s;
	return DOCKER_OK;
}

int
docker_info(struct docker *dk, struct docker_info *out, struct docker_err *err)
{
	struct buf body;
	int rc;

	buf_init(&body, RESP_CAP);
	if ((rc = dk_call(dk, "GET", "/info", NULL, &body, err)) != DOCKER_OK)
		goto out;
	if (docker_json_info(body.data, out) < 0) {
		set_err(err, 200, "GET /info: the answer is no JSON object");
		rc = DOCKER_EAPI;
		goto out;
	}
	/*
	 * Podman's /info takes MemoryLimit and the like from the host, not from
	 * the cgroup the rootless service may use; on cgroup v2 the controllers
	 * delegated to it say what it can enforce.  (On cgroup v1 a rootless
	 * engine has none, which /info's Rootless and CgroupVersion tell.)
	 */
	if (dk->podman && out->rootless && out->cgroup_version == 2) {
		buf_free(&body);
		buf_init(&body, RESP_CAP);
		if ((rc = dk_call(dk, "GET", "/libpod/info", NULL, &body, err)) != DOCKER_OK)
			goto out;
		if ((out->controllers = docker_json_libpod_controllers(body.data)) < 0) {
			set_err(err, 200, "GET /libpod/info: no host.cgroupControllers list");
			rc = DOCKER_EAPI;
		}
	}
out:
	buf_free(&body);
	return rc;
}
