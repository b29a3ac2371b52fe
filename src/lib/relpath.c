/*
 * The segment rule of paths relative to /mnt/data (see relpath.h).
 */
#include <string.h>

#include "relpath.h"

size_t
relpath_segments(const char *p, size_t len)
{
	const char *seg = p, *end = p + len, *slash;
	size_t n, count = 0;

	if (len == 0 || p[0] == '/')
		return 0;
	for (;;) {
		slash = memchr(seg, '/', (size_t)(end - seg));
		n = slash ? (size_t)(slash - seg) : (size_t)(end - seg);
		if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		count++;
		if (!slash)
			return count;
		seg = slash + 1;
	}
}
