/*
 * Snapshots of /mnt/data (see workspace.h): a runner's listing parsed and
 * checked line by line, looked up by path, and compared with the last one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relpath.h"
#include "utf8.h"
#include "workspace.h"

#define WS_PATH_MAX 1000

/* Entries in path order, for qsort and bsearch. */
static int
by_path(const void *a, const void *b)
{
	return strcmp(((const struct ws_entry *)a)->path, ((const struct ws_entry *)b)->path);
}

/* A clean relative path (relpath.h), with no control byte, as a listing must give it. */
static int
path_ok(const char *p, size_t len)
{
	size_t i;

	if (len > WS_PATH_MAX || !utf8_valid(p, len))
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
			return 0;
	return relpath_segments(p, len) != 0;
}

/* "TYPE\tSIZE\tMTIME\tMODE\tSHA\tPATH" -> e; 0 if the line is not sound. */
static int
parse_line(const char *v, size_t len, struct ws_entry *e)
{
	const char *f[6], *p = v, *end = v + len, *tab;
	char *num_end;
	int i;

	for (i = 0; i < 5; i++) {
		f[i] = p;
		if (!(tab = memchr(p, '\t', (size_t)(end - p))))
			return 0;
		p = tab + 1;
	}
	f[5] = p;
	/* memchr, not strchr: strchr finds the terminator, so a NUL type would pass. */
	if (f[1] - f[0] != 2 || !memchr("fdlo", f[0][0], 4))
		return 0;
	e->type = f[0][0];
	e->size = strtoll(f[1], &num_end, 10);
	if (num_end != f[2] - 1 || e->size < 0)
		return 0;
	/* Anything but 64 hex digits (a NUL inside, say) is no hash: the file counts as changed. */
	if (f[5] - f[4] - 1 == 64 && strspn(f[4], "0123456789abcdef") >= 64)
		memcpy(e->sha256, f[4], 64), e->sha256[64] = '\0';
	else
		strcpy(e->sha256, "-");
	if (!path_ok(f[5], (size_t)(end - f[5])) || !(e->path = strndup(f[5], (size_t)(end - f[5]))))
		return 0;
	return 1;
}

/* A snapshot from a LIST reply, unsound lines dropped; NULL if out of memory. */
struct workspace *
workspace_parse(const struct proto_msg *rep)
{
	struct workspace *w = calloc(1, sizeof(*w));
	size_t i, total = proto_nfields(rep), len;
	const char *key, *val;
	uint64_t t = 0;

	if (!w || (total && !(w->e = calloc(total, sizeof(*w->e))))) {
		free(w);
		return NULL;
	}
	for (i = 0; i < total; i++) {
		key = proto_field(rep, i, &val, &len);
		if (strcmp(key, "e") == 0 && parse_line(val, len, &w->e[w->n]))
			w->n++;
	}
	if (proto_get_u64(rep, "truncated", &t) == 0)
		w->truncated = t != 0;
	/* An empty reply leaves e NULL, which qsort may not be given even for 0 entries. */
	if (w->n)
		qsort(w->e, w->n, sizeof(*w->e), by_path);
	return w;
}

/* The snapshot of an empty /mnt/data; NULL if out of memory. */
struct workspace *
workspace_empty(void)
{
	return calloc(1, sizeof(struct workspace));
}

/* Free a snapshot; NULL is fine. */
void
workspace_free(struct workspace *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->n; i++)
		free(w->e[i].path);
	free(w->e);
	free(w);
}

/* The entry for path in w (which may be NULL), or NULL. */
const struct ws_entry *
workspace_find(const struct workspace *w, const char *path)
{
	struct ws_entry key = { .path = (char *)path };

	if (!w || !w->n)
		return NULL;
	return bsearch(&key, w->e, w->n, sizeof(*w->e), by_path);
}

/* Record a regular file of size bytes with that hash at path; 0, or -1 if out of memory. */
int
workspace_set(struct workspace *w, const char *path, long long size, const char *sha256)
{
	struct ws_entry *e = (struct ws_entry *)workspace_find(w, path), *grown;

	if (!e) {
		if (!(grown = realloc(w->e, (w->n + 1) * sizeof(*w->e))))
			return -1;
		w->e = grown;
		e = &w->e[w->n];
		if (!(e->path = strdup(path)))
			return -1;
		w->n++;
	}
	e->type = 'f';
	e->size = size;
	snprintf(e->sha256, sizeof(e->sha256), "%s", sha256);
	qsort(w->e, w->n, sizeof(*w->e), by_path);
	return 0;
}

/* 1 if e is a regular file new or changed since before; an unhashed one always is. */
int
workspace_changed(const struct workspace *before, const struct ws_entry *e)
{
	const struct ws_entry *old;

	if (e->type != 'f')
		return 0;
	old = workspace_find(before, e->path);
	if (!old || old->type != 'f' || old->size != e->size)
		return 1;
	/* Unhashed (too large) files are skipped by size anyway. */
	return strcmp(old->sha256, e->sha256) != 0 || strcmp(e->sha256, "-") == 0;
}
