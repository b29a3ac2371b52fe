/*
 * Hashes of the last workspace listing, by path.  A file whose inode, size,
 * mtime and ctime are unchanged keeps its hash: user code can set mtime
 * back, but any write moves ctime.  Without it every listing would re-read
 * the whole workspace, and a session holding a large data set would pay for
 * that on every run.  An open-addressing table; each listing is a new
 * generation, and entries the last complete listing did not see are dropped.
 * The server loop owns the one cache of a runner.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

struct hentry {
	char *path;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
	char hex[65];
	unsigned gen;
};

struct hash_cache {
	struct hentry *tab;
	size_t cap, used;	/* cap: 0 or a power of two */
	unsigned gen;
};

/* FNV-1a of a path. */
static unsigned long
path_hash(const char *path)
{
	unsigned long h = 1469598103934665603UL;

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211UL;
	return h;
}

/* The slot of path in hc, or of the free slot where it would go. */
static size_t
slot_of(const struct hash_cache *hc, const char *path)
{
	size_t i;

	for (i = path_hash(path) & (hc->cap - 1); hc->tab[i].path;
	    i = (i + 1) & (hc->cap - 1))
		if (strcmp(hc->tab[i].path, path) == 0)
			break;
	return i;
}

/* The entry for path, or NULL. */
static struct hentry *
find(const struct hash_cache *hc, const char *path)
{
	size_t i;

	if (!hc->cap)
		return NULL;
	i = slot_of(hc, path);
	return hc->tab[i].path ? &hc->tab[i] : NULL;
}

/* Rebuild the table at newcap keeping the entries of the current generation. */
static void
rehash(struct hash_cache *hc, size_t newcap)
{
	struct hentry *old = hc->tab, *t = calloc(newcap, sizeof(*t));
	size_t oldcap = hc->cap, i;

	if (!t)
		return;
	hc->tab = t;
	hc->cap = newcap;
	hc->used = 0;
	for (i = 0; i < oldcap; i++) {
		if (!old[i].path)
			continue;
		if (old[i].gen != hc->gen) {
			free(old[i].path);
			continue;
		}
		hc->tab[slot_of(hc, old[i].path)] = old[i];
		hc->used++;
	}
	free(old);
}

/* An empty cache; NULL if out of memory. */
struct hash_cache *
hash_cache_new(void)
{
	return calloc(1, sizeof(struct hash_cache));
}

/* Free the cache and its entries; NULL is fine. */
void
hash_cache_free(struct hash_cache *hc)
{
	size_t i;

	if (!hc)
		return;
	for (i = 0; i < hc->cap; i++)
		free(hc->tab[i].path);
	free(hc->tab);
	free(hc);
}

/* A listing starts: a new generation. */
void
hash_cache_begin(struct hash_cache *hc)
{
	hc->gen++;
}

/* A complete listing ends: drop the entries it did not see. */
void
hash_cache_end(struct hash_cache *hc)
{
	if (hc->cap)
		rehash(hc, hc->cap);
}

/* Remember hex as path's hash for the file st describes (not if out of memory). */
void
hash_cache_put(struct hash_cache *hc, const char *path, const struct stat *st, const char *hex)
{
	struct hentry *e = find(hc, path);
	size_t i;

	if (!e) {
		if ((hc->used + 1) * 10 > hc->cap * 7)
			rehash(hc, hc->cap ? hc->cap * 2 : 1024);
		if (!hc->cap)
			return;
		i = slot_of(hc, path);
		if (!(hc->tab[i].path = strdup(path)))
			return;
		e = &hc->tab[i];
		hc->used++;
	}
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtim = st->st_mtim;
	e->ctim = st->st_ctim;
	e->gen = hc->gen;
	snprintf(e->hex, sizeof(e->hex), "%s", hex);
}

/* path's hash if its stat is unchanged since it was put, else NULL; a hit counts as seen. */
const char *
hash_cache_get(struct hash_cache *hc, const char *path, const struct stat *st)
{
	struct hentry *e = find(hc, path);

	if (!e || e->ino != st->st_ino || e->size != st->st_size ||
	    e->mtim.tv_sec != st->st_mtim.tv_sec || e->mtim.tv_nsec != st->st_mtim.tv_nsec ||
	    e->ctim.tv_sec != st->st_ctim.tv_sec || e->ctim.tv_nsec != st->st_ctim.tv_nsec)
		return NULL;
	e->gen = hc->gen;
	return e->hex;
}
