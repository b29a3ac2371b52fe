#include "config.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#include "auth.h"
#include "cfg.h"

int
auth_check_api_key(const struct cfg *cfg, const char *presented)
{
	unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];

	if (!presented)
		return -1;
	/* Hash both sides so the comparison's time says nothing about length. */
	SHA256((const unsigned char *)cfg->api_key, strlen(cfg->api_key), want);
	SHA256((const unsigned char *)presented, strlen(presented), got);
	return CRYPTO_memcmp(want, got, sizeof(want)) == 0 ? 0 : -1;
}
