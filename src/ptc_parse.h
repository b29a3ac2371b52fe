/*
 * What programmatic tool calling reads (ptc.h): the request body, its
 * tool definitions and the names they get in code, the line of calls a
 * program writes, and the line of results it reads back.  No threads, no
 * sessions: the parsing of ptc.c and routes_ptc.c, apart so that it can
 * be tested and fuzzed alone.
 */
#ifndef CIP_PTC_PARSE_H
#define CIP_PTC_PARSE_H

#include <stddef.h>

#include "exec_req.h"

#define PTC_MAX_TOOLS 5000
#define PTC_NAME_MAX 128

struct json_object;

struct ptc_tool {
	char *name;		/* as the client knows it */
	char *as;		/* as the program calls it */
};

/* The name a tool gets in a program of lang ("py" or "bash"), into out; 0, or -1 if none is left. */
int ptc_tool_name(const char *lang, const char *name, char *out, size_t cap);

/* A request body as a JSON object (depth capped), or NULL. */
struct json_object *ptc_body_parse(const char *body, size_t len);
/* The initial request o (borrowed) as an exec request: lang bash or py (the default); NULL with err. */
struct exec_req *ptc_initial_exec(struct json_object *o, char *err, size_t errlen);

/*
 * The tools of the definitions defs (borrowed), named for bash or Python,
 * and the CIP_PTC_TOOLS=... environment entry that carries them.  0, or -1
 * with err; either way *tools and *env are the caller's to free.
 */
int ptc_tools_take(int bash, struct json_object *defs, struct ptc_tool **tools, size_t *ntools,
    char **env, char *err, size_t errlen);
void ptc_tools_free(struct ptc_tool *tools, size_t ntools);

/*
 * A program's line of calls as tool_calls for the client: every call an
 * object with a string id and a registered name.  NULL with err.
 */
struct json_object *ptc_calls_parse(const struct ptc_tool *tools, size_t ntools,
    const char *line, size_t len, char *err, size_t errlen);

/*
 * The line of results the program reads: Python takes the client's list
 * as {"results": [...]}; bash, which asks one call at a time, a status
 * and the compact JSON (or the error) of that one.  NULL with err.
 */
char *ptc_results_line(int bash, struct json_object *results, size_t *len, char *err,
    size_t errlen);

#endif
