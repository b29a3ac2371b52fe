/*
 * A fake source of sandboxes for the unit tests of sessions/: "containers"
 * are records in memory, and each channel is a socketpair whose far end a
 * thread serves as a runner would, over the real protocol and Docker's
 * multiplexed framing.  Its /mnt/data is a list of files in memory.  A run
 * interprets the code file as a tiny script:
 *
 *   print TEXT        TEXT and a newline on stdout
 *   write NAME TEXT   NAME now holds TEXT
 *   remove NAME       NAME is gone
 *   block             wait until fake_release (a run that is "still going")
 *   exit N            the exit status
 *
 * The runner can be told to lie (enum fake_lie), and the engine to fail.
 */
#ifndef CIP_FAKE_SANDBOX_H
#define CIP_FAKE_SANDBOX_H

#include "sandbox.h"

enum fake_lie {
	LIE_NONE,
	LIE_BAD_NAMES,		/* listings add paths that escape /mnt/data */
	LIE_LIST_HUGE,		/* listings claim every file is 1 TB */
	LIE_GET_HUGE,		/* a GET answers with far more bytes than asked for */
	LIE_EOF_RUN,		/* a RUN gets half a reply, then EOF */
	LIE_EOF_PUT_ONCE,	/* the next PUT gets half a reply, then EOF; then honest */
	LIE_GARBAGE_RUN,	/* a RUN gets bytes that are no frame */
	LIE_WILD_NUMBERS,	/* a RUN's exit code, signal, wall time and totals are absurd */
};

struct fake;

struct fake *fake_new(void);
/* Stop every runner thread and free (after sessions_free). */
void fake_free(struct fake *f);
/* The table sessions_new_with takes. */
const struct sandboxes *fake_sandboxes(struct fake *f);

void fake_set_lie(struct fake *f, enum fake_lie lie);
/* make fails with this DOCKER_* code from now on (DOCKER_OK: it works). */
void fake_fail_make(struct fake *f, int docker_rc);
/* make sleeps this long first: a slow engine widens the races. */
void fake_make_delay(struct fake *f, int ms);
/* Container id is stopped (as after an engine restart): its channel ends. */
void fake_stop(struct fake *f, const char *id);

/* Block until n runs are inside a "block" line. */
void fake_wait_blocked(struct fake *f, int n);
/* Let every blocked run end. */
void fake_release(struct fake *f);

/* Counters: sandboxes made, removed, channels attached, most alive at once. */
int fake_made(struct fake *f);
int fake_removed(struct fake *f);
int fake_attached(struct fake *f);
int fake_max_alive(struct fake *f);
int fake_alive(struct fake *f);
/* 1 if container id exists and was not removed. */
int fake_exists(struct fake *f, const char *id);
/* The id of the nth container removed (0 first), or "" . */
const char *fake_removed_id(struct fake *f, int n);
/* What container id holds at path, or NULL (a copy: free it). */
char *fake_file(struct fake *f, const char *id, const char *path);
/* Paths GET asked for, as one string "a\nb\n" (a copy: free it). */
char *fake_gets(struct fake *f);

#endif
