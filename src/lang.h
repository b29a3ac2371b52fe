/*
 * The language table: each `lang` LibreChat may send (and its usual
 * aliases) maps to the file the code is written to and the command that
 * runs it in /mnt/data.
 */
#ifndef CIP_LANG_H
#define CIP_LANG_H

struct lang {
	const char *id;			/* canonical name, e.g. "py" */
	const char *const *aliases;	/* NULL-ended, lowercase */
	const char *file;		/* code file, relative to /mnt/data */
	const char *const *run;		/* argv; user args are appended */
};

/* Look up a name, case-insensitively; NULL if unsupported. */
const struct lang *lang_find(const char *name);

#endif
