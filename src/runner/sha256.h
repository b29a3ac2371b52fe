/* SHA-256 (FIPS 180-4) for the runner, which may depend on libc only. */
#ifndef CIP_SHA256_H
#define CIP_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t nbytes;
	unsigned char block[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[32]);
/* Lowercase hex of a digest into out (65 bytes with the NUL). */
void sha256_hex(const unsigned char dig[32], char out[65]);

#endif
