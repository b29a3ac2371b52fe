/*
 * Docker Engine API client over libcurl: the container lifecycle, and the
 * hijacked exec stream that carries the runner channel.  Works with dockerd
 * and Podman's compatible API (the differences are handled inside).  Every
 * call is safe to make from any thread: each one uses its own curl handle.
 */
#ifndef CIP_DOCKER_H
#define CIP_DOCKER_H

#include <stddef.h>

#define DOCKER_ID_MAX 128

enum docker_rc {
	DOCKER_OK = 0,
	DOCKER_EUNAVAIL = -1,	/* engine not reachable or timed out: 503 */
	DOCKER_ENOTFOUND = -2,	/* 404: no such container, image or exec */
	DOCKER_ECONFLICT = -3,	/* 409 (or Podman's 500 twin): not running, name taken */
	DOCKER_EAPI = -4,	/* any other refusal: 502 */
	DOCKER_ENOMEM = -5,
	DOCKER_ETLS = -6,	/* TLS refused (certificates, or TLS on one side only):
				 * retrying will not help; docker_negotiate only */
};

/* What went wrong: the engine's own message, for our log. */
struct docker_err {
	long status;		/* HTTP status, 0 for transport errors */
	char msg[512];
};

struct docker;

struct docker_label {
	const char *key, *value;
};

struct docker_create_spec {
	const char *image;
	const char *runtime;		/* NULL or "" for the engine's default */
	const struct docker_label *labels;
	size_t nlabels;
	long long memory_bytes;
	long long nano_cpus;
	long pids;
	int workspace_mb, tmp_mb;
	long nofile, nproc;
	const char *const *env;		/* NULL-ended "K=V" list of the container's environment */
};

/* host: unix:///path or tcp://host:port.  timeout_ms: per control call. */
struct docker *docker_new(const char *host, long timeout_ms);
/*
 * A tcp:// engine over TLS, before any call: the engine's certificate is
 * verified against the CA in ca_file alone (hostname included), and
 * cert_file and key_file (both or neither; NULL or "") are our client
 * certificate.  0, or DOCKER_ENOMEM.
 */
int docker_set_tls(struct docker *dk, const char *ca_file, const char *cert_file,
    const char *key_file);
void docker_free(struct docker *dk);

/*
 * GET /_ping: picks the API version and engine kind.  Once, before threads.
 * DOCKER_ETLS when the engine refuses our TLS (or wants TLS we lack): err
 * says why, in OpenSSL's words.
 */
int docker_negotiate(struct docker *dk, struct docker_err *err);
/* GET /_ping: does the engine answer?  Safe from any thread. */
int docker_ping(struct docker *dk, struct docker_err *err);
const char *docker_api_version(const struct docker *dk);
/* Calls that failed so far (no answer, or an error status); any thread. */
unsigned long long docker_error_count(const struct docker *dk);
int docker_is_podman(const struct docker *dk);

/*
 * GET /info: what the engine says about the caps it can apply (see
 * docker_json.h).  For rootless Podman on cgroup v2 also GET /libpod/info,
 * whose list of delegated controllers is the truth there.  Once, at startup.
 */
struct docker_info;
int docker_info(struct docker *dk, struct docker_info *out, struct docker_err *err);

int docker_image_exists(struct docker *dk, const char *image, struct docker_err *err);
int docker_create(struct docker *dk, const struct docker_create_spec *spec,
    char id[DOCKER_ID_MAX], struct docker_err *err);
int docker_start(struct docker *dk, const char *id, struct docker_err *err);
/* *running = 1 if it exists and runs; DOCKER_ENOTFOUND if it is gone. */
int docker_inspect_running(struct docker *dk, const char *id, int *running,
    struct docker_err *err);
/* *oom set if the engine says the OOM killer stopped container id (it has ended). */
int docker_inspect_oom_killed(struct docker *dk, const char *id, int *oom,
    struct docker_err *err);
/* Force-remove with its volumes; an already gone container is success. */
int docker_remove(struct docker *dk, const char *id, struct docker_err *err);
/* A container as the engine lists it. */
struct docker_container {
	char id[DOCKER_ID_MAX];
	char image[256];	/* as the engine reports it (Podman adds localhost/) */
	char state[32];		/* created, running, exited, ... */
	int labelled;		/* carries the label asked for */
	const void *labels;	/* private: see docker_label */
};
/* The value of c's label key, or NULL; valid during the callback only. */
const char *docker_label(const struct docker_container *c, const char *key);
typedef int (*docker_container_cb)(const struct docker_container *c, void *ctx);

/*
 * Every container, running or not: those with label key=value, or all of
 * them when value is NULL (then `labelled` says which carry key).  cb
 * returning non-zero stops the walk.
 */
int docker_list_containers(struct docker *dk, const char *key, const char *value,
    docker_container_cb cb, void *ctx, struct docker_err *err);

/* Create an exec of argv as user, stdout/stderr attached (and stdin if asked). */
int docker_exec_create(struct docker *dk, const char *id, const char *const *argv,
    const char *user, int attach_stdin, char exec_id[DOCKER_ID_MAX], struct docker_err *err);

/* A started, hijacked exec: bytes in go to its stdin, bytes out are framed. */
struct docker_stream;
int docker_exec_attach(struct docker *dk, const char *exec_id, struct docker_stream **out,
    struct docker_err *err);
/* Send all of buf (as one write where the socket allows); 0 or -errno. */
int docker_stream_send(struct docker_stream *s, const void *buf, size_t len, int timeout_ms);
/* Bytes received (> 0), 0 at EOF, or -errno (-ETIMEDOUT when nothing came). */
long docker_stream_recv(struct docker_stream *s, void *buf, size_t cap, int timeout_ms);
void docker_stream_close(struct docker_stream *s);
/* 1 if nothing waits to be read on s: no unasked bytes, no EOF, no error. */
int docker_stream_quiet(struct docker_stream *s);

#endif
