/*
 * Running user code.  The child runs as the sandbox user in its own session
 * and process group, with stdin from /dev/null and capped stdout/stderr.
 * When the run ends (exit, timeout or output pipes closed) every process of
 * the sandbox user is killed, so nothing outlives its run, not even a
 * setsid() escapee.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fdio.h"
#include "runner.h"

/* After the main process is gone, how long stragglers may hold the pipes. */
#define DRAIN_GRACE_MS 2000
/* The longest line of tool calls a program may write. */
#define TOOL_LINE_MAX (4u << 20)
/* The program's end of the tool link. */
#define TOOL_FD 3

struct capture {
	int fd;
	char *data;
	size_t len, cap, total;
};

/*
 * The tool link of a RUN with tools=1: the runner's end of the program's
 * fd 3, and the line of calls being read from it.
 */
struct tool_link {
	int fd;
	char *buf;
	size_t len;
	int broken;		/* an over-long line, or no memory: the run is stopped */
	int eof;		/* the program closed its end */
};

extern char **environ;

/* Reap every exited child; if one is watch, store its status and set *reaped. */
void
reap_children(pid_t watch, int *status, int *reaped)
{
	pid_t p;
	int st;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (p == watch) {
			*status = st;
			*reaped = 1;
		}
}

/*
 * 1 if a process of the sandbox user exists: a live one, or with
 * with_zombies, one that has ended and is not yet reaped.
 */
static int
sandbox_alive(int with_zombies)
{
	char path[300], line[256];
	struct dirent *de;
	int found = 0, uid, zombie;
	DIR *d;
	FILE *f;

	if (!(d = opendir("/proc")))
		return 0;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		uid = -1;
		zombie = 0;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "State:", 6) == 0)
				zombie = strchr(line, 'Z') != NULL || strchr(line, 'X') != NULL;
			else if (strncmp(line, "Uid:", 4) == 0)
				uid = atoi(line + 4);
		}
		fclose(f);
		if (uid == SANDBOX_UID && (with_zombies || !zombie))
			found = 1;
	}
	closedir(d);
	return found;
}

/*
 * kill(-1) from PID 1 signals every process it may, except itself.  With
 * real and effective uid set to the sandbox user (saved uid kept 0, so we can
 * come back) that is exactly the sandbox user's processes: not the relays,
 * which run as root.  No fork is needed, so a fork bomb that fills the pids
 * cgroup cannot stop us.  Repeat until none is left: a bomb may fork between
 * two rounds.
 */
static int
kill_sandbox(pid_t watch, int *status, int *reaped)
{
	int round;

	for (round = 1; round <= 500; round++) {
		if (setresuid(SANDBOX_UID, SANDBOX_UID, 0) == 0) {
			kill(-1, SIGKILL);
			if (setresuid(0, 0, 0) != 0)
				abort();	/* cannot happen: saved uid is 0 */
		}
		prctl(PR_SET_DUMPABLE, 0);
		reap_children(watch, status, reaped);
		if (!sandbox_alive(0))
			break;
		usleep(round < 20 ? 1000 : 10000);
	}
	/*
	 * Then until the dead are reaped too (they reach PID 1, us, as
	 * orphans): under gVisor the user's RLIMIT_NPROC counts them, and the
	 * next run's bash met the cap after a fork bomb ("fork: retry").
	 */
	for (; round <= 500 && sandbox_alive(1); round++) {
		usleep(10000);
		reap_children(watch, status, reaped);
	}
	return round;
}

/*
 * Under gVisor the sandbox user's process cap is RLIMIT_NPROC, checked at
 * setresuid and execve, and it still counts what the last sweep killed
 * until those processes have ended (slowly there, on the ptrace platform):
 * after a fork bomb the next run's start failed with EAGAIN.  Try again
 * for up to 2 s, while PID 1 reaps them.
 */
static int
again_later(int *tries)
{
	if (errno != EAGAIN || (*tries)++ >= 200)
		return 0;
	usleep(10000);
	return 1;
}

/* In the child: exec argv as the sandbox user in cwd, out and err as its stdout and stderr. */
static void
child_exec(char **argv, char **envp, const char *cwd, int out, int err, int tool)
{
	sigset_t none;
	int fd, r, tries = 0;

	setsid();
	/* The kernel's OOM killer should pick user code, never the runner. */
	if ((fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) >= 0) {
		if (write(fd, "1000", 4) < 0)
			(void)0;
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
	    (tool >= 0 && tool != TOOL_FD && dup2(tool, TOOL_FD) < 0) ||
	    (tool == TOOL_FD && fcntl(TOOL_FD, F_SETFD, 0) < 0))
		_exit(127);
	close_range(tool >= 0 ? TOOL_FD + 1 : 3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (setgroups(0, NULL) < 0 || setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) < 0)
		r = -1;
	else
		while ((r = setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)) < 0 &&
		    again_later(&tries))
			;
	if (r < 0) {
		dprintf(2, "runner: cannot drop privileges: %s\n", strerror(errno));
		_exit(127);
	}
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	if (chdir(cwd) < 0) {
		dprintf(2, "runner: cannot enter %s: %s\n", cwd, strerror(errno));
		_exit(127);
	}
	umask(022);
	environ = envp;
	tries = 0;
	while (execvp(argv[0], argv) < 0 && again_later(&tries))
		;
	dprintf(2, "runner: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Collect the values of every field named key into a NULL-ended array. */
static char **
collect(const struct proto_msg *m, const char *key)
{
	size_t i, n = 0, total = proto_nfields(m);
	const char *k, *v;
	char **arr = calloc(total + 1, sizeof(*arr));

	if (!arr)
		return NULL;
	for (i = 0; i < total; i++) {
		k = proto_field(m, i, &v, NULL);
		if (strcmp(k, key) == 0)
			arr[n++] = (char *)v;
	}
	return arr;
}

/* Read what is there; keep up to cap bytes, count the rest.  0 at EOF. */
static int
capture_read(struct capture *c)
{
	char b[65536];
	size_t keep;
	ssize_t n;

	for (;;) {
		n = read(c->fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return 0;
		c->total += (size_t)n;
		keep = c->cap - c->len < (size_t)n ? c->cap - c->len : (size_t)n;
		memcpy(c->data + c->len, b, keep);
		c->len += keep;
	}
}

/* A buffer of cap bytes and a pipe for stdout and stderr each; 0, or -1 with errno. */
static int
captures_open(struct capture *c, size_t cap, int pipes[2][2])
{
	int i;

	for (i = 0; i < 2; i++) {
		c[i].cap = cap;
		if (!(c[i].data = malloc(cap ? cap : 1)))
			return -1;
		if (pipe2(pipes[i], O_CLOEXEC) < 0)
			return -1;
		c[i].fd = pipes[i][0];
		fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
	}
	return 0;
}

/* 1 if a whole message already waits in w's decoder: during a run, a CANCEL. */
static int
cancel_buffered(const struct run_watch *w)
{
	struct proto_msg *m;

	if (proto_decoder_next(w->dec, &m) != 1)
		return 0;
	proto_msg_free(m);
	return 1;
}

/* 1 if the proxy cancelled the run: a CANCEL (any message, in fact) or the end of its connection. */
static int
cancel_arrived(const struct run_watch *w)
{
	struct proto_msg *m;
	char b[4096];
	ssize_t n;

	do
		n = read(w->fd, b, sizeof(b));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0 || proto_decoder_feed(w->dec, b, (size_t)n) < 0)
		return 1;
	if (proto_decoder_next(w->dec, &m) != 1)
		return 0;
	proto_msg_free(m);
	return 1;
}

/*
 * After a poll of pf (the two output pipes, then the signalfd): keep what
 * the pipes hold (closing those at EOF), empty the signalfd, and reap.
 */
static void
drain_and_reap(struct capture *c, const struct pollfd *pf, int sigfd, pid_t pid, int *status,
    int *reaped)
{
	struct signalfd_siginfo si;
	int i;

	for (i = 0; i < 2; i++)
		if (c[i].fd >= 0 && pf[i].revents && !capture_read(&c[i])) {
			close(c[i].fd);
			c[i].fd = -1;
		}
	if (pf[2].revents)
		while (read(sigfd, &si, sizeof(si)) == sizeof(si))
			;
	reap_children(pid, status, reaped);
}

/* Send m to the proxy on w's connection; 0, or -1. */
static int
send_to_proxy(const struct run_watch *w, const struct proto_msg *m)
{
	unsigned char *frame;
	size_t len;
	int rc;

	if (proto_encode(m, 0, &frame, &len) < 0)
		return -1;
	rc = write_all(w->fd, frame, len);
	free(frame);
	return rc;
}

/* Read what the program wrote on its tool link; 0, or -1 once the link ended. */
static int
tool_read(struct tool_link *tl)
{
	ssize_t n;

	if (tl->len == TOOL_LINE_MAX) {
		tl->broken = 1;
		return -1;
	}
	if (!tl->buf && !(tl->buf = malloc(TOOL_LINE_MAX))) {
		tl->broken = 1;
		return -1;
	}
	do
		n = read(tl->fd, tl->buf + tl->len, TOOL_LINE_MAX - tl->len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		tl->eof = 1;	/* the program closed fd 3: no more calls */
		return -1;
	}
	tl->len += (size_t)n;
	return 0;
}

/* The length of the first complete line of calls in tl (its newline included), or 0. */
static size_t
tool_line(const struct tool_link *tl)
{
	const char *nl = tl->len ? memchr(tl->buf, '\n', tl->len) : NULL;

	return nl ? (size_t)(nl - tl->buf) + 1 : 0;
}

/* Answer the RUN early: the program waits for the results of the calls in line. */
static int
tool_calls_out(const struct run_watch *w, const char *line, size_t n)
{
	struct proto_msg *m = proto_msg_new(PROTO_OK);
	int rc = -1;

	if (m && proto_add_u64(m, "pending", 1) == 0 && proto_add(m, "calls", line, n) == 0)
		rc = send_to_proxy(w, m);
	proto_msg_free(m);
	return rc;
}

/* How long the program may take to read its results before the run is stopped. */
#define TOOL_READ_WAIT_MS 10000

/* Write all of p to the program's non-blocking tool link, waiting for it to read; 0, or -1. */
static int
tool_write(struct tool_link *tl, const char *p, size_t len)
{
	struct pollfd pf = { tl->fd, POLLOUT, 0 };
	ssize_t n;

	while (len) {
		n = write(tl->fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* Nobody reads (the caller died, a straggler holds fd 3): do not wait forever. */
		if (n < 0 && errno == EAGAIN && poll(&pf, 1, TOOL_READ_WAIT_MS) > 0)
			continue;
		return -1;
	}
	return 0;
}

/* Hand a RESUME's results to the program, as one line; 0, or -1. */
static int
tool_results_in(struct tool_link *tl, const struct proto_msg *resume)
{
	size_t len;
	const char *r = proto_get(resume, "results", &len);

	if (!r || memchr(r, '\n', len))
		return -1;
	return tool_write(tl, r, len) == 0 && tool_write(tl, "\n", 1) == 0 ? 0 : -1;
}

/*
 * The program wrote a line of n bytes of calls: tell the proxy, then wait,
 * draining the output pipes and reaping, for its RESUME (the results go to
 * the program) or a CANCEL.  1 if the run is to stop: cancelled, or the
 * proxy gone.
 */
static int
tool_pause(struct tool_link *tl, size_t n, const struct run_watch *w, struct capture *c,
    int sigfd, pid_t pid, int *status, int *reaped)
{
	struct proto_msg *m;
	struct pollfd pf[4];
	char b[65536];
	ssize_t got;
	int i, r, stop = -1;

	if (tool_calls_out(w, tl->buf, n - 1) < 0)
		return 1;
	memmove(tl->buf, tl->buf + n, tl->len - n);
	tl->len -= n;
	while (stop < 0) {
		/* A message already read (with an earlier one) is taken before waiting for more. */
		if ((r = proto_decoder_next(w->dec, &m)) < 0)
			return 1;
		if (r == 1) {
			stop = proto_msg_type(m) != PROTO_RESUME || tool_results_in(tl, m) < 0;
			proto_msg_free(m);
			continue;
		}
		for (i = 0; i < 2; i++) {
			pf[i].fd = c[i].fd;
			pf[i].events = POLLIN;
		}
		pf[2].fd = sigfd;
		pf[2].events = POLLIN;
		pf[3].fd = w->fd;
		pf[3].events = POLLIN;
		if (poll(pf, 4, -1) < 0 && errno != EINTR)
			return 1;
		drain_and_reap(c, pf, sigfd, pid, status, reaped);
		if (!pf[3].revents)
			continue;
		do
			got = read(w->fd, b, sizeof(b));
		while (got < 0 && errno == EINTR);
		if (got <= 0 || proto_decoder_feed(w->dec, b, (size_t)got) < 0)
			return 1;
	}
	return stop;
}

/* Wait for the run to end; returns the wait status, sets *timed_out or *cancelled. */
static int
supervise(pid_t pid, struct capture *c, int sigfd, long long deadline, const struct run_watch *w,
    struct tool_link *tl, int *timed_out, int *cancelled)
{
	struct pollfd pf[5];
	long long paused;
	size_t line;
	long long now, grace = 0;
	int status = 0, reaped = 0, swept = 0, stopped = 0, wait_ms, i;

	for (;;) {
		now = clock_mono_ms();
		if (!reaped || !swept) {
			if (!stopped && (*cancelled || now >= deadline)) {
				stopped = 1;
				*timed_out = !*cancelled;
				kill_sandbox(pid, &status, &reaped);
				swept = 1;
			} else if (reaped && !swept) {
				/* Main process gone: its leftovers go too. */
				kill_sandbox(pid, &status, &reaped);
				swept = 1;
			}
			if (swept && !grace)
				grace = now + DRAIN_GRACE_MS;
		}
		if (reaped && c[0].fd < 0 && c[1].fd < 0)
			break;
		if (grace && now >= grace) {
			/* Pipes still held after the kill: give up on them. */
			for (i = 0; i < 2; i++)
				if (c[i].fd >= 0) {
					close(c[i].fd);
					c[i].fd = -1;
				}
			if (!reaped && waitpid(pid, &status, 0) == pid)
				reaped = 1;
			break;
		}
		wait_ms = (int)((grace ? grace : deadline) - now);
		if (!swept && wait_ms > (int)(deadline - now))
			wait_ms = (int)(deadline - now);
		for (i = 0; i < 2; i++) {
			pf[i].fd = c[i].fd;
			pf[i].events = POLLIN;
		}
		pf[2].fd = sigfd;
		pf[2].events = POLLIN;
		pf[3].fd = w && !*cancelled ? w->fd : -1;
		pf[3].events = POLLIN;
		/* After the sweep no call goes out: its program is gone. */
		pf[4].fd = tl && !tl->eof && !swept ? tl->fd : -1;
		pf[4].events = POLLIN;
		if (poll(pf, 5, wait_ms > 0 ? wait_ms : 0) < 0 && errno != EINTR)
			break;
		if (pf[3].revents && cancel_arrived(w))
			*cancelled = 1;
		if (pf[4].revents && tool_read(tl) < 0 && tl->broken)
			*cancelled = 1;
		while (tl && w && !swept && !*cancelled && (line = tool_line(tl))) {
			/* The run's clock stops while the client runs the tools. */
			paused = clock_mono_ms();
			if (tool_pause(tl, line, w, c, sigfd, pid, &status, &reaped))
				*cancelled = 1;
			deadline += clock_mono_ms() - paused;
			if (!*cancelled && cancel_buffered(w))
				*cancelled = 1;
		}
		drain_and_reap(c, pf, sigfd, pid, &status, &reaped);
	}
	return status;
}

/*
 * No process of the sandbox user outlives its run: each run's end sweeps
 * them.  Under gVisor one can still appear after that sweep, from a fork
 * that was under way when its parent was killed (1 in 4 fork bombs left
 * ~100 of them forking on, and the next run's bash met the process cap).
 * So a run starts by sweeping what is left: between runs there is nothing
 * of the user's to keep (the pre-loaded Python server runs as root).
 */
static void
sweep_leftovers(void)
{
	int status, reaped = 0;

	if (sandbox_alive(1))
		kill_sandbox(-1, &status, &reaped);
}

/* Run the request's argv as the sandbox user; rep gets its status and output.  0, or -1. */
int
run_command(const struct proto_msg *req, struct proto_msg *rep, struct rerr *e, int sigfd,
    const struct run_watch *w)
{
	struct capture c[2];
	int pipes[2][2] = { { -1, -1 }, { -1, -1 } };
	char **argv = NULL, **envp = NULL;
	const char *cwd = proto_get(req, "cwd", NULL);
	uint64_t timeout_ms = 30000, max_output = 65536;
	struct tool_link tl = { -1, NULL, 0, 0, 0 };
	int tool_pair[2] = { -1, -1 };
	uint64_t tools = 0;
	long long start;
	int status, timed_out = 0, cancelled = 0, i, rc = 0;
	pid_t pid;

	memset(c, 0, sizeof(c));
	c[0].fd = c[1].fd = -1;
	proto_get_u64(req, "timeout_ms", &timeout_ms);
	proto_get_u64(req, "max_output", &max_output);
	if (max_output > (64u << 20))
		max_output = 64u << 20;
	argv = collect(req, "argv");
	envp = collect(req, "env");
	if (!argv || !envp || !argv[0]) {
		rc = rerr_set(e, "run: no argv");
		goto out;
	}
	if (captures_open(c, (size_t)max_output, pipes) < 0) {
		rc = rerr_set(e, "run: %s", strerror(errno));
		goto out;
	}
	proto_get_u64(req, "tools", &tools);
	if (tools && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tool_pair) < 0) {
		rc = rerr_set(e, "run: tool link: %s", strerror(errno));
		goto out;
	}
	tl.fd = tool_pair[0];
	if (tl.fd >= 0)
		fcntl(tl.fd, F_SETFL, O_NONBLOCK);
	sweep_leftovers();
	start = clock_mono_ms();
	pid = fork();
	if (pid < 0) {
		rc = rerr_set(e, "run: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, envp, cwd ? cwd : RUNNER_WORKDIR, pipes[0][1], pipes[1][1],
		    tool_pair[1]);
	close(pipes[0][1]);
	close(pipes[1][1]);
	pipes[0][1] = pipes[1][1] = -1;
	if (tool_pair[1] >= 0)
		close(tool_pair[1]);
	tool_pair[1] = -1;
	status = supervise(pid, c, sigfd, start + (long long)timeout_ms, w, tools ? &tl : NULL,
	    &timed_out, &cancelled);
	if (tl.broken && proto_add_str(rep, "tool_error", "the program's line of tool calls "
	    "was over 4 MiB") < 0)
		rc = rerr_set(e, "run: out of memory for the reply");

	if ((proto_add_u64(rep, "exit_code", WIFEXITED(status) ? (uint64_t)WEXITSTATUS(status) :
	    WIFSIGNALED(status) ? 128 + (uint64_t)WTERMSIG(status) : 255) |
	    proto_add_u64(rep, "signal", WIFSIGNALED(status) ? (uint64_t)WTERMSIG(status) : 0) |
	    proto_add_u64(rep, "timed_out", (uint64_t)timed_out) |
	    proto_add_u64(rep, "cancelled", (uint64_t)cancelled) |
	    proto_add_u64(rep, "wall_ms", (uint64_t)(clock_mono_ms() - start)) |
	    proto_add(rep, "stdout", c[0].data, c[0].len) |
	    proto_add(rep, "stderr", c[1].data, c[1].len) |
	    proto_add_u64(rep, "stdout_total", c[0].total) |
	    proto_add_u64(rep, "stderr_total", c[1].total)) < 0)
		rc = rerr_set(e, "run: out of memory for the reply");
out:
	for (i = 0; i < 2; i++) {
		if (pipes[i][1] >= 0)
			close(pipes[i][1]);
		if (c[i].fd >= 0)
			close(c[i].fd);
		free(c[i].data);
	}
	for (i = 0; i < 2; i++)
		if (tool_pair[i] >= 0)
			close(tool_pair[i]);
	free(tl.buf);
	free(argv);
	free(envp);
	return rc;
}
