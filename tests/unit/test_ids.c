#include "config.h"

#include <string.h>

#include "ids.h"
#include "suites.h"

START_TEST(new_ids_are_valid_and_differ)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];
	int i;

	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(id_new(a), 0);
		ck_assert_int_eq(id_new(b), 0);
		ck_assert_int_eq((int)strlen(a), 21);
		ck_assert(id_valid(a));
		ck_assert_str_ne(a, b);
	}
}
END_TEST

START_TEST(validation)
{
	ck_assert(id_valid("V1StGXR8_Z5jdHi6B-myT"));
	ck_assert(!id_valid("V1StGXR8_Z5jdHi6B-myT1"));
	ck_assert(!id_valid("V1StGXR8_Z5jdHi6B-my"));
	ck_assert(!id_valid("V1StGXR8_Z5jdHi6B/myT"));
	ck_assert(!id_valid("../../etc/passwd12345"));
	ck_assert(!id_valid(""));
	ck_assert(!id_valid(NULL));
}
END_TEST

START_TEST(every_symbol_appears)
{
	char id[ID_LEN + 1], seen[256] = { 0 };
	int i, j, distinct = 0;

	for (i = 0; i < 2000; i++) {
		id_new(id);
		for (j = 0; j < ID_LEN; j++)
			seen[(unsigned char)id[j]] = 1;
	}
	for (i = 0; i < 256; i++)
		distinct += seen[i];
	ck_assert_int_eq(distinct, 64);
}
END_TEST

Suite *
suite_ids(void)
{
	Suite *s = suite_create("ids");
	TCase *tc = tcase_create("ids");

	tcase_add_test(tc, new_ids_are_valid_and_differ);
	tcase_add_test(tc, validation);
	tcase_add_test(tc, every_symbol_appears);
	suite_add_tcase(s, tc);
	return s;
}
