/*
 * Fuzz target: multipart uploads as the daemon reads them.  http.c's
 * server (its MHD post processor and form_iterator, nothing of it
 * exposed) runs in-process on a loopback port with one form route; each
 * input is "BOUNDARY\nBODY", sent as a POST with that boundary over a
 * real connection.  The route's handler asserts what upload handlers rely
 * on: every part has a name and NUL-terminated data of the length it
 * says; a part over its cap (1000 bytes for files here) kept nothing and
 * says too_big; the parts never hold more bytes than the body had; a
 * field found by name is the first plain part of that name.  The client
 * asserts that every request is answered, within 10 s (tried twice: a
 * connection the server has not yet let go of may still count against
 * its connection limit, and then a new one is closed unanswered).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cfg.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "names.h"

#define FILE_CAP 1000

static struct cfg cfg = { .auth = CFG_AUTH_NONE, .host = "127.0.0.1",
    .max_file_bytes = FILE_CAP, .max_request_bytes = 1 << 20, .max_connections = 64,
    .max_active_requests = 16, .header_timeout_s = 10, .body_timeout_s = 10 };
static size_t body_len;		/* of the request being sent; read by the handler */

static void
handle_form(struct http_req *req, void *app)
{
	const struct http_part *p, *q;
	size_t i, j, sum = 0, n = http_req_nparts(req);
	const char *f;

	(void)app;
	for (i = 0; i < n; i++) {
		p = http_req_part(req, i);
		FUZZ_ASSERT(p && p->name && p->data && p->data[p->len] == '\0');
		FUZZ_ASSERT(!p->too_big || p->len == 0);
		FUZZ_ASSERT(p->len <= (p->filename ? FILE_CAP : 65536));
		sum += p->len;
		/* What the upload route does with a file name. */
		if (p->filename)
			(void)name_problem(p->filename, strlen(p->filename));
		if (!p->filename && (f = http_req_field(req, p->name))) {
			for (j = 0; j <= i; j++)
				if (!(q = http_req_part(req, j))->filename && strcmp(q->name, p->name) == 0)
					break;
			FUZZ_ASSERT(j <= i && f == q->data);
		}
	}
	FUZZ_ASSERT(sum <= body_len);
	http_reply_json(req, 200, json_object_new_int((int)n));
}

static const struct http_route routes[] = {
	{ "POST", "/upload", handle_form, HTTP_PUBLIC, HTTP_BODY_FORM },
};

/* A free loopback port, as the kernel picks one. */
static int
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	/* MHD's complaints about malformed forms are the point here, not news. */
	log_setup(LOG_ERROR, LOG_TEXT);
	if ((cfg.port = free_port()) < 0 ||
	    !http_start(&cfg, NULL, routes, 1, NULL, NULL, err, sizeof(err))) {
		fprintf(stderr, "fuzz_multipart: cannot start the server on port %d: %s\n", cfg.port,
		    cfg.port < 0 ? "no port" : err);
		abort();
	}
	return 0;
}

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * connect() that outlives signals: libFuzzer's -timeout watchdog is a
 * SIGALRM without SA_RESTART, and a connect it interrupts goes on in the
 * kernel, so wait for it instead of calling connect again.  A failed
 * connect in a CI run (no errno kept) was most likely this.
 */
static int
connect_loopback(int fd, const struct sockaddr_in *sa)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t el = sizeof(int);
	int err = 0, r;

	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EINTR)
		return -1;
	while ((r = poll(&pfd, 1, 10000)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -1;
	errno = err;
	return err ? -1 : 0;
}

/* Send one request; the bytes of the answer's start in reply, how many. */
static size_t
post(const char *head, size_t hl, const char *body, size_t blen, char *reply, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 10, 0 };
	size_t got = 0;
	ssize_t r = 0;
	int fd, sent;

	sa.sin_port = htons((uint16_t)cfg.port);
	FUZZ_ASSERT((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/*
	 * Close with a reset: hundreds of connections a second left in
	 * TIME_WAIT use up the ephemeral ports within minutes.
	 */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
	if (connect_loopback(fd, &sa) < 0) {
		fprintf(stderr, "fuzz_multipart: connect: %s\n", strerror(errno));
		FUZZ_ASSERT(0);
	}
	/* The server may answer (400) and close before the body is all sent. */
	sent = send_all(fd, head, hl) == 0 && send_all(fd, body, blen) == 0;
	while (got < cap && ((r = recv(fd, reply + got, cap - got, 0)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			got += (size_t)r;
	if (!got)
		fprintf(stderr, "fuzz_multipart: no answer (body %s, recv: %s)\n",
		    sent ? "sent" : "not all sent", r < 0 ? strerror(errno) : "end of stream");
	close(fd);
	return got;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char head[512], reply[64];
	size_t blen, got;
	int hl;

	/* The boundary is a header value: one line, of the length RFC 2046 allows. */
	if (!nl || nl - data > 70 || memchr(data, '\r', (size_t)(nl - data)) ||
	    memchr(data, '\0', (size_t)(nl - data)))
		return 0;
	blen = size - (size_t)(nl - data) - 1;
	hl = snprintf(head, sizeof(head), "POST /upload HTTP/1.1\r\nHost: localhost\r\n"
	    "Content-Type: multipart/form-data; boundary=%.*s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", (int)(nl - data), (const char *)data, blen);
	body_len = blen;
	got = post(head, (size_t)hl, (const char *)nl + 1, blen, reply, sizeof(reply));
	if (got == 0) {
		usleep(100000);
		got = post(head, (size_t)hl, (const char *)nl + 1, blen, reply, sizeof(reply));
	}
	/* Every request is answered. */
	FUZZ_ASSERT(got >= 12 && memcmp(reply, "HTTP/1.1 ", 9) == 0);
	return 0;
}
