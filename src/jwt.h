/*
 * JWT verification for LibreChat's CodeAPI tokens: compact JWS signed with
 * EdDSA (Ed25519) or RS256, iss "librechat", aud "codeapi", exp and nbf
 * checked with a small leeway.  The algorithm is the key's: a token naming
 * another (none, HS256, ...) is refused, so no algorithm confusion.
 */
#ifndef CIP_JWT_H
#define CIP_JWT_H

#include <stddef.h>

#define JWT_LEEWAY_S 30

struct jwt_key;

/* Load a public key from PEM text or from a PEM file; err says why not. */
int jwt_key_load(const char *pem_or_path, struct jwt_key **out, char *err, size_t errlen);
void jwt_key_free(struct jwt_key *k);
/* "EdDSA" or "RS256". */
const char *jwt_key_alg(const struct jwt_key *k);

/*
 * Verify token at now_s (unix seconds).  0 and its sub in user, or -1 and a
 * reason for the log in why (never the token itself).
 */
int jwt_verify(const struct jwt_key *k, const char *token, long long now_s,
    char *user, size_t userlen, char *why, size_t whylen);

#endif
