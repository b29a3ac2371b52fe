/*
 * The language table: each `lang` LibreChat may send (and its usual
 * aliases) maps to the file the code is written to and the command that
 * runs it in /mnt/data.
 */
#ifndef CIP_LANG_H
#define CIP_LANG_H

#include <stddef.h>

struct lang {
	const char *id;			/* canonical name, e.g. "py" */
	const char *const *aliases;	/* NULL-ended, lowercase; may be NULL */
	const char *file;		/* code file, relative to /mnt/data */
	const char *const *run;		/* argv, "{file}" standing for the code file;
					 * the user's args are appended */
};

/* Every language, in a fixed order (the metrics index them by it). */
const struct lang *lang_all(size_t *n);
/* "py, js, ts, ...": the canonical names into out, for telling a model what there is. */
void lang_names(char *out, size_t cap);
/* Look up a name, case-insensitively; NULL if unsupported. */
const struct lang *lang_find(const char *name);
/*
 * The file the code goes to: l->file, or for Java the name of its public
 * class (in buf).  Borrowed.
 */
const char *lang_file(const struct lang *l, const char *code, char *buf, size_t cap);

#endif
