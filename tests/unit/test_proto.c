#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "suites.h"

static struct proto_msg *
roundtrip(const struct proto_msg *m, int armored, size_t chunk)
{
	struct proto_decoder *d = proto_decoder_new(1 << 20);
	struct proto_msg *out = NULL;
	unsigned char *buf;
	size_t len, i, n;

	ck_assert_int_eq(proto_encode(m, armored, &buf, &len), 0);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		ck_assert_int_eq(proto_decoder_feed(d, buf + i, n), 0);
		if (i + n < len)
			ck_assert_int_eq(proto_decoder_next(d, &out), 0);
	}
	ck_assert_int_eq(proto_decoder_next(d, &out), 1);
	ck_assert_uint_eq(proto_decoder_pending(d), 0);
	free(buf);
	proto_decoder_free(d);
	return out;
}

START_TEST(fields_survive_both_encodings)
{
	static const char bin[] = "a\0\x10\x11\xff\n\r end";
	struct proto_msg *m = proto_msg_new(PROTO_RUN), *r;
	const char *v;
	size_t len;
	uint64_t u;
	int armored;

	ck_assert_int_eq(proto_add_str(m, "argv", "python3"), 0);
	ck_assert_int_eq(proto_add_str(m, "argv", "main.py"), 0);
	ck_assert_int_eq(proto_add(m, "data", bin, sizeof(bin) - 1), 0);
	ck_assert_int_eq(proto_add_u64(m, "timeout_ms", 30000), 0);
	ck_assert_int_eq(proto_add(m, "empty", "", 0), 0);
	for (armored = 0; armored < 2; armored++) {
		r = roundtrip(m, armored, armored ? 1 : 7);
		ck_assert_int_eq(proto_msg_type(r), PROTO_RUN);
		ck_assert_uint_eq(proto_nfields(r), 5);
		ck_assert_str_eq(proto_field(r, 1, &v, NULL), "argv");
		ck_assert_str_eq(v, "main.py");
		v = proto_get(r, "data", &len);
		ck_assert_uint_eq(len, sizeof(bin) - 1);
		ck_assert_mem_eq(v, bin, len);
		ck_assert_int_eq(proto_get_u64(r, "timeout_ms", &u), 0);
		ck_assert_uint_eq(u, 30000);
		ck_assert_str_eq(proto_get(r, "empty", &len), "");
		ck_assert_int_eq(proto_get_u64(r, "argv", &u), -1);
		proto_msg_free(r);
	}
	proto_msg_free(m);
}
END_TEST

START_TEST(armored_frames_hold_no_control_bytes)
{
	struct proto_msg *m = proto_msg_new(PROTO_PUT);
	unsigned char *buf, all[256];
	size_t len, i;

	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	ck_assert_int_eq(proto_add_str(m, "path", "dir/file.csv"), 0);
	ck_assert_int_eq(proto_add(m, "data", all, sizeof(all)), 0);
	ck_assert_int_eq(proto_encode(m, 1, &buf, &len), 0);
	for (i = 0; i < len; i++)
		ck_assert_msg(buf[i] >= 0x20 && buf[i] < 0x7f, "byte %zu is 0x%02x", i, buf[i]);
	free(buf);
	proto_msg_free(m);
}
END_TEST

START_TEST(two_messages_in_one_feed)
{
	struct proto_decoder *d = proto_decoder_new(1024);
	struct proto_msg *a = proto_msg_new(PROTO_HELLO), *b = proto_msg_new(PROTO_LIST), *o;
	unsigned char *x, *y;
	size_t xl, yl;

	proto_encode(a, 1, &x, &xl);
	proto_encode(b, 1, &y, &yl);
	proto_decoder_feed(d, x, xl);
	proto_decoder_feed(d, y, yl);
	ck_assert_int_eq(proto_decoder_next(d, &o), 1);
	ck_assert_int_eq(proto_msg_type(o), PROTO_HELLO);
	proto_msg_free(o);
	ck_assert_int_eq(proto_decoder_next(d, &o), 1);
	ck_assert_int_eq(proto_msg_type(o), PROTO_LIST);
	proto_msg_free(o);
	ck_assert_int_eq(proto_decoder_next(d, &o), 0);
	free(x);
	free(y);
	proto_msg_free(a);
	proto_msg_free(b);
	proto_decoder_free(d);
}
END_TEST

static int
decode_raw(const char *wire, size_t max)
{
	struct proto_decoder *d = proto_decoder_new(max);
	struct proto_msg *o = NULL;
	int r;

	proto_decoder_feed(d, wire, strlen(wire));
	r = proto_decoder_next(d, &o);
	proto_msg_free(o);
	proto_decoder_free(d);
	return r;
}

START_TEST(garbage_is_refused)
{
	ck_assert_int_eq(decode_raw("XX", 100), -1);
	ck_assert_int_eq(decode_raw("CIO0000zzzz", 100), -1);		/* bad hex */
	ck_assert_int_eq(decode_raw("CIO00001000", 100), -1);		/* over max */
	ck_assert_int_eq(decode_raw("CIO00000004a=r0", 100), -1);	/* short field */
	ck_assert_int_eq(decode_raw("CIO0000000bA=r00000000", 100), -1);	/* bad key */
	ck_assert_int_eq(decode_raw("CIO0000000ba=x00000000", 100), -1);	/* bad enc */
	ck_assert_int_eq(decode_raw("CIO0000000da=b00000002zz", 100), -1);	/* bad b64 */
	ck_assert_int_eq(decode_raw("CIO0000000ba=r00000005", 100), -1);	/* len past body */
	ck_assert_int_eq(decode_raw("CIO0000000ba=r00000000", 100), 1);
	ck_assert_int_eq(decode_raw("CIO00000005", 100), 0);		/* incomplete */
}
END_TEST

START_TEST(base64_vectors)
{
	static const char *const v[][2] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
	    { "foo", "Zm9v" }, { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	    { "foobar", "Zm9vYmFy" } };
	unsigned char dec[16];
	char enc[16];
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = proto_b64_encode((const unsigned char *)v[i][0], strlen(v[i][0]), enc);
		ck_assert_uint_eq(n, strlen(v[i][1]));
		ck_assert_mem_eq(enc, v[i][1], n);
		ck_assert_int_eq(proto_b64_decode(v[i][1], n, dec), (long)strlen(v[i][0]));
		ck_assert_mem_eq(dec, v[i][0], strlen(v[i][0]));
	}
	ck_assert_int_eq(proto_b64_decode("Zg=", 3, dec), -1);
	ck_assert_int_eq(proto_b64_decode("Z=g=", 4, dec), -1);
	ck_assert_int_eq(proto_b64_decode("Zm9v!A==", 8, dec), -1);
}
END_TEST

START_TEST(bad_keys_are_refused)
{
	struct proto_msg *m = proto_msg_new(PROTO_OK);

	ck_assert_int_eq(proto_add_str(m, "", "x"), -1);
	ck_assert_int_eq(proto_add_str(m, "Upper", "x"), -1);
	ck_assert_int_eq(proto_add_str(m, "a=b", "x"), -1);
	ck_assert_int_eq(proto_add_str(m, "sixteen_chars_xx", "x"), -1);
	ck_assert_int_eq(proto_add_str(m, "fifteen_chars_x", "x"), 0);
	proto_msg_free(m);
}
END_TEST

/* Found by fuzz_proto_proxy: "99999999999999999999" read as 7766279631452241919. */
START_TEST(u64_past_2_to_the_64_is_refused)
{
	struct proto_msg *m = proto_msg_new(PROTO_OK);
	uint64_t v = 0;

	ck_assert(m);
	ck_assert_int_eq(proto_add_str(m, "max", "18446744073709551615"), 0);
	ck_assert_int_eq(proto_add_str(m, "big", "18446744073709551616"), 0);
	ck_assert_int_eq(proto_add_str(m, "huge", "99999999999999999999"), 0);
	ck_assert_int_eq(proto_get_u64(m, "max", &v), 0);
	ck_assert(v == UINT64_MAX);
	ck_assert_int_eq(proto_get_u64(m, "big", &v), -1);
	ck_assert_int_eq(proto_get_u64(m, "huge", &v), -1);
	proto_msg_free(m);
}
END_TEST

Suite *
suite_proto(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, fields_survive_both_encodings);
	tcase_add_test(tc, armored_frames_hold_no_control_bytes);
	tcase_add_test(tc, two_messages_in_one_feed);
	tcase_add_test(tc, garbage_is_refused);
	tcase_add_test(tc, base64_vectors);
	tcase_add_test(tc, bad_keys_are_refused);
	tcase_add_test(tc, u64_past_2_to_the_64_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
