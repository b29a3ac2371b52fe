#include "config.h"

#include <string.h>

#include "buf.h"
#include "demux.h"
#include "suites.h"

struct sinks { struct buf out, err; };

static int
sink(int stream, const char *p, size_t n, void *ctx)
{
	struct sinks *s = ctx;

	buf_add(stream == 2 ? &s->err : &s->out, p, n);
	return 0;
}

static size_t
frame(unsigned char *dst, int stream, const char *payload)
{
	size_t n = strlen(payload);

	dst[0] = (unsigned char)stream;
	dst[1] = dst[2] = dst[3] = 0;
	dst[4] = (unsigned char)(n >> 24);
	dst[5] = (unsigned char)(n >> 16);
	dst[6] = (unsigned char)(n >> 8);
	dst[7] = (unsigned char)n;
	memcpy(dst + 8, payload, n);
	return n + 8;
}

static size_t
sample(unsigned char *b)
{
	size_t n = 0;

	n += frame(b + n, 1, "hello\n");
	n += frame(b + n, 2, "oops\n");
	n += frame(b + n, 1, "");
	n += frame(b + n, 1, "x");
	return n;
}

START_TEST(whole_stream)
{
	unsigned char b[256];
	struct sinks s;
	struct demux d;
	size_t n = sample(b);

	buf_init(&s.out, 1024);
	buf_init(&s.err, 1024);
	demux_init(&d, sink, &s);
	ck_assert_int_eq(demux_feed(&d, (char *)b, n), 0);
	ck_assert(demux_at_boundary(&d));
	ck_assert_str_eq(s.out.data, "hello\nx");
	ck_assert_str_eq(s.err.data, "oops\n");
	buf_free(&s.out);
	buf_free(&s.err);
}
END_TEST

START_TEST(one_byte_at_a_time)
{
	unsigned char b[256];
	struct sinks s;
	struct demux d;
	size_t n = sample(b), i;

	buf_init(&s.out, 1024);
	buf_init(&s.err, 1024);
	demux_init(&d, sink, &s);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(demux_feed(&d, (char *)b + i, 1), 0);
	ck_assert_str_eq(s.out.data, "hello\nx");
	ck_assert_str_eq(s.err.data, "oops\n");
	buf_free(&s.out);
	buf_free(&s.err);
}
END_TEST

START_TEST(eof_mid_frame_is_detected)
{
	unsigned char b[256];
	struct sinks s;
	struct demux d;
	size_t n = frame(b, 1, "hello");

	buf_init(&s.out, 1024);
	buf_init(&s.err, 1024);
	demux_init(&d, sink, &s);
	ck_assert_int_eq(demux_feed(&d, (char *)b, n - 2), 0);
	ck_assert(!demux_at_boundary(&d));
	demux_init(&d, sink, &s);
	ck_assert_int_eq(demux_feed(&d, (char *)b, 5), 0);	/* inside the header */
	ck_assert(!demux_at_boundary(&d));
	buf_free(&s.out);
	buf_free(&s.err);
}
END_TEST

START_TEST(bad_header_is_refused)
{
	unsigned char b[16] = { 7, 0, 0, 0, 0, 0, 0, 1, 'x' };
	struct sinks s;
	struct demux d;

	buf_init(&s.out, 1024);
	buf_init(&s.err, 1024);
	demux_init(&d, sink, &s);
	ck_assert_int_eq(demux_feed(&d, (char *)b, 9), -1);
	b[0] = 1;
	b[2] = 9;
	demux_init(&d, sink, &s);
	ck_assert_int_eq(demux_feed(&d, (char *)b, 9), -1);
	buf_free(&s.out);
	buf_free(&s.err);
}
END_TEST

Suite *
suite_demux(void)
{
	Suite *s = suite_create("demux");
	TCase *tc = tcase_create("demux");

	tcase_add_test(tc, whole_stream);
	tcase_add_test(tc, one_byte_at_a_time);
	tcase_add_test(tc, eof_mid_frame_is_detected);
	tcase_add_test(tc, bad_header_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
