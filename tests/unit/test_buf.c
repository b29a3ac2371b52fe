#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "suites.h"

START_TEST(cap_drops_but_counts)
{
	struct buf b;
	char *p;
	size_t n;
	int i;

	buf_init(&b, 10);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(buf_addstr(&b, "abc"), 0);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_uint_eq(b.total, 300);
	ck_assert(buf_truncated(&b));
	ck_assert_str_eq(b.data, "abcabcabca");
	p = buf_take(&b, &n);
	ck_assert_uint_eq(n, 10);
	ck_assert_ptr_null(b.data);
	free(p);
	p = buf_take(&b, &n);
	ck_assert_str_eq(p, "");
	free(p);
}
END_TEST

START_TEST(printf_grows)
{
	struct buf b;
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 1 << 20);
	ck_assert_int_eq(buf_printf(&b, "%s-%d", big, 42), 0);
	ck_assert_uint_eq(b.len, 3002);
	ck_assert(!buf_truncated(&b));
	buf_free(&b);
}
END_TEST

Suite *
suite_buf(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");

	tcase_add_test(tc, cap_drops_but_counts);
	tcase_add_test(tc, printf_grows);
	suite_add_tcase(s, tc);
	return s;
}
