/* UTF-8 repair: program output goes into JSON whatever bytes it holds. */
#ifndef CIP_UTF8_H
#define CIP_UTF8_H

#include <stddef.h>

/*
 * Return a newly allocated, NUL-terminated copy of in[0..len) in which every
 * byte that is not part of a well-formed UTF-8 sequence (overlongs,
 * surrogates and code points past U+10FFFF included) became U+FFFD.
 * *outlen gets its length.  NULL if memory ran out.
 */
char *utf8_sanitize(const char *in, size_t len, size_t *outlen);
/* 1 if in[0..len) is well-formed UTF-8. */
int utf8_valid(const char *in, size_t len);

#endif
