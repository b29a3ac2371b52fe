#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

struct proto_field {
	char key[PROTO_KEY_MAX + 1];
	char *val;
	size_t len;
};

struct proto_msg {
	char type;
	size_t n, alloc;
	struct proto_field *f;
};

struct proto_decoder {
	unsigned char *data;
	size_t len, alloc, max_frame;
};

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct proto_msg *
proto_msg_new(char type)
{
	struct proto_msg *m = calloc(1, sizeof(*m));

	if (m)
		m->type = type;
	return m;
}

void
proto_msg_free(struct proto_msg *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		free(m->f[i].val);
	free(m->f);
	free(m);
}

char
proto_msg_type(const struct proto_msg *m)
{
	return m->type;
}

static int
key_valid(const char *key, size_t n)
{
	size_t i;

	if (n == 0 || n > PROTO_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_'))
			return 0;
	return 1;
}

/* Append a field that takes ownership of val (NUL-terminated, len bytes). */
static int
proto_add_owned(struct proto_msg *m, const char *key, size_t keylen, char *val, size_t len)
{
	struct proto_field *nf;

	if (!key_valid(key, keylen))
		return -1;
	if (m->n == m->alloc) {
		size_t na = m->alloc ? m->alloc * 2 : 8;
		if (!(nf = realloc(m->f, na * sizeof(*nf))))
			return -1;
		m->f = nf;
		m->alloc = na;
	}
	memcpy(m->f[m->n].key, key, keylen);
	m->f[m->n].key[keylen] = '\0';
	m->f[m->n].val = val;
	m->f[m->n].len = len;
	m->n++;
	return 0;
}

int
proto_add(struct proto_msg *m, const char *key, const void *val, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -1;
	if (len)
		memcpy(copy, val, len);
	copy[len] = '\0';
	if (proto_add_owned(m, key, strlen(key), copy, len) < 0) {
		free(copy);
		return -1;
	}
	return 0;
}

int
proto_add_str(struct proto_msg *m, const char *key, const char *s)
{
	return proto_add(m, key, s, strlen(s));
}

int
proto_add_u64(struct proto_msg *m, const char *key, uint64_t v)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	return proto_add_str(m, key, tmp);
}

size_t
proto_nfields(const struct proto_msg *m)
{
	return m->n;
}

const char *
proto_field(const struct proto_msg *m, size_t i, const char **val, size_t *len)
{
	if (i >= m->n)
		return NULL;
	if (val)
		*val = m->f[i].val;
	if (len)
		*len = m->f[i].len;
	return m->f[i].key;
}

const char *
proto_get(const struct proto_msg *m, const char *key, size_t *len)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->f[i].key, key) == 0) {
			if (len)
				*len = m->f[i].len;
			return m->f[i].val;
		}
	return NULL;
}

int
proto_get_u64(const struct proto_msg *m, const char *key, uint64_t *out)
{
	const char *v = proto_get(m, key, NULL);
	uint64_t x = 0;

	if (!v || !*v || strlen(v) > 20)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		/* Twenty digits may pass 2^64: such a value is bad, not wrapped around. */
		if (x > (UINT64_MAX - (uint64_t)(*v - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*v - '0');
	}
	*out = x;
	return 0;
}

size_t
proto_b64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = b64_chars[v >> 6 & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < len) {
		v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64_chars[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	return o;
}

static int
b64_value(char c)
{
	const char *p;

	if (c == '\0' || !(p = strchr(b64_chars, c)))
		return -1;
	return (int)(p - b64_chars);
}

long
proto_b64_decode(const char *in, size_t len, unsigned char *out)
{
	size_t i, o = 0;
	int a, b, c, d;

	if (len % 4)
		return -1;
	for (i = 0; i < len; i += 4) {
		int last = i + 4 == len;
		a = b64_value(in[i]);
		b = b64_value(in[i + 1]);
		c = (last && in[i + 2] == '=') ? 0 : b64_value(in[i + 2]);
		d = (last && in[i + 3] == '=') ? 0 : b64_value(in[i + 3]);
		if (a < 0 || b < 0 || c < 0 || d < 0)
			return -1;
		if (last && in[i + 2] == '=' && in[i + 3] != '=')
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (!(last && in[i + 2] == '='))
			out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (!(last && in[i + 3] == '='))
			out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	return (long)o;
}

static int
needs_armor(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return 1;
	return 0;
}

static void
put_hex8(unsigned char *p, size_t v)
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 7; i >= 0; i--, v >>= 4)
		p[i] = (unsigned char)hex[v & 15];
}

static int
get_hex8(const unsigned char *p, size_t *out)
{
	size_t v = 0;
	int i;

	for (i = 0; i < 8; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= (size_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= (size_t)(p[i] - 'a' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

int
proto_encode(const struct proto_msg *m, int armored, unsigned char **out, size_t *outlen)
{
	size_t i, total = 11, klen, vlen, o;
	unsigned char *p;
	int *armor = NULL;

	if (m->n && !(armor = calloc(m->n, sizeof(*armor))))
		return -1;
	for (i = 0; i < m->n; i++) {
		armor[i] = armored && needs_armor(m->f[i].val, m->f[i].len);
		vlen = armor[i] ? (m->f[i].len + 2) / 3 * 4 : m->f[i].len;
		total += strlen(m->f[i].key) + 10 + vlen;
	}
	if (total - 11 > 0xffffffffu || !(p = malloc(total))) {
		free(armor);
		return -1;
	}
	p[0] = 'C';
	p[1] = 'I';
	p[2] = (unsigned char)m->type;
	put_hex8(p + 3, total - 11);
	o = 11;
	for (i = 0; i < m->n; i++) {
		klen = strlen(m->f[i].key);
		memcpy(p + o, m->f[i].key, klen);
		o += klen;
		p[o++] = '=';
		p[o++] = armor[i] ? 'b' : 'r';
		if (armor[i]) {
			vlen = proto_b64_encode((const unsigned char *)m->f[i].val,
			    m->f[i].len, (char *)p + o + 8);
		} else {
			vlen = m->f[i].len;
			memcpy(p + o + 8, m->f[i].val, vlen);
		}
		put_hex8(p + o, vlen);
		o += 8 + vlen;
	}
	free(armor);
	*out = p;
	*outlen = o;
	return 0;
}

struct proto_decoder *
proto_decoder_new(size_t max_frame)
{
	struct proto_decoder *d = calloc(1, sizeof(*d));

	if (d)
		d->max_frame = max_frame;
	return d;
}

void
proto_decoder_free(struct proto_decoder *d)
{
	if (!d)
		return;
	free(d->data);
	free(d);
}

size_t
proto_decoder_pending(const struct proto_decoder *d)
{
	return d->len;
}

int
proto_decoder_feed(struct proto_decoder *d, const void *data, size_t len)
{
	unsigned char *p;
	size_t na;

	if (d->len + len > d->alloc) {
		na = d->alloc ? d->alloc : 4096;
		while (na < d->len + len)
			na *= 2;
		if (!(p = realloc(d->data, na)))
			return -1;
		d->data = p;
		d->alloc = na;
	}
	memcpy(d->data + d->len, data, len);
	d->len += len;
	return 0;
}

/* Decode one field value (raw or base64) into a new NUL-terminated buffer. */
static char *
decode_value(char enc, const unsigned char *v, size_t vlen, size_t *outlen)
{
	char *val = malloc(vlen + 1);
	long dl;

	if (!val)
		return NULL;
	if (enc == 'r') {
		memcpy(val, v, vlen);
		*outlen = vlen;
	} else if (enc == 'b' && (dl = proto_b64_decode((const char *)v, vlen,
	    (unsigned char *)val)) >= 0) {
		*outlen = (size_t)dl;
	} else {
		free(val);
		return NULL;
	}
	val[*outlen] = '\0';
	return val;
}

/* Parse one frame body into m. */
static int
parse_body(struct proto_msg *m, const unsigned char *b, size_t blen)
{
	size_t o = 0, klen, vlen, dlen, span;
	const unsigned char *key, *eq;
	char *val;

	while (o < blen) {
		key = b + o;
		span = blen - o < PROTO_KEY_MAX + 1 ? blen - o : PROTO_KEY_MAX + 1;
		if (!(eq = memchr(key, '=', span)))
			return -1;
		klen = (size_t)(eq - key);
		o += klen + 1;
		/* ENC, HEX8, then vlen encoded bytes */
		if (blen - o < 9 || get_hex8(b + o + 1, &vlen) < 0 || blen - o - 9 < vlen)
			return -1;
		if (!(val = decode_value((char)b[o], b + o + 9, vlen, &dlen)))
			return -1;
		o += 9 + vlen;
		if (proto_add_owned(m, (const char *)key, klen, val, dlen) < 0) {
			free(val);
			return -1;
		}
	}
	return 0;
}

int
proto_decoder_next(struct proto_decoder *d, struct proto_msg **out)
{
	struct proto_msg *m;
	size_t blen;

	*out = NULL;
	if (d->len < 11)
		return d->len >= 2 && (d->data[0] != 'C' || d->data[1] != 'I') ? -1 : 0;
	if (d->data[0] != 'C' || d->data[1] != 'I' || get_hex8(d->data + 3, &blen) < 0)
		return -1;
	if (blen > d->max_frame)
		return -1;
	if (d->len < 11 + blen)
		return 0;
	if (!(m = proto_msg_new((char)d->data[2])))
		return -1;
	if (parse_body(m, d->data + 11, blen) < 0) {
		proto_msg_free(m);
		return -1;
	}
	memmove(d->data, d->data + 11 + blen, d->len - 11 - blen);
	d->len -= 11 + blen;
	*out = m;
	return 1;
}
