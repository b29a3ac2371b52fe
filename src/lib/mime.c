/*
 * libmagic handles are neither thread-safe nor reentrant (a result is
 * overwritten by the next call), so each thread opens its own, closed when
 * the thread ends.  Extensions decide first where magic is vague: it calls a
 * CSV "text/plain", and a browser showing a download should know better.
 */
#include "config.h"

#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

static pthread_key_t magic_key;
static pthread_once_t magic_once = PTHREAD_ONCE_INIT;

static const struct { const char *ext, *type; } by_ext[] = {
	{ "csv", "text/csv" }, { "tsv", "text/tab-separated-values" },
	{ "json", "application/json" }, { "html", "text/html" }, { "htm", "text/html" },
	{ "md", "text/markdown" }, { "txt", "text/plain" }, { "svg", "image/svg+xml" },
	{ "xml", "application/xml" }, { "js", "text/javascript" }, { "css", "text/css" },
	{ "py", "text/x-python" }, { "png", "image/png" }, { "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" }, { "gif", "image/gif" }, { "webp", "image/webp" },
	{ "pdf", "application/pdf" }, { "zip", "application/zip" },
	{ "bin", "application/octet-stream" }, { "dat", "application/octet-stream" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
};

static void
magic_destroy(void *m)
{
	magic_close(m);
}

static void
magic_key_init(void)
{
	pthread_key_create(&magic_key, magic_destroy);
}

static magic_t
thread_magic(void)
{
	magic_t m;

	pthread_once(&magic_once, magic_key_init);
	if ((m = pthread_getspecific(magic_key)))
		return m;
	if (!(m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR)))
		return NULL;
	if (magic_load(m, NULL) != 0) {
		magic_close(m);
		return NULL;
	}
	pthread_setspecific(magic_key, m);
	return m;
}

void
mime_guess(const void *data, size_t len, const char *name, char *out, size_t cap)
{
	const char *dot = strrchr(name, '.'), *t = NULL;
	magic_t m;
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(by_ext) / sizeof(by_ext[0]); i++)
			if (strcasecmp(dot + 1, by_ext[i].ext) == 0) {
				snprintf(out, cap, "%s", by_ext[i].type);
				return;
			}
	if ((m = thread_magic()))
		t = magic_buffer(m, data, len);
	snprintf(out, cap, "%s", t && *t ? t : "application/octet-stream");
}
