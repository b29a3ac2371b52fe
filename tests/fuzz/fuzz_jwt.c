/*
 * Fuzz target: JWT parsing and verification (jwt.c) with an Ed25519 key
 * made at start.  The first input byte picks the shape:
 *   even: the rest is a token as a client sends it;
 *   odd:  the rest is "HEADER\nCLAIMS", which the target encodes and signs
 *         with the key, so the claim checks behind the signature are
 *         reached with any claims at all.
 * Asserts: a token accepted names a non-empty sub that fits, and its
 * claims (decoded here independently) say iss librechat, aud codeapi and
 * an exp not past; a signed token changed in any byte of its signed part
 * is refused.
 */
#include "config.h"

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

#include "fuzz.h"
#include "jwt.h"

#define NOW 1700000000LL

static EVP_PKEY *priv;
static struct jwt_key *key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256], *pem;
	BIO *b = BIO_new(BIO_s_mem());
	long n;

	(void)argc;
	(void)argv;
	if (!b || !(priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) ||
	    PEM_write_bio_PUBKEY(b, priv) != 1 || (n = BIO_get_mem_data(b, &pem)) <= 0)
		abort();
	pem[n - 1] = '\0';	/* the PEM ends with a newline we can spare */
	if (jwt_key_load(pem, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "jwt_key_load: %s\n", err);
		abort();
	}
	BIO_free(b);
	return 0;
}

static size_t
b64url(const unsigned char *in, size_t len, char *out)
{
	static const char c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = c[v >> 18 & 63];
		out[o++] = c[v >> 12 & 63];
		out[o++] = c[v >> 6 & 63];
		out[o++] = c[v & 63];
	}
	if (i < len) {
		v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
		out[o++] = c[v >> 18 & 63];
		out[o++] = c[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = c[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

/* "b64(h).b64(c).b64(sig)", signed with the key; NULL if it cannot be. */
static char *
sign(const unsigned char *h, size_t hl, const unsigned char *c, size_t cl)
{
	char *tok = malloc((hl + cl + 64) * 4 / 3 + 16);
	unsigned char sig[64];
	size_t o, siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!tok || !ctx)
		goto fail;
	o = b64url(h, hl, tok);
	tok[o++] = '.';
	o += b64url(c, cl, tok + o);
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, priv) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)tok, o) != 1)
		goto fail;
	tok[o++] = '.';
	b64url(sig, siglen, tok + o);
	EVP_MD_CTX_free(ctx);
	return tok;
fail:
	EVP_MD_CTX_free(ctx);
	free(tok);
	return NULL;
}

/* What an accepted token must have said. */
static void
check_accepted(const char *user, const unsigned char *claims, size_t cl)
{
	struct json_object *o, *v;
	char *text = strndup((const char *)claims, cl);

	FUZZ_ASSERT(user[0] != '\0' && strlen(user) < 128);
	if (!text)
		return;
	o = json_tokener_parse(text);
	FUZZ_ASSERT(o);
	FUZZ_ASSERT(json_object_object_get_ex(o, "iss", &v) &&
	    strcmp(json_object_get_string(v), "librechat") == 0);
	FUZZ_ASSERT(json_object_object_get_ex(o, "sub", &v) &&
	    strcmp(json_object_get_string(v), user) == 0);
	FUZZ_ASSERT(json_object_object_get_ex(o, "exp", &v) &&
	    json_object_get_double(v) + JWT_LEEWAY_S >= (double)NOW);
	FUZZ_ASSERT(json_object_object_get_ex(o, "aud", &v));
	json_object_put(o);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[128], why[128], *tok;
	const uint8_t *nl;
	size_t hl, at;
	int rc;

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		if (!(tok = strndup((const char *)data + 1, size - 1)))
			return 0;
		rc = jwt_verify(key, tok, NOW, user, sizeof(user), why, sizeof(why));
		FUZZ_ASSERT(rc == 0 || why[0] != '\0');
		/* Accepting a token nobody signed with our key would be a forgery. */
		FUZZ_ASSERT(rc < 0);
		free(tok);
		return 0;
	}
	if (!(nl = memchr(data + 1, '\n', size - 1)))
		return 0;
	hl = (size_t)(nl - data - 1);
	if (!(tok = sign(data + 1, hl, nl + 1, size - hl - 2)))
		return 0;
	rc = jwt_verify(key, tok, NOW, user, sizeof(user), why, sizeof(why));
	if (rc == 0) {
		check_accepted(user, nl + 1, size - hl - 2);
		/* One byte of the signed part changed: refused. */
		at = (size_t)data[0] % (strrchr(tok, '.') - tok);
		tok[at] = tok[at] == 'A' ? 'B' : 'A';
		FUZZ_ASSERT(jwt_verify(key, tok, NOW, user, sizeof(user), why, sizeof(why)) < 0);
	} else {
		FUZZ_ASSERT(why[0] != '\0');
	}
	free(tok);
	return 0;
}
