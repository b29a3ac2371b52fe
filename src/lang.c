#include "config.h"

#include <stddef.h>
#include <strings.h>

#include "lang.h"

#define A(...) (const char *const[]){ __VA_ARGS__, NULL }

static const struct lang langs[] = {
	{ "py", A("python", "python3", "py3"), "main.py", A("python3", "main.py") },
	{ "js", A("javascript", "node", "nodejs"), "index.js", A("node", "index.js") },
	{ "bash", A("sh", "shell"), "script.sh", A("bash", "script.sh") },
};

const struct lang *
lang_find(const char *name)
{
	size_t i, j;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(langs) / sizeof(langs[0]); i++) {
		if (strcasecmp(name, langs[i].id) == 0)
			return &langs[i];
		for (j = 0; langs[i].aliases[j]; j++)
			if (strcasecmp(name, langs[i].aliases[j]) == 0)
				return &langs[i];
	}
	return NULL;
}
