/*
 * The fake sandboxes of fake_sandbox.h: an engine in memory, and a runner
 * per channel on a thread, speaking the real protocol over a socketpair.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_sandbox.h"
#include "proto.h"
#include "../../src/runner/sha256.h"

#define MAX_BOXES 128
#define MAX_FILES 32
#define MAX_CONNS 256

struct ffile {
	char *path, *data;
	size_t len;
};

struct box {
	char id[DOCKER_ID_MAX];
	int alive, running;
	struct ffile files[MAX_FILES];
	int nfiles;
};

struct conn {
	struct fake *f;
	int box, fd;		/* fd: the runner's end */
	pthread_t thread;
};

struct fake {
	struct sandboxes sbx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct box boxes[MAX_BOXES];
	int nboxes;
	struct conn conns[MAX_CONNS];
	int nconns;
	enum fake_lie lie;
	int fail_rc, delay_ms;
	int made, removed, attached, alive, max_alive;
	int blocked;
	unsigned release_gen;
	char removed_ids[MAX_BOXES][DOCKER_ID_MAX];
	char gets[8192];
};

/* The proxy's end of a channel: a plain socket. */
struct fd_stream {
	int fd;
};

static int
fd_send(void *st, const void *buf, size_t len, int timeout_ms)
{
	struct fd_stream *s = st;
	const char *p = buf;
	struct pollfd pf = { s->fd, POLLOUT, 0 };
	ssize_t n;

	while (len) {
		if (poll(&pf, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		if ((n = send(s->fd, p, len, MSG_NOSIGNAL)) < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static long
fd_recv(void *st, void *buf, size_t cap, int timeout_ms)
{
	struct fd_stream *s = st;
	struct pollfd pf = { s->fd, POLLIN, 0 };
	ssize_t n;

	if (poll(&pf, 1, timeout_ms < 0 ? 0 : timeout_ms) == 0)
		return -ETIMEDOUT;
	n = read(s->fd, buf, cap);
	return n < 0 ? -errno : (long)n;
}

static int
fd_quiet(void *st)
{
	struct pollfd pf = { ((struct fd_stream *)st)->fd, POLLIN, 0 };

	return poll(&pf, 1, 0) == 0;
}

static void
fd_close(void *st)
{
	close(((struct fd_stream *)st)->fd);
	free(st);
}

static const struct channel_stream_ops fd_stream_ops = {
	.send = fd_send, .recv = fd_recv, .quiet = fd_quiet, .close = fd_close,
};

/* Write bytes to the proxy as the relay's stdout, in Docker's framing. */
static int
send_stdout(int fd, const void *p, size_t n)
{
	unsigned char h[8] = { 1, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
	    (unsigned char)(n >> 8), (unsigned char)n };

	return send(fd, h, 8, MSG_NOSIGNAL) == 8 &&
	    send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static struct ffile *
box_file(struct box *b, const char *path)
{
	int i;

	for (i = 0; i < b->nfiles; i++)
		if (strcmp(b->files[i].path, path) == 0)
			return &b->files[i];
	return NULL;
}

/* path in box b now holds data.  Caller holds f->mu. */
static void
box_put(struct box *b, const char *path, const char *data, size_t len)
{
	struct ffile *ff = box_file(b, path);

	if (!ff) {
		if (b->nfiles == MAX_FILES)
			return;
		ff = &b->files[b->nfiles++];
		ff->path = strdup(path);
	} else {
		free(ff->data);
	}
	ff->data = malloc(len + 1);
	memcpy(ff->data, data, len);
	ff->data[len] = '\0';
	ff->len = len;
}

/* path in box b is gone.  Caller holds f->mu. */
static void
box_remove(struct box *b, const char *path)
{
	struct ffile *ff = box_file(b, path);

	if (!ff)
		return;
	free(ff->path);
	free(ff->data);
	*ff = b->files[--b->nfiles];
}

static void
hex_of(const char *data, size_t len, char hex[65])
{
	unsigned char dig[32];
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, dig);
	sha256_hex(dig, hex);
}

static int
add_line(struct proto_msg *rep, long long size, const char *hex, const char *path)
{
	char line[600];

	snprintf(line, sizeof(line), "f\t%lld\t1\t644\t%s\t%s", size, hex, path);
	return proto_add_str(rep, "e", line);
}

static int
answer_list(struct fake *f, struct box *b, struct proto_msg *rep)
{
	static const char *const bad[] = { "../escape.txt", "/etc/passwd", "a/../../b.txt",
	    "./dot.txt", "back\\slash.txt", "ctl\001.txt", "", NULL };
	char hex[65];
	int i, r = 0;

	for (i = 0; i < b->nfiles; i++) {
		hex_of(b->files[i].data, b->files[i].len, hex);
		r |= add_line(rep, f->lie == LIE_LIST_HUGE ? 1000000000000LL :
		    (long long)b->files[i].len, hex, b->files[i].path);
	}
	hex_of("x", 1, hex);
	for (i = 0; f->lie == LIE_BAD_NAMES && bad[i]; i++)
		r |= add_line(rep, 1, hex, bad[i]);
	return r | proto_add_u64(rep, "truncated", 0);
}

static int
answer_get(struct fake *f, struct box *b, const struct proto_msg *req, struct proto_msg *rep)
{
	const char *path = proto_get(req, "path", NULL);
	struct ffile *ff = path ? box_file(b, path) : NULL;
	size_t n = strlen(f->gets);
	char *huge;
	int r;

	if (path)
		snprintf(f->gets + n, sizeof(f->gets) - n, "%s\n", path);
	if (!ff)
		return -1;
	if (f->lie != LIE_GET_HUGE)
		return proto_add(rep, "data", ff->data, ff->len);
	huge = calloc(1, 1 << 20);
	r = proto_add(rep, "data", huge, 1 << 20);
	free(huge);
	return r;
}

static void
answer_put(struct fake *f, struct box *b, const struct proto_msg *req)
{
	const char *key, *val, *path = NULL;
	size_t i, len;

	for (i = 0; i < proto_nfields(req); i++) {
		key = proto_field(req, i, &val, &len);
		if (strcmp(key, "path") == 0)
			path = val;
		else if (strcmp(key, "data") == 0 && path)
			box_put(b, path, val, len);
	}
	(void)f;
}

/* Wait in a "block" line until fake_release.  Caller holds f->mu. */
static void
run_block(struct fake *f)
{
	unsigned gen = f->release_gen;

	f->blocked++;
	pthread_cond_broadcast(&f->cv);
	while (gen == f->release_gen)
		pthread_cond_wait(&f->cv, &f->mu);
	f->blocked--;
}

/* Interpret script; stdout into out.  Caller holds f->mu. */
static int
run_script(struct fake *f, struct box *b, const char *script, FILE *out)
{
	char *copy = strdup(script), *line, *save = NULL, *name, *text;
	int status = 0;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "print ", 6) == 0) {
			fprintf(out, "%s\n", line + 6);
		} else if (strncmp(line, "write ", 6) == 0 && (text = strchr(line + 6, ' '))) {
			name = line + 6;
			*text++ = '\0';
			box_put(b, name, text, strlen(text));
		} else if (strncmp(line, "remove ", 7) == 0) {
			box_remove(b, line + 7);
		} else if (strcmp(line, "block") == 0) {
			run_block(f);
		} else if (strncmp(line, "exit ", 5) == 0) {
			status = atoi(line + 5);
		}
	}
	free(copy);
	return status;
}

static int
answer_run(struct fake *f, struct box *b, const struct proto_msg *req, struct proto_msg *rep)
{
	const char *key, *val, *script = NULL;
	size_t i, len, outlen = 0;
	struct ffile *ff;
	char *outbuf = NULL;
	FILE *out = open_memstream(&outbuf, &outlen);
	int status, wild = f->lie == LIE_WILD_NUMBERS, r;

	for (i = 0; i < proto_nfields(req) && !script; i++) {
		key = proto_field(req, i, &val, &len);
		if (strcmp(key, "argv") == 0 && (ff = box_file(b, val)))
			script = ff->data;
	}
	status = script ? run_script(f, b, script, out) : 127;
	fclose(out);
	r = proto_add(rep, "stdout", outbuf, outlen) | proto_add_str(rep, "stderr", "") |
	    proto_add_u64(rep, "stdout_total", wild ? 1000000000000ULL : outlen) |
	    proto_add_u64(rep, "stderr_total", 0) |
	    proto_add_u64(rep, "exit_code", wild ? 100000 : (uint64_t)status) |
	    proto_add_u64(rep, "signal", wild ? 12345 : 0) |
	    proto_add_u64(rep, "timed_out", 0) |
	    proto_add_u64(rep, "wall_ms", wild ? 99999999999ULL : 1);
	free(outbuf);
	return r;
}

/* The reply to req, as the runner (honest or not) gives it.  Caller holds f->mu. */
static struct proto_msg *
answer(struct fake *f, struct box *b, const struct proto_msg *req)
{
	struct proto_msg *rep = proto_msg_new(PROTO_OK);
	int r = 0;

	switch (proto_msg_type(req)) {
	case PROTO_HELLO:
		r = proto_add_str(rep, "version", "1");
		break;
	case PROTO_PUT:
		answer_put(f, b, req);
		break;
	case PROTO_LIST:
		r = answer_list(f, b, rep);
		break;
	case PROTO_GET:
		r = answer_get(f, b, req, rep);
		break;
	case PROTO_RUN:
		r = answer_run(f, b, req, rep);
		break;
	default:
		r = -1;
	}
	if (r < 0) {
		proto_msg_free(rep);
		rep = proto_msg_new(PROTO_ERR);
		if (proto_add_str(rep, "error", "fake: cannot") < 0)
			return rep;
	}
	return rep;
}

/* Send rep, or break the stream as the lie says; -1 once the stream is over. */
static int
reply(struct fake *f, int fd, char type, const struct proto_msg *rep)
{
	unsigned char *frame;
	size_t len;
	int r;

	if (type == PROTO_RUN && f->lie == LIE_GARBAGE_RUN)
		return send_stdout(fd, "garbage, not a frame", 20);
	if (proto_encode(rep, 0, &frame, &len) < 0)
		return -1;
	if ((type == PROTO_RUN && f->lie == LIE_EOF_RUN) ||
	    (type == PROTO_PUT && f->lie == LIE_EOF_PUT_ONCE)) {
		if (f->lie == LIE_EOF_PUT_ONCE)
			f->lie = LIE_NONE;
		send_stdout(fd, frame, len / 2);
		free(frame);
		shutdown(fd, SHUT_RDWR);
		return -1;
	}
	r = send_stdout(fd, frame, len);
	free(frame);
	return r;
}

static void *
serve(void *arg)
{
	struct conn *c = arg;
	struct fake *f = c->f;
	struct proto_decoder *d = proto_decoder_new(PROTO_MAX_FRAME);
	struct proto_msg *req, *rep;
	char b[65536];
	ssize_t n;
	int r = 0;

	while (r == 0 && (n = read(c->fd, b, sizeof(b))) > 0) {
		if (proto_decoder_feed(d, b, (size_t)n) < 0)
			break;
		while (r == 0 && proto_decoder_next(d, &req) == 1) {
			pthread_mutex_lock(&f->mu);
			rep = answer(f, &f->boxes[c->box], req);
			r = reply(f, c->fd, proto_msg_type(req), rep);
			pthread_mutex_unlock(&f->mu);
			proto_msg_free(req);
			proto_msg_free(rep);
		}
	}
	proto_decoder_free(d);
	return NULL;
}

static struct box *
find_box(struct fake *f, const char *id)
{
	int i;

	for (i = 0; i < f->nboxes; i++)
		if (strcmp(f->boxes[i].id, id) == 0 && f->boxes[i].alive)
			return &f->boxes[i];
	return NULL;
}

/* A socketpair to a new runner thread of box; the proxy's end in *st.  Caller holds f->mu. */
static int
connect_box(struct fake *f, struct box *b, struct fd_stream **st)
{
	struct conn *c;
	int sv[2];

	if (f->nconns == MAX_CONNS || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (!(*st = malloc(sizeof(**st)))) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	(*st)->fd = sv[0];
	c = &f->conns[f->nconns++];
	c->f = f;
	c->box = (int)(b - f->boxes);
	c->fd = sv[1];
	pthread_create(&c->thread, NULL, serve, c);
	f->attached++;
	return 0;
}

static int
fake_attach(void *ctx, const char *id, struct channel **ch, struct docker_err *err)
{
	struct fake *f = ctx;
	struct fd_stream *st;
	struct box *b;
	int rc;

	pthread_mutex_lock(&f->mu);
	b = find_box(f, id);
	if (!b || !b->running || connect_box(f, b, &st) < 0) {
		pthread_mutex_unlock(&f->mu);
		snprintf(err->msg, sizeof(err->msg), "fake: %s is not running", id);
		return b ? DOCKER_EAPI : DOCKER_ENOTFOUND;
	}
	pthread_mutex_unlock(&f->mu);
	rc = channel_open_stream(&fd_stream_ops, st, 5000, ch, err);
	return rc;
}

static int
fake_make(void *ctx, const char *session, struct sandbox *out, int *at_runner,
    struct docker_err *err)
{
	struct fake *f = ctx;
	struct box *b;
	int rc;

	(void)session;
	*at_runner = 0;
	memset(out, 0, sizeof(*out));
	if (f->delay_ms)
		usleep((useconds_t)f->delay_ms * 1000);
	pthread_mutex_lock(&f->mu);
	if (f->fail_rc != DOCKER_OK || f->nboxes == MAX_BOXES) {
		rc = f->fail_rc != DOCKER_OK ? f->fail_rc : DOCKER_EAPI;
		pthread_mutex_unlock(&f->mu);
		snprintf(err->msg, sizeof(err->msg), "fake: make refused");
		return rc;
	}
	b = &f->boxes[f->nboxes];
	snprintf(b->id, sizeof(b->id), "fake%04d", f->nboxes++);
	b->alive = b->running = 1;
	f->made++;
	if (++f->alive > f->max_alive)
		f->max_alive = f->alive;
	snprintf(out->id, sizeof(out->id), "%s", b->id);
	pthread_mutex_unlock(&f->mu);
	return fake_attach(f, out->id, &out->ch, err);
}

static int
fake_running(void *ctx, const char *id, int *running, struct docker_err *err)
{
	struct fake *f = ctx;
	struct box *b;

	pthread_mutex_lock(&f->mu);
	if ((b = find_box(f, id)))
		*running = b->running;
	pthread_mutex_unlock(&f->mu);
	if (!b)
		snprintf(err->msg, sizeof(err->msg), "fake: no container %s", id);
	return b ? DOCKER_OK : DOCKER_ENOTFOUND;
}

/* End every channel of box b.  Caller holds f->mu. */
static void
hang_up(struct fake *f, struct box *b)
{
	int i;

	for (i = 0; i < f->nconns; i++)
		if (f->conns[i].box == (int)(b - f->boxes))
			shutdown(f->conns[i].fd, SHUT_RDWR);
}

static int
fake_remove(void *ctx, const char *id, struct docker_err *err)
{
	struct fake *f = ctx;
	struct box *b;

	pthread_mutex_lock(&f->mu);
	if ((b = find_box(f, id))) {
		b->alive = b->running = 0;
		hang_up(f, b);
		snprintf(f->removed_ids[f->removed++], DOCKER_ID_MAX, "%s", id);
		f->alive--;
	}
	pthread_mutex_unlock(&f->mu);
	if (!b)
		snprintf(err->msg, sizeof(err->msg), "fake: no container %s", id);
	return b ? DOCKER_OK : DOCKER_ENOTFOUND;
}

static int
fake_ping(void *ctx, struct docker_err *err)
{
	(void)ctx;
	(void)err;
	return DOCKER_OK;
}

static unsigned long long
fake_errors(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct sandbox_ops fake_ops = {
	.make = fake_make, .attach = fake_attach, .running = fake_running,
	.remove = fake_remove, .ping = fake_ping, .errors = fake_errors,
};

struct fake *
fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->sbx.ops = &fake_ops;
	f->sbx.ctx = f;
	return f;
}

void
fake_free(struct fake *f)
{
	int i, j;

	fake_release(f);
	for (i = 0; i < f->nconns; i++) {
		shutdown(f->conns[i].fd, SHUT_RDWR);
		pthread_join(f->conns[i].thread, NULL);
		close(f->conns[i].fd);
	}
	for (i = 0; i < f->nboxes; i++)
		for (j = 0; j < f->boxes[i].nfiles; j++) {
			free(f->boxes[i].files[j].path);
			free(f->boxes[i].files[j].data);
		}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

const struct sandboxes *
fake_sandboxes(struct fake *f)
{
	return &f->sbx;
}

#define SETTER(name, field, type)				\
void name(struct fake *f, type v)				\
{								\
	pthread_mutex_lock(&f->mu);				\
	f->field = v;						\
	pthread_mutex_unlock(&f->mu);				\
}
SETTER(fake_set_lie, lie, enum fake_lie)
SETTER(fake_fail_make, fail_rc, int)
SETTER(fake_make_delay, delay_ms, int)

#define GETTER(name, field)					\
int name(struct fake *f)					\
{								\
	int v;							\
	pthread_mutex_lock(&f->mu);				\
	v = f->field;						\
	pthread_mutex_unlock(&f->mu);				\
	return v;						\
}
GETTER(fake_made, made)
GETTER(fake_removed, removed)
GETTER(fake_attached, attached)
GETTER(fake_max_alive, max_alive)
GETTER(fake_alive, alive)

void
fake_stop(struct fake *f, const char *id)
{
	struct box *b;

	pthread_mutex_lock(&f->mu);
	if ((b = find_box(f, id))) {
		b->running = 0;
		hang_up(f, b);
	}
	pthread_mutex_unlock(&f->mu);
}

void
fake_wait_blocked(struct fake *f, int n)
{
	pthread_mutex_lock(&f->mu);
	while (f->blocked < n)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
}

void
fake_release(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	f->release_gen++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

int
fake_exists(struct fake *f, const char *id)
{
	int r;

	pthread_mutex_lock(&f->mu);
	r = find_box(f, id) != NULL;
	pthread_mutex_unlock(&f->mu);
	return r;
}

const char *
fake_removed_id(struct fake *f, int n)
{
	return n < fake_removed(f) ? f->removed_ids[n] : "";
}

char *
fake_file(struct fake *f, const char *id, const char *path)
{
	struct ffile *ff = NULL;
	struct box *b;
	char *r = NULL;

	pthread_mutex_lock(&f->mu);
	if ((b = find_box(f, id)) && (ff = box_file(b, path)))
		r = strdup(ff->data);
	pthread_mutex_unlock(&f->mu);
	return r;
}

char *
fake_gets(struct fake *f)
{
	char *r;

	pthread_mutex_lock(&f->mu);
	r = strdup(f->gets);
	pthread_mutex_unlock(&f->mu);
	return r;
}
