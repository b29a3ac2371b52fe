#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "utf8.h"

static void
check_n(const char *in, size_t len, const char *want, size_t wantlen)
{
	size_t n;
	char *out = utf8_sanitize(in, len, &n);

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(n, wantlen);
	ck_assert_mem_eq(out, want, n);
	ck_assert(utf8_valid(out, n));
	free(out);
}

static void
check(const char *in, size_t len, const char *want)
{
	check_n(in, len, want, strlen(want));
}

#define FFFD "\xef\xbf\xbd"

START_TEST(valid_text_is_kept)
{
	check("hello", 5, "hello");
	check("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
	check("", 0, "");
	check_n("a\0b", 3, "a\0b", 3);
}
END_TEST

START_TEST(invalid_bytes_become_fffd)
{
	check("\xff", 1, FFFD);
	check("a\x80z", 3, "a" FFFD "z");
	check("\xc0\xaf", 2, FFFD FFFD);		/* overlong '/' */
	check("\xed\xa0\x80", 3, FFFD FFFD FFFD);	/* surrogate */
	check("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);	/* > U+10FFFF */
	check("\xe2\x82", 2, FFFD FFFD);		/* cut short at the end */
	check("\xe0\x80\x80", 3, FFFD FFFD FFFD);	/* overlong 3-byte */
	ck_assert(!utf8_valid("\xfe", 1));
}
END_TEST

Suite *
suite_utf8(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("sanitize");

	tcase_add_test(tc, valid_text_is_kept);
	tcase_add_test(tc, invalid_bytes_become_fffd);
	suite_add_tcase(s, tc);
	return s;
}
