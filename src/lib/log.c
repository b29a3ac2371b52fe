/*
 * Logging.  Each line is formatted into a local buffer and written with one
 * write(2), so lines from different threads never interleave.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_TEXT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_setup(enum log_level level, enum log_format format)
{
	log_min = level;
	log_fmt = format;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

/* Copy src into dst escaping control bytes and, for JSON, quotes. */
static size_t
log_escape(char *dst, size_t cap, const char *src, int json)
{
	size_t n = 0;
	const unsigned char *p;

	for (p = (const unsigned char *)src; *p && n + 7 < cap; p++) {
		if (*p == '\n')
			n += (size_t)snprintf(dst + n, cap - n, "\\n");
		else if (*p < 0x20 || *p == 0x7f)
			n += (size_t)snprintf(dst + n, cap - n, json ? "\\u%04x" : "\\x%02x", *p);
		else if (json && (*p == '"' || *p == '\\'))
			n += (size_t)snprintf(dst + n, cap - n, "\\%c", *p);
		else
			dst[n++] = (char)*p;
	}
	dst[n] = '\0';
	return n;
}

static void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char msg[2048], esc[4096], line[4400], ts[40];
	struct timespec now;
	struct tm tm;
	int len;

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	len = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + len, sizeof(ts) - (size_t)len, ".%03ldZ", now.tv_nsec / 1000000);
	log_escape(esc, sizeof(esc), msg, log_fmt == LOG_JSON);
	if (log_fmt == LOG_JSON)
		len = snprintf(line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
		    ts, level_names[level], esc);
	else
		len = snprintf(line, sizeof(line), "%s %-5s %s\n", ts,
		    level_names[level], esc);
	if (len > (int)sizeof(line) - 1)
		len = (int)sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t)len) < 0)
		return;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
