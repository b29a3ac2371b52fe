/*
 * The relay: started by the proxy as a hijacked exec, it joins the exec's
 * stdin/stdout to the runner's socket.  Ending it (proxy restart, engine
 * hiccup) leaves the runner and the container untouched.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdio.h"
#include "runner.h"

/* Copy one chunk from `from` to `to`; 0 on EOF or error. */
static int
pump(int from, int to)
{
	char b[65536];
	ssize_t n;

	do
		n = read(from, b, sizeof(b));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	return write_all(to, b, (size_t)n) == 0;
}

/* Join stdin and stdout to the runner's socket until either side ends; 0, or 1 on failure. */
int
relay_main(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pf[2];
	int fd;

	prctl(PR_SET_DUMPABLE, 0);
	signal(SIGPIPE, SIG_IGN);
	strcpy(sa.sun_path, RUNNER_SOCK);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "relay: cannot connect to %s: %s\n", RUNNER_SOCK, strerror(errno));
		return 1;
	}
	pf[0].fd = STDIN_FILENO;
	pf[0].events = POLLIN;
	pf[1].fd = fd;
	pf[1].events = POLLIN;
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pf[0].revents && !pump(STDIN_FILENO, fd))
			return 0;
		if (pf[1].revents && !pump(fd, STDOUT_FILENO))
			return 0;
	}
}
