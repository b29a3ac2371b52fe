/*
 * cip-python: the sandbox's /usr/bin/python3.  It hands the run to the
 * pre-loaded Python server (docker/sandbox/pyserver/cip_pyserver.py) and
 * stands in for the process the server forks: its argv, environment,
 * working directory, open descriptors, limits, umask, signal dispositions
 * and OOM score go over the server's socket; signals sent to this process
 * are forwarded to the forked one; this process exits as that one exits
 * (the same code, or the same signal).
 *
 * When there is no server (not started, warming up, turned off, crashed),
 * when the server is not root (a sandbox process squatting on its name),
 * when the caller is not the sandbox user (root's python3, in an image build
 * or a `docker exec`, stays root's), or when the server declines (a flag or
 * an environment it cannot reproduce), this
 * process executes the real interpreter with the same argv: slower, never
 * different.  libc only, linked static: it starts in well under a
 * millisecond.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include "fdio.h"
#include "runner.h"

/* The real interpreter: the image diverts Debian's /usr/bin/python3 here. */
#define REAL_PYTHON	"/usr/bin/python3.real"
#define SERVER_NAME	"cip-python-1"	/* abstract socket, in the sandbox's network namespace */
#define MAX_FDS		250		/* the server takes the cwd and 250 more */
#define NSIGNALS	65

extern char **environ;

/*
 * The forked process, once the server names it, and signals that came
 * before: a signal handler can reach nothing else.  This program's only
 * state outside main's frame.
 */
static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t pending[NSIGNALS];

/* A growing byte buffer for the request; on failure it is marked and stays. */
struct req {
	unsigned char *p;
	size_t len, cap;
	int failed;
};

static void
put(struct req *r, const void *data, size_t n)
{
	unsigned char *np;
	size_t cap;

	if (r->failed)
		return;
	if (r->len + n > r->cap) {
		cap = (r->len + n) * 2 + 4096;
		if (!(np = realloc(r->p, cap))) {
			r->failed = 1;
			return;
		}
		r->p = np;
		r->cap = cap;
	}
	memcpy(r->p + r->len, data, n);
	r->len += n;
}

static void
put_u32(struct req *r, uint32_t v)
{
	put(r, &v, sizeof(v));
}

static void
put_u64(struct req *r, uint64_t v)
{
	put(r, &v, sizeof(v));
}

static void
put_str(struct req *r, const char *s)
{
	put(r, s, strlen(s) + 1);
}

/* Become the real interpreter: what this process would have been without a server. */
static void __attribute__((noreturn))
become_real(char **argv, const sigset_t *mask, const int *handled)
{
	int sig;

	for (sig = 1; sig < NSIGNALS; sig++)
		if (handled && handled[sig])
			signal(sig, SIG_DFL);
	if (mask)
		sigprocmask(SIG_SETMASK, mask, NULL);
	/* A signal that came while we asked would have reached the interpreter. */
	for (sig = 1; sig < NSIGNALS; sig++)
		if (pending[sig])
			raise(sig);
	execv(REAL_PYTHON, argv);
	fprintf(stderr, "python3: cannot run %s: %s\n", REAL_PYTHON, strerror(errno));
	_exit(127);
}

static int
is_sandbox_user(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	return getresuid(&r, &e, &s) == 0 && getresgid(&rg, &eg, &sg) == 0 &&
	    r == SANDBOX_UID && e == SANDBOX_UID && s == SANDBOX_UID &&
	    rg == SANDBOX_GID && eg == SANDBOX_GID && sg == SANDBOX_GID;
}

/*
 * A connection to the server, if it listens and is root; else -1.
 * The server's first byte, "H", is sent while it is still root.  gVisor
 * (runsc 2022-12 at least) answers SO_PEERCRED with the caller's own
 * credentials, so there *check_hello is set: the "H" must then come with
 * kernel-made SCM_CREDENTIALS of root (SO_PASSCRED, which gVisor gets
 * right), read before the request goes.  Elsewhere SO_PEERCRED has said it
 * and the "H" is read after the request is sent, costing no round trip.
 */
static int
connect_server(int *check_hello)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(SERVER_NAME));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

	*check_hello = 0;
	if (fd < 0)
		return -1;
	memcpy(sa.sun_path + 1, SERVER_NAME, strlen(SERVER_NAME));
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, salen) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0)
		goto refuse;
	if (cr.uid == 0)
		return fd;
	if (cr.pid == getpid()) {
		*check_hello = 1;
		return fd;
	}
refuse:
	close(fd);
	return -1;
}

/*
 * The server's "H", which must come from root (SCM_CREDENTIALS); -1 if not,
 * or if none comes within HELLO_WAIT_MS (a squatter that waits for the
 * request: the real interpreter runs instead).
 */
#define HELLO_WAIT_MS 3000
static int
read_hello_from_root(int fd)
{
	unsigned char b[1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = { b, sizeof(b) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
	    .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;
	struct ucred cr;
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t r;

	if (poll(&pfd, 1, HELLO_WAIT_MS) != 1)
		return -1;
	do
		r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		return -1;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(cr))) {
			memcpy(&cr, CMSG_DATA(c), sizeof(cr));
			return cr.uid == 0 && b[0] == 'H' ? 0 : -1;
		}
	return -1;
}

/* The descriptors this process inherited (not sock, not the listing's own); -1 if too many. */
static int
inherited_fds(int sock, int *fds)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0, fd;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		if (fd == sock || fd == dirfd(d))
			continue;
		if (n == MAX_FDS) {
			n = -1;
			break;
		}
		fds[n++] = fd;
	}
	closedir(d);
	return n;
}

/* Bit sig-1 set for every signal whose disposition is SIG_IGN. */
static uint64_t
ignored_signals(void)
{
	struct sigaction sa;
	uint64_t m = 0;
	int sig;

	for (sig = 1; sig < NSIGNALS; sig++)
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			m |= (uint64_t)1 << (sig - 1);
	return m;
}

static uint64_t
mask_bits(const sigset_t *set)
{
	uint64_t m = 0;
	int sig;

	for (sig = 1; sig < NSIGNALS; sig++)
		if (sigismember(set, sig) == 1)
			m |= (uint64_t)1 << (sig - 1);
	return m;
}

static int
oom_score_adj(void)
{
	char b[32] = "";
	int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	return n > 0 ? atoi(b) : 0;
}

/*
 * The request's body (cip_pyserver.Request): descriptor targets, umask, OOM
 * score, ignored and blocked signals, limits, argv, environment.
 */
static void
build_body(struct req *r, const int *fds, int nfds, const sigset_t *mask, char **argv)
{
	struct rlimit rl;
	mode_t um = umask(0);
	uint32_t argc = 0, envc = 0;
	int i;

	umask(um);
	put_u32(r, (uint32_t)nfds);
	for (i = 0; i < nfds; i++)
		put_u32(r, (uint32_t)fds[i]);
	put_u32(r, (uint32_t)um);
	put_u32(r, (uint32_t)oom_score_adj());
	put_u64(r, ignored_signals());
	put_u64(r, mask_bits(mask));
	put_u32(r, RLIMIT_NLIMITS);
	for (i = 0; i < RLIMIT_NLIMITS; i++) {
		if (getrlimit((__rlimit_resource_t)i, &rl) < 0)
			rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
		put_u64(r, rl.rlim_cur);
		put_u64(r, rl.rlim_max);
	}
	while (argv[argc])
		argc++;
	while (environ[envc])
		envc++;
	put_u32(r, argc);
	put_u32(r, envc);
	for (i = 0; i < (int)argc; i++)
		put_str(r, argv[i]);
	for (i = 0; i < (int)envc; i++)
		put_str(r, environ[i]);
}

/* Send the request, the cwd and fds riding on its first bytes; 0, or -1. */
static int
send_request(int sock, const struct req *body, int cwd, const int *fds, int nfds)
{
	unsigned char head[8];
	uint32_t len = (uint32_t)body->len;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (MAX_FDS + 1))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { head, sizeof(head) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)(nfds + 1)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	memcpy(head, "CIP1", 4);
	memcpy(head + 4, &len, 4);
	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)(nfds + 1));
	memcpy(CMSG_DATA(cm), &cwd, sizeof(int));
	memcpy(CMSG_DATA(cm) + sizeof(int), fds, sizeof(int) * (size_t)nfds);
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(head))
		return -1;
	return write_all(sock, body->p, body->len);
}

/* Forward sig to the forked process, or keep it until there is one. */
static void
on_signal(int sig)
{
	pid_t pid = (pid_t)child_pid;

	if (pid > 0)
		kill(pid, sig);
	else
		pending[sig] = 1;
}

/* Catch every signal that is not ignored; handled[sig] says which. */
static void
catch_signals(int *handled)
{
	struct sigaction sa = { .sa_handler = on_signal }, old;
	int sig;

	sigfillset(&sa.sa_mask);
	for (sig = 1; sig < NSIGNALS; sig++) {
		handled[sig] = 0;
		if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD)
			continue;
		if (sigaction(sig, NULL, &old) < 0 || old.sa_handler == SIG_IGN)
			continue;
		if (sigaction(sig, &sa, NULL) == 0)
			handled[sig] = 1;
	}
}

/* Read exactly n bytes; 0, or -1 at EOF or on error (signals are retried). */
static int
read_exact(int fd, void *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* The server lost track of pid: wait until it is gone, status unknown. */
static void __attribute__((noreturn))
lost_server(pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = { pfd, POLLIN, 0 };

	if (pfd >= 0)
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
	else
		while (kill(pid, 0) == 0)
			usleep(20000);
	fprintf(stderr, "python3: the Python server went away; exit status unknown\n");
	_exit(1);
}

/* End as status says the forked process ended: the same code, or the same signal. */
static void __attribute__((noreturn))
exit_like(int status)
{
	int sig;
	sigset_t one;

	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		signal(sig, SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* Signals that came before the pid did. */
static void
flush_pending(pid_t pid)
{
	int sig;

	for (sig = 1; sig < NSIGNALS; sig++)
		if (pending[sig]) {
			pending[sig] = 0;
			kill(pid, sig);
		}
}

int
main(int argc, char **argv)
{
	static int fds[MAX_FDS], handled[NSIGNALS];
	struct req body = { 0 };
	unsigned char b[5];
	sigset_t mask;
	uint32_t pid;
	int32_t status;
	int sock, cwd, nfds, check_hello;

	(void)argc;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	/* The server's children are the sandbox user, and only that. */
	if (!is_sandbox_user() || (sock = connect_server(&check_hello)) < 0 ||
	    (check_hello && read_hello_from_root(sock) < 0))
		become_real(argv, NULL, NULL);
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	nfds = inherited_fds(sock, fds);
	if (cwd < 0 || nfds < 0)
		become_real(argv, NULL, NULL);
	build_body(&body, fds, nfds, &mask, argv);
	catch_signals(handled);
	if (body.failed || send_request(sock, &body, cwd, fds, nfds) < 0 ||
	    (!check_hello && (read_exact(sock, b, 1) < 0 || b[0] != 'H')) ||
	    read_exact(sock, b, 1) < 0 || b[0] != 'R' || read_exact(sock, &pid, 4) < 0) {
		close(sock);
		close(cwd);
		become_real(argv, &mask, handled);
	}
	free(body.p);
	close(cwd);
	child_pid = (sig_atomic_t)pid;
	flush_pending((pid_t)pid);
	if (read_exact(sock, b, 1) < 0 || b[0] != 'S' || read_exact(sock, &status, 4) < 0)
		lost_server((pid_t)pid);
	exit_like(status);
}
