/*
 * An /exec request body, parsed and validated: lang, code, args, session
 * hints and files[] in all three ref shapes of the contract.  Unknown fields
 * are ignored, as clients send plenty.
 */
#ifndef CIP_EXEC_REQ_H
#define CIP_EXEC_REQ_H

#include <stddef.h>

#include "lang.h"

struct exec_file_ref {
	char *id;	/* storage file id */
	char *bucket;	/* storage_session_id, or legacy session_id */
	char *name;	/* path relative to /mnt/data */
	char *kind;	/* "user", "agent", "skill", or NULL (legacy: the user's) */
};

struct exec_req {
	const struct lang *lang;	/* NULL: a language we do not run (unknown_lang) */
	char *unknown_lang;
	char *code;
	size_t code_len;
	char **args;
	size_t nargs;
	char *session_id;	/* NULL when absent */
	char *hint;		/* runtime_session_hint */
	char *user_id;		/* body user_id */
	long long timeout_ms;	/* body timeout: an upper bound on the run; 0 if none */
	struct exec_file_ref *files;
	size_t nfiles;
};

/*
 * Parse body[0..len).  0 and a new request in *out (free with
 * exec_req_free), or -1 with the client-facing reason in err (a 400).  A
 * well-formed request in a language we do not run parses, with lang NULL:
 * it is the model's to fix, and is answered so that the model sees why.
 */
int exec_req_parse(const char *body, size_t len, struct exec_req **out,
    char *err, size_t errlen);
void exec_req_free(struct exec_req *r);

#endif
