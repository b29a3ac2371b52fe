/*
 * Fuzz target: file names and paths relative to /mnt/data (names.c,
 * relpath.c) and the UTF-8 checks they rest on (utf8.c).  Asserts that an
 * accepted name really keeps to the rule when checked independently (no
 * leading '/', no empty, "." or ".." segment, so it cannot leave
 * /mnt/data; no control byte or backslash), that utf8_valid agrees with a
 * decoder written from the definition, and that utf8_sanitize yields valid
 * UTF-8, leaves valid input alone and is idempotent.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "names.h"
#include "relpath.h"
#include "utf8.h"

/* Well-formed UTF-8 by the definition: shortest form, no surrogate, at most U+10FFFF. */
static int
utf8_oracle(const unsigned char *p, size_t n)
{
	size_t i = 0, k, j;
	unsigned long cp, min;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0)
			k = 2, cp = p[i] & 0x1f, min = 0x80;
		else if ((p[i] & 0xf0) == 0xe0)
			k = 3, cp = p[i] & 0x0f, min = 0x800;
		else if ((p[i] & 0xf8) == 0xf0)
			k = 4, cp = p[i] & 0x07, min = 0x10000;
		else
			return 0;
		if (n - i < k)
			return 0;
		for (j = 1; j < k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k;
	}
	return 1;
}

/* The segment rule checked by splitting, as a reader of relpath.h would. */
static size_t
segments_oracle(const char *p, size_t n)
{
	size_t i, start = 0, count = 0, len;

	for (i = 0; i <= n; i++) {
		if (i < n && p[i] != '/')
			continue;
		len = i - start;
		if (len == 0 || (len == 1 && p[start] == '.') ||
		    (len == 2 && p[start] == '.' && p[start + 1] == '.'))
			return 0;
		count++;
		start = i + 1;
	}
	return count;
}

static void
check_name(const char *s, size_t n)
{
	size_t i;

	if (name_problem(s, n))
		return;
	FUZZ_ASSERT(n >= 1 && n <= NAME_MAX_LEN);
	FUZZ_ASSERT(memchr(s, '\0', n) == NULL);
	FUZZ_ASSERT(s[0] != '/');
	for (i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)s[i] >= 0x20 && s[i] != 0x7f && s[i] != '\\');
	FUZZ_ASSERT(utf8_oracle((const unsigned char *)s, n));
	i = segments_oracle(s, n);
	FUZZ_ASSERT(i >= 1 && i <= NAME_MAX_SEGMENTS);
}

static void
check_utf8(const char *s, size_t n)
{
	int valid = utf8_valid(s, n);
	size_t olen, olen2;
	char *out, *again;

	FUZZ_ASSERT(valid == utf8_oracle((const unsigned char *)s, n));
	if (!(out = utf8_sanitize(s, n, &olen)))
		return;
	FUZZ_ASSERT(out[olen] == '\0');
	FUZZ_ASSERT(olen <= 3 * n);
	FUZZ_ASSERT(utf8_oracle((const unsigned char *)out, olen));
	if (valid)
		FUZZ_ASSERT(olen == n && memcmp(out, s, n) == 0);
	if ((again = utf8_sanitize(out, olen, &olen2)))
		FUZZ_ASSERT(olen2 == olen && memcmp(again, out, olen) == 0);
	free(again);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A NUL-terminated copy: name_problem reads up to the length it is told. */
	char *s = malloc(size + 1);
	size_t segs;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_name(s, size);
	segs = relpath_segments(s, size);
	FUZZ_ASSERT(segs == segments_oracle(s, size) || (size && s[0] == '/' && segs == 0));
	if (size == 0 || s[0] == '/')
		FUZZ_ASSERT(segs == 0);
	check_utf8(s, size);
	free(s);
	return 0;
}
