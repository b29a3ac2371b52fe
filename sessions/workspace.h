/*
 * A snapshot of a sandbox's /mnt/data as its runner listed it: what tells
 * the files a run created or changed.  The listing comes from inside the
 * sandbox, so every line is checked: a bad line is dropped, never trusted.
 */
#ifndef CIP_WORKSPACE_H
#define CIP_WORKSPACE_H

#include <stddef.h>

#include "proto.h"

struct ws_entry {
	char type;		/* 'f' file, 'd' dir, 'l' symlink, 'o' other */
	long long size;
	char sha256[65];	/* "-" when not hashed (too large) */
	char *path;		/* relative to /mnt/data, valid UTF-8 */
};

struct workspace {
	struct ws_entry *e;	/* sorted by path */
	size_t n;
	int truncated;		/* the runner stopped at its entry cap */
};

/* Parse a LIST reply; NULL if memory ran out. */
struct workspace *workspace_parse(const struct proto_msg *rep);
/* The snapshot of a new sandbox's /mnt/data, known to be empty; NULL if out of memory. */
struct workspace *workspace_empty(void);
void workspace_free(struct workspace *w);
const struct ws_entry *workspace_find(const struct workspace *w, const char *path);
/* Record that path now holds a regular file of size bytes with that hash. */
int workspace_set(struct workspace *w, const char *path, long long size, const char *sha256);
/* 1 if e (of a later snapshot) is a regular file new or changed since before. */
int workspace_changed(const struct workspace *before, const struct ws_entry *e);

#endif
