/*
 * A question a long wait asks now and then: should it stop?  The HTTP
 * layer answers "the client went away"; the session code passes it down to
 * the channel, which cancels the run.  Header-only.
 */
#ifndef CIP_ABORT_H
#define CIP_ABORT_H

struct abort_check {
	int (*fired)(void *ctx);	/* 1: stop waiting, the answer is wanted by no one */
	void *ctx;
};

/* 1 if ab (may be NULL) says stop. */
static inline int
abort_fired(const struct abort_check *ab)
{
	return ab && ab->fired(ab->ctx);
}

#endif
