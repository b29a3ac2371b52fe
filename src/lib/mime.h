/* Content types of stored files: a known extension first, libmagic otherwise. */
#ifndef CIP_MIME_H
#define CIP_MIME_H

#include <stddef.h>

/* The type of data (len bytes) named name, into out (never empty). */
void mime_guess(const void *data, size_t len, const char *name, char *out, size_t cap);

#endif
