/*
 * Fuzz target: the Docker stream demuxer (demux.c), fed the input in
 * chunks whose sizes the input's first bytes choose.  Asserts, against a
 * reference parse of the whole input at once, that every chunking yields
 * the same payload bytes per stream and the same verdict; that the sink
 * never gets more bytes than were fed, nor a stream other than 0, 1, 2;
 * and that at_boundary holds exactly when the input ended between frames.
 */
#include "config.h"

#include <string.h>

#include "demux.h"
#include "fuzz.h"

struct seen {
	size_t bytes[3];
	size_t total;
	unsigned char *copy;	/* every payload byte, in order */
	size_t cap;
};

static int
sink(int stream, const char *p, size_t n, void *ctx)
{
	struct seen *s = ctx;

	FUZZ_ASSERT(stream >= 0 && stream <= 2);
	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(s->total + n <= s->cap);
	memcpy(s->copy + s->total, p, n);
	s->bytes[stream] += n;
	s->total += n;
	return 0;
}

/* The frames of in, parsed at once by the format's definition: 0, or -1 if a header is bad. */
static int
reference(const unsigned char *in, size_t n, struct seen *s, int *boundary)
{
	size_t o = 0, len, take;

	*boundary = 1;
	while (o < n) {
		if (n - o < 8) {
			*boundary = 0;
			return 0;
		}
		if (in[o] > 2 || in[o + 1] || in[o + 2] || in[o + 3])
			return -1;
		len = (size_t)in[o + 4] << 24 | (size_t)in[o + 5] << 16 | (size_t)in[o + 6] << 8 |
		    in[o + 7];
		take = len < n - o - 8 ? len : n - o - 8;
		if (take) {
			memcpy(s->copy + s->total, in + o + 8, take);
			s->bytes[in[o]] += take;
			s->total += take;
		}
		o += 8 + take;
		if (take < len)
			*boundary = 0;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen got = { { 0 }, 0, NULL, 0 }, want = { { 0 }, 0, NULL, 0 };
	const unsigned char *in;
	struct demux d;
	size_t n, o = 0, step;
	uint8_t seed;
	int rc = 0, want_rc, want_boundary;

	if (size < 1)
		return 0;
	seed = data[0];		/* the chunk sizes */
	in = data + 1;
	n = size - 1;
	got.cap = want.cap = n;
	got.copy = malloc(n + 1);
	want.copy = malloc(n + 1);
	if (!got.copy || !want.copy)
		goto out;
	want_rc = reference(in, n, &want, &want_boundary);
	demux_init(&d, sink, &got);
	while (o < n && rc == 0) {
		step = seed == 0 ? n : (size_t)(seed % 17) + 1;
		seed = (uint8_t)(seed * 31 + 7);
		if (step > n - o)
			step = n - o;
		rc = demux_feed(&d, (const char *)in + o, step);
		o += step;
	}
	FUZZ_ASSERT(got.total <= n);
	FUZZ_ASSERT(rc == want_rc);
	/* Stopped at a bad header or not, what came before it was passed on, no more. */
	FUZZ_ASSERT(got.total == want.total);
	FUZZ_ASSERT(memcmp(got.bytes, want.bytes, sizeof(got.bytes)) == 0);
	FUZZ_ASSERT(memcmp(got.copy, want.copy, got.total) == 0);
	if (rc == 0)
		FUZZ_ASSERT(demux_at_boundary(&d) == want_boundary);
out:
	free(got.copy);
	free(want.copy);
	return 0;
}
