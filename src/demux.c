#include "config.h"

#include <string.h>

#include "demux.h"

void
demux_init(struct demux *d, demux_sink sink, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->sink = sink;
	d->ctx = ctx;
}

int
demux_feed(struct demux *d, const char *p, size_t n)
{
	size_t take;

	while (n) {
		if (d->left == 0) {
			take = 8 - d->hlen < n ? 8 - d->hlen : n;
			memcpy(d->hdr + d->hlen, p, take);
			d->hlen += take;
			p += take;
			n -= take;
			if (d->hlen < 8)
				return 0;
			if (d->hdr[0] > 2 || d->hdr[1] || d->hdr[2] || d->hdr[3])
				return -1;
			d->stream = d->hdr[0];
			d->left = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
			    (uint32_t)d->hdr[6] << 8 | d->hdr[7];
			d->hlen = 0;
			continue;
		}
		take = d->left < n ? d->left : n;
		if (d->sink(d->stream, p, take, d->ctx) < 0)
			return -1;
		d->left -= (uint32_t)take;
		p += take;
		n -= take;
	}
	return 0;
}

int
demux_at_boundary(const struct demux *d)
{
	return d->left == 0 && d->hlen == 0;
}
