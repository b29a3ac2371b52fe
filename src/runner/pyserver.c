/*
 * The pre-loaded Python server as the runner keeps it: started when the
 * sandbox starts, when CIP_PYTHON_PRELOAD (from the proxy's
 * CI_PYTHON_PRELOAD) names modules; restarted when it has died, with a
 * back-off so a server that cannot start does not loop; its state, read
 * from the status lines it writes on its stdout, told in HELLO replies.
 *
 * The server runs as root in its own session, so the sandbox user's
 * processes can neither signal nor trace it, and the end-of-run sweep
 * (kill as the sandbox user) leaves it alone while it kills every process
 * forked from it.  Runs never wait for it: until it says "ready",
 * /usr/bin/python3 is the real interpreter.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "runner.h"

#define PYSERVER_SCRIPT	"/opt/cip/pyserver/cip_pyserver.py"
#define REAL_PYTHON	"/usr/bin/python3.real"
#define PRELOAD_ENV	"CIP_PYTHON_PRELOAD"
#define MAX_MODULES	64
/* A server that dies sooner than this after its start is restarted later and later. */
#define QUICK_DEATH_MS	10000
#define BACKOFF_MIN_MS	2000
#define BACKOFF_MAX_MS	60000

struct pyserver {
	char *modules;			/* CIP_PYTHON_PRELOAD, split in place */
	char *argv[MAX_MODULES + 3];
	char **envp;			/* the runner's environment, HOME made root's */
	pid_t pid;			/* 0 when not running */
	int status_fd;			/* its stdout; -1 when not running */
	char line[256];			/* the status line being read */
	size_t linelen;
	char state[128];
	long long started_ms, next_start_ms, backoff_ms;
};

extern char **environ;

/* The server's argv and environment from the runner's; 0, or -1 with nothing started. */
static int
prepare(struct pyserver *ps, const char *list)
{
	size_t n = 0, i, envc = 0;
	char *tok, *save = NULL;

	if (!(ps->modules = strdup(list)))
		return -1;
	ps->argv[n++] = "/usr/bin/python3";	/* sys.executable, as every run's */
	ps->argv[n++] = PYSERVER_SCRIPT;
	for (tok = strtok_r(ps->modules, ", ", &save); tok && n < MAX_MODULES + 2;
	    tok = strtok_r(NULL, ", ", &save))
		ps->argv[n++] = tok;
	ps->argv[n] = NULL;
	while (environ[envc])
		envc++;
	if (!(ps->envp = calloc(envc + 2, sizeof(*ps->envp))))
		return -1;
	for (i = n = 0; i < envc; i++)
		if (strncmp(environ[i], PRELOAD_ENV "=", sizeof(PRELOAD_ENV)) != 0 &&
		    strncmp(environ[i], "HOME=", 5) != 0)
			ps->envp[n++] = environ[i];
	/* Not /mnt/data: Python would run the sandbox user's ~/.local .pth files as root. */
	ps->envp[n++] = "HOME=/nonexistent";
	return 0;
}

struct pyserver *
pyserver_new(void)
{
	const char *list = getenv(PRELOAD_ENV);
	struct pyserver *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->status_fd = -1;
	ps->backoff_ms = BACKOFF_MIN_MS;
	if (!list || !list[strspn(list, ", ")]) {
		snprintf(ps->state, sizeof(ps->state), "off");
		return ps;
	}
	if (prepare(ps, list) < 0) {
		snprintf(ps->state, sizeof(ps->state), "off: out of memory");
		free(ps->modules);
		ps->modules = NULL;
		return ps;
	}
	snprintf(ps->state, sizeof(ps->state), "stopped");
	return ps;
}

void
pyserver_free(struct pyserver *ps)
{
	if (!ps)
		return;
	if (ps->status_fd >= 0)
		close(ps->status_fd);
	free(ps->envp);
	free(ps->modules);
	free(ps);
}

/* In the child: the server's process, then exec; never returns. */
static void __attribute__((noreturn))
exec_server(const struct pyserver *ps, int status_w)
{
	sigset_t none;
	int fd = open("/dev/null", O_RDONLY);
	int sig;

	setsid();
	if (chdir("/") < 0 || fd < 0 || dup2(fd, 0) < 0 || dup2(status_w, 1) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* As every run has it (child_exec in run.c). */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	execve(REAL_PYTHON, ps->argv, ps->envp);
	dprintf(2, "runner: cannot start the Python server: %s\n", strerror(errno));
	_exit(127);
}

static void
start(struct pyserver *ps, long long now)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0)
		exec_server(ps, p[1]);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	ps->pid = pid;
	ps->status_fd = p[0];
	ps->linelen = 0;
	ps->started_ms = now;
	snprintf(ps->state, sizeof(ps->state), "warming");
}

void
pyserver_tend(struct pyserver *ps)
{
	long long now = clock_mono_ms();

	if (!ps->modules || ps->pid || now < ps->next_start_ms)
		return;
	start(ps, now);
}

int
pyserver_fd(const struct pyserver *ps)
{
	return ps->status_fd;
}

/* One status line: "ready <pid>" or "note <text>". */
static void
status_line(struct pyserver *ps, const char *l)
{
	if (strncmp(l, "ready", 5) == 0) {
		snprintf(ps->state, sizeof(ps->state), "ready");
		ps->backoff_ms = BACKOFF_MIN_MS;
	} else if (strncmp(l, "note ", 5) == 0) {
		fprintf(stderr, "runner: python server: %.200s\n", l + 5);
	}
}

/* It is gone (its stdout closed): restart soon, or later if it died young. */
static void
ended(struct pyserver *ps)
{
	long long now = clock_mono_ms();

	close(ps->status_fd);
	ps->status_fd = -1;
	ps->pid = 0;
	if (now - ps->started_ms < QUICK_DEATH_MS) {
		ps->next_start_ms = now + ps->backoff_ms;
		ps->backoff_ms = ps->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
		    ps->backoff_ms * 2;
	} else {
		ps->next_start_ms = now;
	}
	snprintf(ps->state, sizeof(ps->state), "restarting");
}

void
pyserver_readable(struct pyserver *ps)
{
	char b[512];
	ssize_t n, i;

	for (;;) {
		n = read(ps->status_fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ended(ps);
			return;
		}
		for (i = 0; i < n; i++) {
			if (b[i] != '\n') {
				if (ps->linelen < sizeof(ps->line) - 1)
					ps->line[ps->linelen++] = b[i];
				continue;
			}
			ps->line[ps->linelen] = '\0';
			status_line(ps, ps->line);
			ps->linelen = 0;
		}
	}
}

int
pyserver_wait_ms(const struct pyserver *ps)
{
	long long left;

	if (!ps->modules || ps->pid)
		return -1;
	left = ps->next_start_ms - clock_mono_ms();
	return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

const char *
pyserver_state(const struct pyserver *ps)
{
	return ps->state;
}
