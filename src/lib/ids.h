/*
 * Identifiers: 21 characters of [A-Za-z0-9_-] (nanoid's alphabet and size),
 * from getrandom(2).  LibreChat rejects any other shape.
 */
#ifndef CIP_IDS_H
#define CIP_IDS_H

#include <stddef.h>

#define ID_LEN 21

/* Fill out with a new id and its NUL; returns 0 or -errno. */
int id_new(char out[ID_LEN + 1]);
/* 1 if s is exactly an id, else 0. */
int id_valid(const char *s);

#endif
