/*
 * The proxy <-> runner protocol.  A message is a type letter and a list of
 * (key, bytes) fields; keys may repeat.  On the wire:
 *
 *   frame := "CI" TYPE HEX8 BODY        HEX8 = length of BODY
 *   BODY  := field*
 *   field := KEY '=' ENC HEX8 BYTES      KEY [a-z_]{1,15}; ENC 'r' raw or 'b' base64
 *
 * Armored encoding (proxy -> runner) base64s every value that is not plain
 * printable ASCII, so that direction carries no control byte an engine could
 * read as a detach key.  Frames are always written whole.  Depends on libc
 * only: the static runner links it too.
 */
#ifndef CIP_PROTO_H
#define CIP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "attr.h"

#define PROTO_KEY_MAX 15
/*
 * The largest frame either side accepts: a reply may carry a whole file or
 * twice the output cap.  Larger frames are refused as malformed.
 */
#define PROTO_MAX_FRAME (256u << 20)

/* Requests */
#define PROTO_HELLO 'H'
#define PROTO_PUT   'P'
#define PROTO_RUN   'R'
#define PROTO_LIST  'L'
#define PROTO_GET   'G'
/* Sent only while a RUN is in progress, on its channel: stop it now. */
#define PROTO_CANCEL 'C'
/*
 * A RUN with tools=1 gives the program fd 3, on which it writes a line of
 * tool calls and reads back a line of results.  The runner then answers
 * the RUN (or the last RESUME) early, pending=1 with the line in "calls",
 * and waits, the run's clock stopped, for a RESUME carrying "results" (or
 * a CANCEL).  The last answer is the usual one.
 */
#define PROTO_RESUME 'U'
/* Replies */
#define PROTO_OK    'O'
#define PROTO_ERR   'E'

struct proto_msg;

struct proto_msg *proto_msg_new(char type);
void proto_msg_free(struct proto_msg *m);
char proto_msg_type(const struct proto_msg *m);

/* Add a field (the bytes are copied).  0, or -1 on a bad key or no memory. */
CIP_MUST_CHECK int proto_add(struct proto_msg *m, const char *key, const void *val, size_t len);
CIP_MUST_CHECK int proto_add_str(struct proto_msg *m, const char *key, const char *s);
CIP_MUST_CHECK int proto_add_u64(struct proto_msg *m, const char *key, uint64_t v);

size_t proto_nfields(const struct proto_msg *m);
/* Field i: key and bytes, borrowed from m.  Values are NUL-terminated. */
const char *proto_field(const struct proto_msg *m, size_t i, const char **val, size_t *len);
/* First field named key, or NULL; borrowed, NUL-terminated. */
const char *proto_get(const struct proto_msg *m, const char *key, size_t *len);
/* First field named key as an unsigned decimal: 0, or -1 if absent or bad. */
int proto_get_u64(const struct proto_msg *m, const char *key, uint64_t *out);

/* Encode m into a new buffer (caller frees).  0 or -1 (no memory). */
int proto_encode(const struct proto_msg *m, int armored, unsigned char **out, size_t *outlen);

/* Incremental decoder: feed bytes as they arrive, take whole messages out. */
struct proto_decoder;
struct proto_decoder *proto_decoder_new(size_t max_frame);
void proto_decoder_free(struct proto_decoder *d);
int proto_decoder_feed(struct proto_decoder *d, const void *data, size_t len);
/*
 * 1 and a message in *out (caller frees), 0 if more bytes are needed, or -1
 * on a malformed or oversize frame (the stream is then unusable).
 */
int proto_decoder_next(struct proto_decoder *d, struct proto_msg **out);
size_t proto_decoder_pending(const struct proto_decoder *d);

/* Base64 (standard alphabet, padded); exposed for the tests. */
size_t proto_b64_encode(const unsigned char *in, size_t len, char *out);
/* Returns the decoded length, or -1 on bad input.  out needs len/4*3 bytes. */
long proto_b64_decode(const char *in, size_t len, unsigned char *out);

#endif
