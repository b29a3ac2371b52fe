/*
 * A pool of threads that run jobs in the order they were submitted.  It
 * grows a thread at a time, when a job arrives and every thread is busy,
 * up to a cap; past the cap jobs wait their turn.  Threads are kept once
 * made: an idle one costs its stack's touched pages, and making threads
 * only under load keeps a quiet daemon small.
 */
#ifndef CIP_WORKERS_H
#define CIP_WORKERS_H

#include <stddef.h>

struct workers;

typedef void (*workers_job)(void *arg);

/* A pool of at most max_threads (>= 1) threads; NULL if out of memory. */
struct workers *workers_new(size_t max_threads);
/*
 * Queue fn(arg).  0, or -1 when the job cannot be taken (out of memory,
 * no thread could be made while none runs, or the pool is stopping): then
 * fn is never called and arg stays the caller's.
 */
int workers_submit(struct workers *w, workers_job fn, void *arg);
/* Jobs queued or running now. */
size_t workers_pending(struct workers *w);
/* Threads made so far. */
size_t workers_threads(struct workers *w);
/* Refuse new jobs, run every job already queued, join the threads, free. */
void workers_free(struct workers *w);

#endif
