/*
 * Authentication of API requests.  Today: a static key in X-API-Key,
 * compared in constant time.
 */
#ifndef CIP_AUTH_H
#define CIP_AUTH_H

#include <stddef.h>

struct cfg;

/* 0 if the presented key is the configured one; -1 otherwise. */
int auth_check_api_key(const struct cfg *cfg, const char *presented);

#endif
