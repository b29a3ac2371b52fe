/*
 * The warm pool: sandboxes created, started and with their runner channel
 * open, assigned to no session, so a new session starts at once.  A
 * background thread refills it; a taken sandbox belongs to one session for
 * good (it is removed with it, never returned), so no container ever serves
 * two sessions.  Pooled containers carry the label cip.pool=1 and no
 * session label.
 */
#ifndef CIP_POOL_H
#define CIP_POOL_H

#include "cfg.h"
#include "docker.h"
#include "sandbox.h"

/*
 * The container cap lives with the sessions: reserve asks for a slot for
 * one more container (1 if granted), release gives a reserved slot back
 * once the container is made and counted in pool_size, or not made.
 */
struct pool_hooks {
	int (*reserve)(void *ctx);
	void (*release)(void *ctx);
	void *ctx;
};

struct pool;

/* cfg, sbx and hooks->ctx are borrowed.  CI_POOL_SIZE 0: NULL, no pool. */
struct pool *pool_new(const struct cfg *cfg, const struct sandboxes *sbx,
    const struct pool_hooks *hooks);
/* Start the refill thread. */
int pool_start(struct pool *p);
/*
 * A ready sandbox, now the caller's; -1 if none is (or p is NULL).  The
 * refill waits for pool_kick: call it once the request is answered.
 */
int pool_take(struct pool *p, struct sandbox *out);
/* Sandboxes waiting now (0 for NULL). */
int pool_size(struct pool *p);
/* Room may have appeared: wake the refill thread. */
void pool_kick(struct pool *p);
/* Stop refilling and remove every pooled container; then free. */
void pool_free(struct pool *p);

#endif
