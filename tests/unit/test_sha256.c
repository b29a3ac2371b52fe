#include "config.h"

#include <openssl/sha.h>
#include <string.h>

#include "runner/sha256.h"
#include "suites.h"

START_TEST(matches_openssl)
{
	static unsigned char data[70000];
	unsigned char ours[32], ref[32];
	struct sha256 s;
	size_t lens[] = { 0, 1, 55, 56, 63, 64, 65, 1000, 70000 }, i, j;
	char hex[65];

	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		sha256_init(&s);
		for (j = 0; j < lens[i]; j += 333)	/* uneven pieces */
			sha256_update(&s, data + j, lens[i] - j < 333 ? lens[i] - j : 333);
		sha256_final(&s, ours);
		SHA256(data, lens[i], ref);
		ck_assert_mem_eq(ours, ref, 32);
	}
	sha256_init(&s);
	sha256_update(&s, "abc", 3);
	sha256_final(&s, ours);
	sha256_hex(ours, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

Suite *
suite_sha256(void)
{
	Suite *s = suite_create("sha256");
	TCase *tc = tcase_create("sha256");

	tcase_add_test(tc, matches_openssl);
	suite_add_tcase(s, tc);
	return s;
}
