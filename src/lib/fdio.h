/*
 * Writing to a file descriptor.  libc only: the daemon and the runner (a
 * static binary in every sandbox) share it.
 */
#ifndef CIP_FDIO_H
#define CIP_FDIO_H

#include <stddef.h>

/* Write all n bytes, retrying short writes and EINTR; 0, or -1 with errno. */
int write_all(int fd, const void *buf, size_t n);

#endif
