/*
 * A channel to the runner of one sandbox: a byte stream to its relay
 * (`runner relay`, started by sandbox.c as a hijacked exec), over which
 * requests and replies of proto.h travel.  One
 * channel serves one caller at a time (the session lock guarantees it).
 * Everything the runner says is checked by the caller: it is untrusted.
 */
#ifndef CIP_CHANNEL_H
#define CIP_CHANNEL_H

#include "docker.h"
#include "abort.h"
#include "proto.h"

struct channel;

/*
 * The byte stream under a channel: Docker's hijacked exec, or a unit
 * test's socket.  Bytes in reach the relay's stdin; bytes out come in
 * Docker's multiplexed framing (stdout: replies, stderr: the relay's own).
 * The calls are those of docker_stream_* (docker.h).
 */
struct channel_stream_ops {
	int (*send)(void *st, const void *buf, size_t len, int timeout_ms);
	long (*recv)(void *st, void *buf, size_t cap, int timeout_ms);
	int (*quiet)(void *st);
	void (*close)(void *st);
	/* Optional: 0 once the other end is known dead though the stream is open. */
	int (*alive)(void *st);
};

/*
 * A channel over st (now the channel's, closed on failure too), once the
 * runner answered hello within timeout_ms.  DOCKER_OK, DOCKER_ENOMEM, or
 * DOCKER_EAPI with err saying why the runner did not answer.
 */
int channel_open_stream(const struct channel_stream_ops *ops, void *st, int timeout_ms,
    struct channel **out, struct docker_err *err);

void channel_close(struct channel *ch);

/*
 * Send req and wait up to timeout_ms for the reply (caller frees *rep).
 * 0, or -errno: -ETIMEDOUT, -EPIPE/-ECONNRESET (channel lost), -EPROTO
 * (garbage from the runner).  After an error the channel is unusable.
 * With ab (a RUN), ab is asked every CHANNEL_ABORT_POLL_MS: once it fires
 * a CANCEL goes to the runner, which stops the run and answers as usual.
 */
#define CHANNEL_ABORT_POLL_MS 100
/* How long a stream may stay silent before ops->alive is asked. */
#define CHANNEL_ALIVE_POLL_MS 2000
int channel_call(struct channel *ch, const struct proto_msg *req, struct proto_msg **rep,
    int timeout_ms, const struct abort_check *ab);
/*
 * For a channel that waited unused (in the warm pool): 0, and marked
 * broken, if its stream has ended (an engine restart, the container gone).
 */
int channel_idle_ok(struct channel *ch);
/* The relay's own stderr (why a channel died), borrowed. */
const char *channel_stderr(const struct channel *ch);

#endif
