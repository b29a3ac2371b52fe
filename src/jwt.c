#include "config.h"

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define TOKEN_MAX 8192

struct jwt_key {
	EVP_PKEY *pkey;
	int ed25519;
};

int
jwt_key_load(const char *pem_or_path, struct jwt_key **out, char *err, size_t errlen)
{
	struct jwt_key *k;
	BIO *bio;
	int type;

	*out = NULL;
	if (strncmp(pem_or_path, "-----BEGIN", 10) == 0)
		bio = BIO_new_mem_buf(pem_or_path, -1);
	else
		bio = BIO_new_file(pem_or_path, "r");
	if (!bio) {
		snprintf(err, errlen, "CI_JWT_PUBLIC_KEY: cannot read %s", pem_or_path);
		return -1;
	}
	if (!(k = calloc(1, sizeof(*k)))) {
		BIO_free(bio);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	k->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	type = k->pkey ? EVP_PKEY_get_base_id(k->pkey) : 0;
	if (type != EVP_PKEY_ED25519 && type != EVP_PKEY_RSA) {
		snprintf(err, errlen, "CI_JWT_PUBLIC_KEY is not a PEM public key of type Ed25519 "
		    "or RSA");
		jwt_key_free(k);
		return -1;
	}
	k->ed25519 = type == EVP_PKEY_ED25519;
	*out = k;
	return 0;
}

void
jwt_key_free(struct jwt_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *
jwt_key_alg(const struct jwt_key *k)
{
	return k->ed25519 ? "EdDSA" : "RS256";
}

/* base64url (no padding) into out; the decoded length, or -1. */
static long
b64url_decode(const char *in, size_t len, unsigned char *out)
{
	unsigned v = 0;
	size_t i, o = 0;
	int bits = 0, c;

	for (i = 0; i < len; i++) {
		c = in[i];
		if (c >= 'A' && c <= 'Z')
			c -= 'A';
		else if (c >= 'a' && c <= 'z')
			c = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			c = c - '0' + 52;
		else if (c == '-')
			c = 62;
		else if (c == '_')
			c = 63;
		else
			return -1;
		v = v << 6 | (unsigned)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	if (len % 4 == 1)
		return -1;
	return (long)o;
}

static struct json_object *
decode_part(const char *p, size_t len)
{
	unsigned char buf[TOKEN_MAX];
	long n = b64url_decode(p, len, buf);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return json_tokener_parse((const char *)buf);
}

static int
verify_signature(const struct jwt_key *k, const char *input, size_t inlen,
    const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;

	if (ctx && EVP_DigestVerifyInit(ctx, NULL, k->ed25519 ? NULL : EVP_sha256(), NULL,
	    k->pkey) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, inlen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static int
has_audience(struct json_object *claims, const char *want)
{
	struct json_object *aud, *a;
	size_t i;

	if (!json_object_object_get_ex(claims, "aud", &aud))
		return 0;
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), want) == 0;
	if (!json_object_is_type(aud, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(aud); i++) {
		a = json_object_array_get_idx(aud, i);
		if (json_object_is_type(a, json_type_string) &&
		    strcmp(json_object_get_string(a), want) == 0)
			return 1;
	}
	return 0;
}

/* A numeric claim; 0 if absent, -1 if present but not a number. */
static int
number_claim(struct json_object *claims, const char *name, long long *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(claims, name, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return -1;
	*out = json_object_get_int64(v);
	return 1;
}

static const char *
check_claims(struct json_object *claims, long long now, char *user, size_t userlen)
{
	struct json_object *v;
	long long exp = 0, nbf = 0;
	int has;

	if (!json_object_object_get_ex(claims, "iss", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "librechat") != 0)
		return "issuer is not librechat";
	if (!has_audience(claims, "codeapi"))
		return "audience is not codeapi";
	if ((has = number_claim(claims, "exp", &exp)) <= 0)
		return "no exp";
	/* exp is the token's and may be INT64_MAX (json-c saturates): the leeway goes on now. */
	if (now - JWT_LEEWAY_S > exp)
		return "expired";
	if ((has = number_claim(claims, "nbf", &nbf)) < 0 || (has && now + JWT_LEEWAY_S < nbf))
		return "not valid yet";
	if (!json_object_object_get_ex(claims, "sub", &v) ||
	    !json_object_is_type(v, json_type_string) || !*json_object_get_string(v) ||
	    strlen(json_object_get_string(v)) >= userlen)
		return "no usable sub";
	snprintf(user, userlen, "%s", json_object_get_string(v));
	return NULL;
}

int
jwt_verify(const struct jwt_key *k, const char *token, long long now_s,
    char *user, size_t userlen, char *why, size_t whylen)
{
	struct json_object *header = NULL, *claims = NULL, *alg;
	const char *dot1, *dot2, *problem = NULL;
	unsigned char sig[1024];
	size_t len = strlen(token);
	long siglen;

	if (len > TOKEN_MAX - 1 || !(dot1 = strchr(token, '.')) || !(dot2 = strchr(dot1 + 1, '.')) ||
	    strchr(dot2 + 1, '.')) {
		problem = "not a compact JWS";
		goto out;
	}
	if (!(header = decode_part(token, (size_t)(dot1 - token))) ||
	    !(claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1)))) {
		problem = "undecodable header or claims";
		goto out;
	}
	/* The key decides the algorithm; a token asking for another is refused. */
	if (!json_object_object_get_ex(header, "alg", &alg) ||
	    !json_object_is_type(alg, json_type_string) ||
	    strcmp(json_object_get_string(alg), jwt_key_alg(k)) != 0) {
		problem = "algorithm is not the key's";
		goto out;
	}
	siglen = (size_t)(token + len - dot2 - 1) * 3 / 4 + 3 > sizeof(sig) ? -1 :
	    b64url_decode(dot2 + 1, (size_t)(token + len - dot2 - 1), sig);
	if (siglen <= 0 || !verify_signature(k, token, (size_t)(dot2 - token), sig, (size_t)siglen)) {
		problem = "bad signature";
		goto out;
	}
	problem = check_claims(claims, now_s, user, userlen);
out:
	json_object_put(header);
	json_object_put(claims);
	if (problem) {
		snprintf(why, whylen, "%s", problem);
		return -1;
	}
	return 0;
}
