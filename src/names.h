/*
 * File names as the contract allows them: relative to /mnt/data, at most
 * 256 bytes and 10 segments, already canonical (no empty, "." or ".."
 * segment), UTF-8, no backslash, NUL or other control byte.
 */
#ifndef CIP_NAMES_H
#define CIP_NAMES_H

#include <stddef.h>

#define NAME_MAX_LEN 256
#define NAME_MAX_SEGMENTS 10

/* NULL if name[0..len) is acceptable, else what is wrong with it. */
const char *name_problem(const char *name, size_t len);

#endif
