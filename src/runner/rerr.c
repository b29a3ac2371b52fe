/*
 * Why a runner request failed: the handlers write it here and return -1,
 * and dispatch turns it into the error reply.  A file of its own so that
 * the handlers need nothing from runner.c, which calls them.
 */
#include <stdarg.h>
#include <stdio.h>

#include "runner.h"

/* Format why a request failed into e; returns -1. */
int
rerr_set(struct rerr *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}
