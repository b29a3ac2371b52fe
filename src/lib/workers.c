/*
 * The thread pool of workers.h: one mutex, one condition variable, a FIFO
 * of jobs.  Each job is one small allocation, freed by the thread that
 * runs it.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "workers.h"

struct job {
	struct job *next;
	workers_job fn;
	void *arg;
};

struct workers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;	/* FIFO, under mu */
	size_t queued, running;		/* under mu */
	size_t idle;			/* threads waiting on cv, under mu */
	size_t nthreads, max_threads;
	pthread_t *threads;		/* max_threads slots, nthreads used */
	int stopping;
};

/* Take the next job, waiting for one; NULL once stopping and empty. */
static struct job *
next_job(struct workers *w)
{
	struct job *j;

	pthread_mutex_lock(&w->mu);
	while (!w->head && !w->stopping) {
		w->idle++;
		pthread_cond_wait(&w->cv, &w->mu);
		w->idle--;
	}
	if ((j = w->head)) {
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		w->queued--;
		w->running++;
	}
	pthread_mutex_unlock(&w->mu);
	return j;
}

static void *
worker_main(void *arg)
{
	struct workers *w = arg;
	struct job *j;

	while ((j = next_job(w))) {
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&w->mu);
		w->running--;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

struct workers *
workers_new(size_t max_threads)
{
	struct workers *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->max_threads = max_threads ? max_threads : 1;
	if (!(w->threads = calloc(w->max_threads, sizeof(*w->threads)))) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	return w;
}

/* Under mu: a thread more when every one is busy; a failure is not fatal while one runs. */
static int
grow_locked(struct workers *w)
{
	if (w->idle >= w->queued || w->nthreads == w->max_threads)
		return 0;
	if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0)
		return w->nthreads ? 0 : -1;
	w->nthreads++;
	return 0;
}

int
workers_submit(struct workers *w, workers_job fn, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return -1;
	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&w->mu);
	if (w->stopping)
		goto refuse;
	w->queued++;
	if (grow_locked(w) < 0) {
		w->queued--;
		goto refuse;
	}
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
refuse:
	pthread_mutex_unlock(&w->mu);
	free(j);
	return -1;
}

size_t
workers_pending(struct workers *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->queued + w->running;
	pthread_mutex_unlock(&w->mu);
	return n;
}

size_t
workers_threads(struct workers *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->nthreads;
	pthread_mutex_unlock(&w->mu);
	return n;
}

void
workers_free(struct workers *w)
{
	size_t i;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	/* nthreads no longer changes: submit refuses once stopping. */
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->threads);
	free(w);
}
