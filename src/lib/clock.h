/* Millisecond clocks; header-only so the static runner shares them. */
#ifndef CIP_CLOCK_H
#define CIP_CLOCK_H

#include <time.h>

/* For deadlines and durations: never jumps. */
static inline long long
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unix time in milliseconds, for what is stored or shown. */
static inline long long
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
