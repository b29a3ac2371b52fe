/*
 * Docker's multiplexed stream (Tty false): frames of an 8-byte header
 * (stream, 0, 0, 0, big-endian length) and a payload.  Frames arrive split
 * anywhere, down to single bytes, so this is a state machine.
 */
#ifndef CIP_DEMUX_H
#define CIP_DEMUX_H

#include <stddef.h>
#include <stdint.h>

/* Receives payload bytes of stream 0, 1 or 2; return 0, or -1 to stop. */
typedef int (*demux_sink)(int stream, const char *p, size_t n, void *ctx);

struct demux {
	unsigned char hdr[8];
	size_t hlen;
	uint32_t left;
	int stream;
	demux_sink sink;
	void *ctx;
};

void demux_init(struct demux *d, demux_sink sink, void *ctx);
/* Feed bytes; 0, or -1 on a bad header or a sink that said stop. */
int demux_feed(struct demux *d, const char *p, size_t n);
/* 1 if the stream ended on a frame boundary (EOF mid-frame is an error). */
int demux_at_boundary(const struct demux *d);

#endif
