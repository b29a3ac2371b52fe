/*
 * Startup reconcile: adopt the labelled containers whose sessions are
 * active, remove the others (and any whose image matches
 * CI_SANDBOX_IMAGE_PREFIXES), and forget the containers the database names
 * but the engine no longer has.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions_int.h"

struct seen {
	char (*ids)[DOCKER_ID_MAX];
	size_t n, alloc;
};

/* Add id to the containers kept; 0, or -1 if out of memory. */
static int
remember(struct seen *v, const char *id)
{
	char (*grown)[DOCKER_ID_MAX];

	if (v->n == v->alloc) {
		v->alloc = v->alloc ? v->alloc * 2 : 32;
		if (!(grown = realloc(v->ids, v->alloc * sizeof(*grown))))
			return -1;
		v->ids = grown;
	}
	snprintf(v->ids[v->n++], DOCKER_ID_MAX, "%s", id);
	return 0;
}

struct reconcile {
	struct sessions *sm;
	struct seen kept;
	int adopted, removed;
};

/* Remove container id at startup, logging why, and count it. */
static void
remove_container(struct reconcile *rc, const char *id, const char *why)
{
	struct docker_err err = { 0, "" };

	if (docker_remove(rc->sm->dk, id, &err) != DOCKER_OK) {
		log_error("startup: cannot remove container %.12s: %s", id, err.msg);
		return;
	}
	log_info("startup: removed container %.12s (%s)", id, why);
	rc->removed++;
}

/* Adopt a labelled container for its active session, or remove it. */
static int
reconcile_labelled(const struct docker_container *c, void *ctx)
{
	struct reconcile *rc = ctx;
	struct sessions *sm = rc->sm;
	const char *session = docker_label(c, SANDBOX_SESSION_LABEL);
	const char *pool = docker_label(c, SANDBOX_POOL_LABEL);
	struct db_session row;

	if (!session && pool && strcmp(pool, "1") == 0) {
		/* From a warm pool: a session's if the database says so, else unused. */
		if (db_session_by_container(sm->db, c->id, &row) < 0) {
			remove_container(rc, c->id, "an unused warm-pool container");
			return 0;
		}
	} else if (!session || !id_valid(session) || db_session_get(sm->db, session, &row) < 0) {
		remove_container(rc, c->id, "no such session");
		return 0;
	}
	if (strcmp(row.state, "active") != 0) {
		remove_container(rc, c->id, "its session has ended");
		return 0;
	}
	if (row.container_id[0] && strcmp(row.container_id, c->id) != 0) {
		remove_container(rc, c->id, "its session has another container");
		return 0;
	}
	if (strcmp(c->state, "running") != 0) {
		remove_container(rc, c->id, "not running");
		return 0;
	}
	if (!row.container_id[0] && db_session_set_container(sm->db, row.id, c->id) < 0)
		store_failed(sm, "record its container", row.id);
	remember(&rc->kept, c->id);
	rc->adopted++;
	return 0;
}

/* The image name without the registry prefixes engines add. */
static const char *
bare_image(const char *image)
{
	static const char *const strip[] = { "localhost/", "docker.io/library/", "docker.io/" };
	size_t i, n;

	for (i = 0; i < sizeof(strip) / sizeof(strip[0]); i++) {
		n = strlen(strip[i]);
		if (strncmp(image, strip[i], n) == 0)
			return image + n;
	}
	return image;
}

/* Remove an unlabelled container whose image matches CI_SANDBOX_IMAGE_PREFIXES. */
static int
reconcile_by_image(const struct docker_container *c, void *ctx)
{
	struct reconcile *rc = ctx;
	const char *list = rc->sm->cfg->image_prefixes, *p = list, *image = bare_image(c->image);
	size_t n;

	if (c->labelled)
		return 0;	/* handled by label */
	while (*p) {
		n = strcspn(p, ",");
		if (n && strncmp(image, p, n) == 0) {
			remove_container(rc, c->id, "its image matches CI_SANDBOX_IMAGE_PREFIXES");
			break;
		}
		p += n + (p[n] == ',');
	}
	return 0;
}

/* Forget row's container unless it was adopted: the engine no longer has it. */
static int
forget_gone(const struct db_session *row, long files, long long bytes, void *ctx)
{
	struct reconcile *rc = ctx;
	size_t i;

	if (!row->container_id[0])
		return 0;
	for (i = 0; i < rc->kept.n; i++)
		if (strcmp(rc->kept.ids[i], row->container_id) == 0)
			return 0;
	if (db_session_set_container(rc->sm->db, row->id, NULL) < 0) {
		store_failed(rc->sm, "forget its lost container", row->id);
		return 0;
	}
	log_info("startup: session %s lost its container; its next call re-creates it", row->id);
	return 0;
}

/* Adopt or remove containers at startup, and forget those the engine no longer has. */
void
sessions_reconcile(struct sessions *sm)
{
	struct reconcile rc = { sm, { NULL, 0, 0 }, 0, 0 };
	struct docker_err err = { 0, "" };

	if (!sm->dk)
		return;		/* sandboxes that are not containers: nothing to adopt */
	if (docker_list_containers(sm->dk, sm->cfg->sandbox_label, "1", reconcile_labelled, &rc,
	    &err) != DOCKER_OK) {
		log_error("startup: cannot list containers: %s", err.msg);
		goto out;
	}
	if (sm->cfg->image_prefixes[0] &&
	    docker_list_containers(sm->dk, sm->cfg->sandbox_label, NULL, reconcile_by_image, &rc,
	    &err) != DOCKER_OK)
		log_error("startup: cannot list containers: %s", err.msg);
	db_session_list(sm->db, forget_gone, &rc);
	log_info("startup: %d container(s) adopted, %d removed", rc.adopted, rc.removed);
out:
	free(rc.kept.ids);
}
