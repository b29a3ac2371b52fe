/*
 * The session table: the in-memory cache of sessions (container id,
 * channel, last listing of /mnt/data), keyed by id and reference counted;
 * and session resolution, which finds (or creates) the row an /exec runs
 * in.  SQLite holds the truth; an entry is only a cache of it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions_int.h"

/* The table bucket of session id. */
static unsigned
bucket_of(const char *id)
{
	unsigned h = 5381;

	while (*id)
		h = h * 33 + (unsigned char)*id++;
	return h % NBUCKETS;
}

/* The cached session for id, no reference taken, or NULL.  Caller holds sm->mu. */
static struct session *
registry_find(struct sessions *sm, const char *id)
{
	struct session *s;

	for (s = sm->table[bucket_of(id)]; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

/*
 * The cached session for row, added if absent, with a reference the caller
 * gives back with session_release.  Caller holds sm->mu.
 */
struct session *
registry_get(struct sessions *sm, const struct db_session *row)
{
	unsigned b = bucket_of(row->id);
	struct session *s;

	if ((s = registry_find(sm, row->id))) {
		s->refs++;
		return s;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
	s->refs = 2;	/* the table's and the caller's */
	memcpy(s->id, row->id, sizeof(s->id));
	snprintf(s->user, sizeof(s->user), "%s", row->user_id);
	snprintf(s->container_id, sizeof(s->container_id), "%s", row->container_id);
	pthread_mutex_init(&s->lock, NULL);
	s->next = sm->table[b];
	sm->table[b] = s;
	return s;
}

/* Give back a reference to s; the last one frees it with its channel. */
void
session_release(struct sessions *sm, struct session *s)
{
	int last;

	pthread_mutex_lock(&sm->mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&sm->mu);
	if (!last)
		return;
	channel_close(s->ch);
	workspace_free(s->ws);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Take s out of the table; the table's reference goes.  Caller holds sm->mu. */
void
registry_unlink(struct sessions *sm, struct session *s)
{
	struct session **pp = &sm->table[bucket_of(s->id)];

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = s->next;
		s->refs--;
	}
	s->gone = 1;
}

/* A usable row for id: it exists, is active, and is who's (anyone's if who names no one). */
static int
find_row(struct sessions *sm, const struct caller *who, const char *id, struct db_session *row)
{
	if (!id_valid(id) || db_session_get(sm->db, id, row) < 0)
		return -1;
	if ((who->user && strcmp(row->user_id, who->user) != 0) ||
	    strcmp(row->state, "active") != 0)
		return -1;
	return 0;
}

/*
 * The design's order: runtime_session_hint, body session_id, the bucket of
 * the files[] refs, else a new session (*created set), owned by who or,
 * if who names no one, by SESSIONS_ANONYMOUS.  0, or the -errno of the
 * failed insert (db.h: -ENOSPC, -EBUSY, -EIO).
 */
int
registry_resolve(struct sessions *sm, const struct caller *who, const struct exec_req *req,
    struct db_session *row, int *created)
{
	const char *owner = who->user ? who->user : SESSIONS_ANONYMOUS;
	size_t i;
	int rc;

	*created = 0;
	if (req->hint && req->hint[0] && strlen(req->hint) < DB_HINT_MAX &&
	    db_session_by_hint(sm->db, owner, req->hint, row) == 0)
		return 0;
	if (req->session_id && find_row(sm, who, req->session_id, row) == 0)
		return 0;
	for (i = 0; i < req->nfiles; i++)
		if (find_row(sm, who, req->files[i].bucket, row) == 0)
			return 0;
	memset(row, 0, sizeof(*row));
	if ((rc = id_new(row->id)) < 0)
		return rc;
	*created = 1;
	snprintf(row->user_id, sizeof(row->user_id), "%s", owner);
	if (req->hint && strlen(req->hint) < DB_HINT_MAX)
		snprintf(row->hint, sizeof(row->hint), "%s", req->hint);
	row->created_at = row->last_used_at = clock_wall_ms();
	strcpy(row->state, "active");
	if ((rc = db_session_insert(sm->db, row)) < 0)
		return rc;
	metrics_session_created(sm->mx);
	log_info("session %s created for user %s", row->id, owner);
	return 0;
}

/* The cached session for id with a reference, or NULL if not cached. */
struct session *
registry_cached(struct sessions *sm, const char *id)
{
	struct session *s;

	pthread_mutex_lock(&sm->mu);
	if ((s = registry_find(sm, id)))
		s->refs++;
	pthread_mutex_unlock(&sm->mu);
	return s;
}
