/*
 * Runner main: `runner` serves requests as PID 1; `runner relay` is the
 * relay.  One request is served at a time, in arrival order: execs in a
 * session are serialized by the proxy anyway.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdio.h"
#include "runner.h"

#define MAX_CLIENTS 16

struct client {
	int fd;
	struct proto_decoder *dec;
};

/* What the server loop owns and its handlers use. */
struct server {
	int sigfd;			/* SIGCHLD */
	struct hash_cache *hc;		/* the listing's hashes */
	struct pyserver *py;		/* the pre-loaded Python server */
};

/* Encode m and write it to fd; 0, or -1. */
static int
send_msg(int fd, const struct proto_msg *m)
{
	unsigned char *buf;
	size_t len;
	int rc;

	if (proto_encode(m, 0, &buf, &len) < 0)
		return -1;
	rc = write_all(fd, buf, len);
	free(buf);
	return rc;
}

/* The reply to req: the handler's, or an error reply with its reason; NULL if out of memory. */
static struct proto_msg *
dispatch(struct server *sv, struct client *c, const struct proto_msg *req)
{
	struct proto_msg *rep = proto_msg_new(PROTO_OK);
	struct rerr e = { "" };
	char type = proto_msg_type(req);
	int rc;

	if (!rep)
		return NULL;
	switch (type) {
	case PROTO_HELLO:
		rc = (proto_add_str(rep, "version", RUNNER_VERSION) |
		    proto_add_u64(rep, "pid", (uint64_t)getpid()) |
		    proto_add_str(rep, "python", pyserver_state(sv->py))) < 0 ?
		    rerr_set(&e, "hello: out of memory") : 0;
		break;
	case PROTO_PUT:
		rc = fs_put(req, rep, &e);
		break;
	case PROTO_GET:
		rc = fs_get(req, rep, &e);
		break;
	case PROTO_LIST:
		rc = fs_list(req, rep, sv->hc, &e);
		break;
	case PROTO_RUN:
		pyserver_tend(sv->py);
		rc = run_command(req, rep, &e, sv->sigfd,
		    &(struct run_watch){ c->fd, c->dec });
		break;
	default:
		rc = rerr_set(&e, "unknown request '%c'", type);
	}
	if (rc == 0)
		return rep;
	proto_msg_free(rep);
	if ((rep = proto_msg_new(PROTO_ERR)) && proto_add_str(rep, "error", e.msg) < 0) {
		proto_msg_free(rep);
		rep = NULL;
	}
	return rep;
}

/* Serve what the client sent; 0 keeps it, -1 drops it. */
static int
serve_client(struct server *sv, struct client *c)
{
	struct proto_msg *req, *rep;
	char b[65536];
	ssize_t n;
	int r;

	n = read(c->fd, b, sizeof(b));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0 || proto_decoder_feed(c->dec, b, (size_t)n) < 0)
		return -1;
	while ((r = proto_decoder_next(c->dec, &req)) == 1) {
		/* A CANCEL outside a RUN came late (the run had ended): it gets no reply. */
		if (proto_msg_type(req) == PROTO_CANCEL) {
			proto_msg_free(req);
			continue;
		}
		rep = dispatch(sv, c, req);
		proto_msg_free(req);
		if (!rep || send_msg(c->fd, rep) < 0) {
			proto_msg_free(rep);
			return -1;
		}
		proto_msg_free(rep);
	}
	return r < 0 ? -1 : 0;
}

/* The socket listening at RUNNER_SOCK, in a root-only directory; exits on failure. */
static int
listen_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	mkdir(RUNNER_DIR, 0700);
	/* We own the directory (root): make sure only root can enter it. */
	if (chmod(RUNNER_DIR, 0700) < 0)
		fprintf(stderr, "runner: chmod %s: %s\n", RUNNER_DIR, strerror(errno));
	strcpy(sa.sun_path, RUNNER_SOCK);
	unlink(RUNNER_SOCK);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(RUNNER_SOCK, 0600) < 0 || listen(fd, 16) < 0) {
		fprintf(stderr, "runner: cannot listen on %s: %s\n", RUNNER_SOCK, strerror(errno));
		exit(1);
	}
	return fd;
}

/* Take SIGCHLD through a signalfd (returned); open the workspace to the sandbox user. */
static int
setup(void)
{
	sigset_t set;
	int sigfd;

	prctl(PR_SET_DUMPABLE, 0);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0) {
		fprintf(stderr, "runner: signalfd: %s\n", strerror(errno));
		exit(1);
	}
	/*
	 * Engines give the workspace tmpfs the image directory's owner and mode
	 * whatever the mount options say: open it to the sandbox user here.
	 */
	if (chmod(RUNNER_WORKDIR, 0777) < 0)
		fprintf(stderr, "runner: chmod %s: %s\n", RUNNER_WORKDIR, strerror(errno));
	return sigfd;
}

/* Accept a client into cl, or close it when MAX_CLIENTS are served. */
static void
accept_client(int lfd, struct client *cl, int *ncl)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (*ncl == MAX_CLIENTS || !(cl[*ncl].dec = proto_decoder_new(PROTO_MAX_FRAME))) {
		close(fd);
		return;
	}
	cl[*ncl].fd = fd;
	(*ncl)++;
}

/* Serve clients' requests one at a time and reap children; returns only on failure. */
static int
server_main(void)
{
	struct client cl[MAX_CLIENTS];
	struct pollfd pf[MAX_CLIENTS + 3];
	struct signalfd_siginfo si;
	struct server sv = { setup(), hash_cache_new(), pyserver_new() };
	int lfd = listen_socket(), ncl = 0, i, st, r = 0;

	if (!sv.hc || !sv.py) {
		fprintf(stderr, "runner: out of memory\n");
		return 1;
	}

	for (;;) {
		pyserver_tend(sv.py);
		pf[0].fd = lfd;
		pf[0].events = POLLIN;
		pf[1].fd = sv.sigfd;
		pf[1].events = POLLIN;
		for (i = 0; i < ncl; i++) {
			pf[i + 2].fd = cl[i].fd;
			pf[i + 2].events = POLLIN;
		}
		pf[ncl + 2].fd = pyserver_fd(sv.py);
		pf[ncl + 2].events = POLLIN;
		pf[ncl + 2].revents = 0;
		if (poll(pf, (nfds_t)ncl + 3, pyserver_wait_ms(sv.py)) < 0 && errno != EINTR) {
			hash_cache_free(sv.hc);
			pyserver_free(sv.py);
			return 1;
		}
		if (pf[ncl + 2].revents)
			pyserver_readable(sv.py);
		if (pf[1].revents) {
			while (read(sv.sigfd, &si, sizeof(si)) == sizeof(si))
				;
			reap_children(-1, &st, &r);
		}
		for (i = ncl - 1; i >= 0; i--)
			if (pf[i + 2].revents && serve_client(&sv, &cl[i]) < 0) {
				close(cl[i].fd);
				proto_decoder_free(cl[i].dec);
				cl[i] = cl[--ncl];
			}
		if (pf[0].revents)
			accept_client(lfd, cl, &ncl);
	}
}

/* `runner relay` relays; `runner` serves, as PID 1. */
int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "relay") == 0)
		return relay_main();
	if (argc > 1) {
		fprintf(stderr, "usage: runner [relay]\n");
		return 2;
	}
	return server_main();
}
