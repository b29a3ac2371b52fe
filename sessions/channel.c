/*
 * A channel to one container's runner (see channel.h): requests framed
 * out, replies demultiplexed and decoded in, over a stream it owns.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "buf.h"
#include "channel.h"
#include "demux.h"
#include "log.h"

struct channel {
	const struct channel_stream_ops *ops;
	void *st;
	struct demux dm;
	struct proto_decoder *dec;
	struct buf relay_err;	/* what the relay wrote to stderr */
	int broken;
};

/* Demux sink: stdout feeds the reply decoder, stderr is kept as the relay's own. */
static int
channel_sink(int stream, const char *p, size_t n, void *ctx)
{
	struct channel *ch = ctx;

	if (stream == 1)
		return proto_decoder_feed(ch->dec, p, n);
	buf_add(&ch->relay_err, p, n);
	return 0;
}

/* 1 if a channel that waited unused is still sound; else 0, and it is marked broken. */
int
channel_idle_ok(struct channel *ch)
{
	/* The runner never speaks unasked: anything readable is an EOF or worse. */
	if (!ch->broken && !ch->ops->quiet(ch->st))
		ch->broken = 1;
	return !ch->broken;
}

/* What the relay wrote to its stderr so far, borrowed; "" if nothing. */
const char *
channel_stderr(const struct channel *ch)
{
	return ch->relay_err.data ? ch->relay_err.data : "";
}

/* Send req and wait for its reply; 0, or -errno, after which the channel is broken. */
/* Tell the runner to stop the RUN in progress; 0, or -errno (the channel is then broken). */
static int
send_cancel(struct channel *ch)
{
	struct proto_msg *m = proto_msg_new(PROTO_CANCEL);
	unsigned char *frame;
	size_t len;
	int r;

	if (!m || proto_encode(m, 1, &frame, &len) < 0) {
		proto_msg_free(m);
		return -ENOMEM;
	}
	proto_msg_free(m);
	r = ch->ops->send(ch->st, frame, len, 1000);
	free(frame);
	return r;
}

int
channel_call(struct channel *ch, const struct proto_msg *req, struct proto_msg **rep,
    int timeout_ms, const struct abort_check *ab)
{
	long long deadline = clock_mono_ms() + timeout_ms, heard = clock_mono_ms();
	unsigned char *frame;
	char b[65536];
	size_t len;
	long n;
	int r, wait, cancelled = 0;

	*rep = NULL;
	if (ch->broken)
		return -EPIPE;
	if (proto_encode(req, 1, &frame, &len) < 0)
		return -ENOMEM;
	/* One send of the whole frame: engines scan split bytes for detach keys. */
	r = ch->ops->send(ch->st, frame, len, timeout_ms);
	free(frame);
	if (r < 0)
		goto broken;
	for (;;) {
		r = proto_decoder_next(ch->dec, rep);
		if (r == 1)
			return 0;
		if (r < 0) {
			r = -EPROTO;
			goto broken;
		}
		wait = (int)(deadline - clock_mono_ms());
		if (wait < 0)
			wait = 0;
		if (ab && !cancelled && wait > CHANNEL_ABORT_POLL_MS)
			wait = CHANNEL_ABORT_POLL_MS;
		if (ch->ops->alive && wait > CHANNEL_ALIVE_POLL_MS)
			wait = CHANNEL_ALIVE_POLL_MS;
		n = ch->ops->recv(ch->st, b, sizeof(b), wait);
		if (n == -ETIMEDOUT && clock_mono_ms() < deadline) {
			if (ch->ops->alive && clock_mono_ms() - heard >= CHANNEL_ALIVE_POLL_MS) {
				if (!ch->ops->alive(ch->st)) {
					r = -ECONNRESET;
					goto broken;
				}
				heard = clock_mono_ms();
			}
			if (ab && !cancelled && abort_fired(ab)) {
				cancelled = 1;
				if ((r = send_cancel(ch)) < 0)
					goto broken;
			}
			continue;
		}
		if (n <= 0) {
			r = n == 0 ? -ECONNRESET : (int)n;
			goto broken;
		}
		heard = clock_mono_ms();
		if (demux_feed(&ch->dm, b, (size_t)n) < 0) {
			r = -EPROTO;
			goto broken;
		}
	}
broken:
	ch->broken = 1;
	return r;
}

/* Close the channel's stream and free the channel; NULL is fine. */
void
channel_close(struct channel *ch)
{
	if (!ch)
		return;
	if (ch->st)
		ch->ops->close(ch->st);
	proto_decoder_free(ch->dec);
	buf_free(&ch->relay_err);
	free(ch);
}

/* A channel over st once its runner answered hello; st is closed on failure too. */
int
channel_open_stream(const struct channel_stream_ops *ops, void *st, int timeout_ms,
    struct channel **out, struct docker_err *err)
{
	struct proto_msg *hello = NULL, *rep = NULL;
	struct channel *ch;
	int rc;

	*out = NULL;
	if (!(ch = calloc(1, sizeof(*ch))) || !(ch->dec = proto_decoder_new(PROTO_MAX_FRAME))) {
		free(ch);
		ops->close(st);
		return DOCKER_ENOMEM;
	}
	ch->ops = ops;
	ch->st = st;
	buf_init(&ch->relay_err, 4096);
	demux_init(&ch->dm, channel_sink, ch);
	if (!(hello = proto_msg_new(PROTO_HELLO))) {
		rc = DOCKER_ENOMEM;
		goto fail;
	}
	if (channel_call(ch, hello, &rep, timeout_ms, NULL) < 0 || proto_msg_type(rep) != PROTO_OK) {
		snprintf(err->msg, sizeof(err->msg), "runner did not answer: %.300s",
		    channel_stderr(ch));
		err->status = 0;
		rc = DOCKER_EAPI;
		goto fail;
	}
	proto_msg_free(hello);
	proto_msg_free(rep);
	*out = ch;
	return DOCKER_OK;
fail:
	proto_msg_free(hello);
	proto_msg_free(rep);
	channel_close(ch);
	return rc;
}
