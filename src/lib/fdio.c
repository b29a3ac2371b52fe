/*
 * Writing to a file descriptor (see fdio.h).
 */
#include <errno.h>
#include <unistd.h>

#include "fdio.h"

int
write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;	/* a regular write never returns 0 for n > 0 */
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
