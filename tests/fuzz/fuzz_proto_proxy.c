/*
 * Fuzz target: the runner protocol as the proxy reads the runner's
 * replies.  The input is a byte stream from the runner, fed to the
 * decoder in chunks (sizes from the first byte) as the channel does; each
 * message is then read as the proxy reads a RUN reply (result_from_reply),
 * a LIST reply (workspace_parse) and an error reply.  Asserts: a decoded
 * message encodes (raw or armored) and decodes back to itself; a message
 * never holds more bytes than were fed; proto_get_u64 accepts exactly the
 * decimals that fit in 64 bits; a RUN result keeps stdout's bytes as sent,
 * with sane exit code, signal and totals; a listing keeps only clean
 * relative paths, sorted, each found again by workspace_find.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "proto.h"
#include "relpath.h"
#include "sessions_int.h"
#include "utf8.h"
#include "workspace.h"

static void
same_msg(const struct proto_msg *a, const struct proto_msg *b)
{
	const char *ka, *kb, *va, *vb;
	size_t i, la, lb;

	FUZZ_ASSERT(proto_msg_type(a) == proto_msg_type(b));
	FUZZ_ASSERT(proto_nfields(a) == proto_nfields(b));
	for (i = 0; i < proto_nfields(a); i++) {
		ka = proto_field(a, i, &va, &la);
		kb = proto_field(b, i, &vb, &lb);
		FUZZ_ASSERT(strcmp(ka, kb) == 0 && la == lb && memcmp(va, vb, la) == 0);
		FUZZ_ASSERT(va[la] == '\0');
	}
}

static void
round_trip(const struct proto_msg *m, int armored)
{
	struct proto_decoder *d = proto_decoder_new(PROTO_MAX_FRAME);
	struct proto_msg *back = NULL;
	unsigned char *frame;
	size_t len;

	if (!d || proto_encode(m, armored, &frame, &len) < 0) {
		proto_decoder_free(d);
		return;
	}
	FUZZ_ASSERT(proto_decoder_feed(d, frame, len) == 0);
	FUZZ_ASSERT(proto_decoder_next(d, &back) == 1);
	same_msg(m, back);
	FUZZ_ASSERT(proto_decoder_pending(d) == 0);
	proto_msg_free(back);
	proto_decoder_free(d);
	free(frame);
}

/* proto_get_u64 against strtoull on every field. */
static void
check_u64(const struct proto_msg *m)
{
	const char *k, *v;
	unsigned long long want;
	uint64_t got;
	size_t i, len, j;
	char *end;
	int digits;

	for (i = 0; i < proto_nfields(m); i++) {
		k = proto_field(m, i, &v, NULL);
		len = strlen(v);	/* as proto_get_u64 reads it: to the first NUL */
		if (proto_get(m, k, NULL) != v)
			continue;	/* a repeated key: proto_get_u64 reads the first */
		for (j = 0, digits = len > 0; j < len; j++)
			digits &= v[j] >= '0' && v[j] <= '9';
		errno = 0;
		want = digits ? strtoull(v, &end, 10) : 0;
		if (digits && errno == 0 && len <= 20)
			FUZZ_ASSERT(proto_get_u64(m, k, &got) == 0 && got == want);
		else
			FUZZ_ASSERT(proto_get_u64(m, k, &got) < 0);
	}
}

static void
check_run_reply(const struct proto_msg *m)
{
	struct cfg c = { .max_run_timeout_s = 30, .max_output_bytes = 1000, .max_memory_mb = 512 };
	struct exec_req req = { .timeout_ms = 5000 };
	struct exec_result res = { .exit_code = -1 };
	const char *out, *err;
	size_t olen = 0, elen = 0;

	out = proto_get(m, "stdout", &olen);
	err = proto_get(m, "stderr", &elen);
	if (result_from_reply(&c, &req, m, &res) == 0) {
		FUZZ_ASSERT(res.out_len == (out ? olen : 0));
		FUZZ_ASSERT(!out || memcmp(res.out, out, olen) == 0);
		FUZZ_ASSERT(res.out[res.out_len] == '\0' && res.err[res.err_len] == '\0');
		FUZZ_ASSERT(res.err_len >= (err ? elen : 0));
		FUZZ_ASSERT(!err || memcmp(res.err, err, elen) == 0);
		FUZZ_ASSERT(res.out_total >= res.out_len);
		FUZZ_ASSERT(res.exit_code >= 0 && res.exit_code <= 255);
		FUZZ_ASSERT(res.signal >= 0 && res.signal <= 64);
		FUZZ_ASSERT(res.wall_ms >= 0);
	}
	exec_result_free(&res);
}

static void
check_listing(const struct proto_msg *m)
{
	struct workspace *w = workspace_parse(m);
	const struct ws_entry *e;
	size_t i, len;

	if (!w)
		return;
	for (i = 0; i < w->n; i++) {
		e = &w->e[i];
		len = strlen(e->path);
		FUZZ_ASSERT(strchr("fdlo", e->type) && e->type);
		FUZZ_ASSERT(e->size >= 0);
		FUZZ_ASSERT(strlen(e->sha256) == 64 || strcmp(e->sha256, "-") == 0);
		FUZZ_ASSERT(len <= 1000 && relpath_segments(e->path, len) > 0);
		FUZZ_ASSERT(utf8_valid(e->path, len));
		FUZZ_ASSERT(!strchr(e->path, '\\'));
		FUZZ_ASSERT(i == 0 || strcmp(w->e[i - 1].path, e->path) <= 0);
		FUZZ_ASSERT(workspace_find(w, e->path) != NULL);
		/* Unchanged against itself, unless unhashed or listed twice. */
		if (e->type == 'f' && strcmp(e->sha256, "-") != 0 &&
		    (i == 0 || strcmp(w->e[i - 1].path, e->path) != 0) &&
		    (i + 1 == w->n || strcmp(w->e[i + 1].path, e->path) != 0))
			FUZZ_ASSERT(!workspace_changed(w, e));
	}
	workspace_free(w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_decoder *d = proto_decoder_new(PROTO_MAX_FRAME);
	struct proto_msg *m;
	size_t o = 1, step, total;
	const char *v;
	uint8_t seed;
	int r = 0;

	if (!d || size < 1)
		goto out;
	seed = data[0];
	while (o < size && r >= 0) {
		step = seed == 0 ? size - o : (size_t)(seed % 23) + 1;
		seed = (uint8_t)(seed * 37 + 11);
		if (step > size - o)
			step = size - o;
		FUZZ_ASSERT(proto_decoder_feed(d, data + o, step) == 0);
		o += step;
		while ((r = proto_decoder_next(d, &m)) == 1) {
			for (total = 0; total < proto_nfields(m); total++) {
				size_t len;
				proto_field(m, total, &v, &len);
				FUZZ_ASSERT(len <= size);
			}
			round_trip(m, 0);
			round_trip(m, 1);
			check_u64(m);
			if (proto_msg_type(m) == PROTO_OK) {
				check_run_reply(m);
				check_listing(m);
			}
			proto_msg_free(m);
		}
	}
out:
	proto_decoder_free(d);
	return 0;
}
