#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->cap);
}


static int
buf_grow(struct buf *b, size_t need)
{
	size_t n = b->alloc ? b->alloc : 256;
	char *p;

	while (n < need + 1)
		n *= 2;
	p = realloc(b->data, n);
	if (!p)
		return -1;
	b->data = p;
	b->alloc = n;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t keep = n;

	b->total += n;
	if (b->len >= b->cap)
		return 0;
	if (keep > b->cap - b->len)
		keep = b->cap - b->len;
	if (b->len + keep + 1 > b->alloc && buf_grow(b, b->len + keep) < 0)
		return -1;
	memcpy(b->data + b->len, p, keep);
	b->len += keep;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024], *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(tmp))
		return buf_add(b, tmp, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

int
buf_truncated(const struct buf *b)
{
	return b->total > b->len;
}

char *
buf_take(struct buf *b, size_t *len)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	if (len)
		*len = p ? b->len : 0;
	buf_init(b, b->cap);
	return p;
}
