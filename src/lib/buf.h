/*
 * A growable byte buffer with a hard cap.  Bytes past the cap are counted
 * but dropped, so a flood of output costs no memory; the caller learns how
 * much was dropped from buf_total().
 */
#ifndef CIP_BUF_H
#define CIP_BUF_H

#include <stddef.h>

struct buf {
	char *data;	/* always NUL-terminated when non-NULL */
	size_t len;
	size_t alloc;
	size_t cap;	/* most bytes kept */
	size_t total;	/* bytes offered, kept or not */
};

void buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);
/* Append; returns 0, or -1 if memory ran out (the buffer stays valid). */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addstr(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_truncated(const struct buf *b);
/* Take the bytes: the caller owns the result (never NULL); b is reset. */
char *buf_take(struct buf *b, size_t *len);

#endif
