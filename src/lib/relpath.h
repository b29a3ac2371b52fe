/*
 * The one rule for a path relative to /mnt/data that every layer applies:
 * the upload and exec names (names.c), the runner's listing as the daemon
 * reads it (workspace.c) and the runner's own file operations (fsops.c).
 * Each adds its own limits (length, UTF-8, control bytes) around it.
 * libc only: the daemon and the runner share it.
 */
#ifndef CIP_RELPATH_H
#define CIP_RELPATH_H

#include <stddef.h>

/*
 * p[0..len) is relative (no leading /) and has no empty, "." or ".."
 * segment.  Returns its number of segments, or 0 if it breaks the rule.
 */
size_t relpath_segments(const char *p, size_t len);

#endif
