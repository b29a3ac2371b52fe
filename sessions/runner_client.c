/*
 * Talking to a session's runner: the environment of every run, the PUT
 * and RUN requests, one request and its reply over the channel, and the
 * exec_result a run's reply becomes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions_int.h"

/* One request and its reply; an error reply or a lost channel is an error. */
enum runner_rc
runner_call(struct session *s, const struct proto_msg *req, struct proto_msg **rep,
    int timeout_ms, const struct abort_check *ab, char *detail, size_t detlen)
{
	int r = channel_call(s->ch, req, rep, timeout_ms, ab);

	if (r < 0) {
		snprintf(detail, detlen, "runner channel: %s (%.200s)", strerror(-r),
		    channel_stderr(s->ch));
		return RUNNER_ELOST;
	}
	if (proto_msg_type(*rep) != PROTO_OK) {
		const char *e = proto_get(*rep, "error", NULL);
		snprintf(detail, detlen, "runner: %.300s", e ? e : "unknown error");
		return RUNNER_EFAILED;
	}
	return RUNNER_OK;
}

/* The RUN request for req, file as its {file}, with env and caps; NULL if out of memory. */
long long
run_timeout_ms(const struct cfg *c, const struct exec_req *req)
{
	long long cap = (long long)c->max_run_timeout_s * 1000;

	return req->timeout_ms > 0 && req->timeout_ms < cap ? req->timeout_ms : cap;
}

/* The preamble a program that calls tools runs under, by language; NULL: not served. */
static const char *
tool_preamble(const struct lang *l)
{
	if (strcmp(l->id, "py") == 0)
		return "python3\0/opt/cip/ptc/ptc.py";
	if (strcmp(l->id, "bash") == 0)
		return "bash\0/opt/cip/ptc/ptc.sh";
	return NULL;
}

struct proto_msg *
build_run(const struct cfg *c, const struct exec_req *req, const char *file, const char *tool_env)
{
	struct proto_msg *m = proto_msg_new(PROTO_RUN);
	const char *pre = tool_env ? tool_preamble(req->lang) : NULL;
	size_t i;
	int bad = !m || (tool_env && !pre);

	if (pre && !bad)
		bad |= proto_add_str(m, "argv", pre) | proto_add_str(m, "argv",
		    pre + strlen(pre) + 1) | proto_add_str(m, "argv", file) |
		    proto_add_u64(m, "tools", 1) | proto_add_str(m, "env", tool_env);
	for (i = 0; !bad && !pre && req->lang->run[i]; i++)
		bad |= proto_add_str(m, "argv", strcmp(req->lang->run[i], "{file}") == 0 ?
		    file : req->lang->run[i]);
	for (i = 0; !bad && i < req->nargs; i++)
		bad |= proto_add_str(m, "argv", req->args[i]);
	for (i = 0; !bad && sandbox_run_env[i]; i++)
		bad |= proto_add_str(m, "env", sandbox_run_env[i]);
	if (!bad)
		bad |= proto_add_str(m, "cwd", "/mnt/data") |
		    proto_add_u64(m, "timeout_ms", (uint64_t)run_timeout_ms(c, req)) |
		    proto_add_u64(m, "max_output", (uint64_t)c->max_output_bytes);
	if (bad) {
		proto_msg_free(m);
		return NULL;
	}
	return m;
}

/* The PUT request writing req's code to file; NULL if out of memory. */
struct proto_msg *
build_put(const struct exec_req *req, const char *file)
{
	struct proto_msg *m = proto_msg_new(PROTO_PUT);

	if (m && (proto_add_str(m, "path", file) < 0 ||
	    proto_add(m, "data", req->code, req->code_len) < 0)) {
		proto_msg_free(m);
		return NULL;
	}
	return m;
}

/* Copy one output stream out of the reply, exactly as the program wrote it (up to the cap). */
static int
take_stream(const struct proto_msg *rep, const char *key, const char *totkey,
    char **out, size_t *len, unsigned long long *total)
{
	const char *v = proto_get(rep, key, len);
	uint64_t tot = 0;

	if (!v) {
		v = "";
		*len = 0;
	}
	proto_get_u64(rep, totkey, &tot);
	*total = tot < *len ? *len : tot;
	if (!(*out = malloc(*len + 1)))
		return -1;
	memcpy(*out, v, *len);
	(*out)[*len] = '\0';
	return 0;
}

/* Append a line for the model to the stderr of res. */
static int
append_note(struct exec_result *res, const char *note)
{
	size_t n = strlen(note), sep = res->err_len && res->err[res->err_len - 1] != '\n';
	char *grown = realloc(res->err, res->err_len + sep + n + 1);

	if (!grown)
		return -1;
	res->err = grown;
	if (sep)
		res->err[res->err_len++] = '\n';
	memcpy(res->err + res->err_len, note, n + 1);
	res->err_len += n;
	return 0;
}

/* Fill res from a RUN reply, noting a timeout or SIGKILL on stderr; 0, or -1 if no memory. */
/*
 * Notes for the model, in stderr: cut streams (stdout stays exactly the
 * bytes shown: LibreChat's image reader parses its last line), a timeout,
 * the OOM killer.
 */
static int
add_notes(const struct cfg *c, struct exec_result *res, int timeout_s)
{
	char note[200];

	if (res->out_total > res->out_len) {
		res->overflow = 1;
		snprintf(note, sizeof(note), "[stdout truncated: %zu of %llu bytes shown "
		    "(CI_MAX_OUTPUT_BYTES)]\n", res->out_len, res->out_total);
		if (append_note(res, note) < 0)
			return -1;
	}
	if (res->err_total > res->err_len) {
		snprintf(note, sizeof(note), "[stderr truncated: %llu bytes written]\n",
		    res->err_total);
		if (append_note(res, note) < 0)
			return -1;
	}
	if (res->timed_out)
		snprintf(note, sizeof(note), "Execution timed out after %d s: every process of "
		    "the run was stopped.\n", timeout_s);
	else if (res->signal == 9)
		/* Nobody else sends SIGKILL in the sandbox: it is the OOM killer. */
		snprintf(note, sizeof(note), "Killed by SIGKILL: most likely the program ran out "
		    "of memory (the sandbox limit is %d MiB).\n", c->max_memory_mb);
	else
		return 0;
	return append_note(res, note);
}

int
result_from_reply(const struct cfg *c, const struct exec_req *req, const struct proto_msg *rep,
    struct exec_result *res)
{
	uint64_t v;

	if (take_stream(rep, "stdout", "stdout_total", &res->out, &res->out_len, &res->out_total) < 0 ||
	    take_stream(rep, "stderr", "stderr_total", &res->err, &res->err_len, &res->err_total) < 0)
		return -1;
	res->exit_code = proto_get_u64(rep, "exit_code", &v) == 0 && v < 256 ? (int)v : 255;
	res->signal = proto_get_u64(rep, "signal", &v) == 0 && v < 65 ? (int)v : 0;
	res->timed_out = proto_get_u64(rep, "timed_out", &v) == 0 && v;
	res->cancelled = proto_get_u64(rep, "cancelled", &v) == 0 && v;
	res->wall_ms = proto_get_u64(rep, "wall_ms", &v) == 0 && v < 1000000000 ? (long)v : 0;
	return add_notes(c, res, (int)((run_timeout_ms(c, req) + 999) / 1000));
}
