/*
 * Which sandbox caps the engine would drop, and the startup verdict (see
 * engine_limits.h).  The rules follow what engines were seen to report:
 * rootless Podman 4.3 on cgroup v1 answers /info with MemoryLimit,
 * PidsLimit and CpuCfsQuota all true (they describe the host), yet drops
 * the three caps with an empty Warnings list; its Rootless and
 * CgroupVersion members are what tell.  So the rootless rules come first,
 * and /info's booleans are believed only after them.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "engine_limits.h"

struct cap {
	int bit;		/* CFG_LIMIT_* */
	int cg;			/* DOCKER_CG_*: the controller that enforces it */
	const char *word;	/* as CI_ACCEPT_UNENFORCED_LIMITS spells it */
	const char *var;	/* the setting it carries */
	const char *info_key;	/* the /info member that says it is supported */
	const char *controller;	/* as /libpod/info names the controller */
};

static const struct cap caps[3] = {
	{ CFG_LIMIT_MEMORY, DOCKER_CG_MEMORY, "memory", "CI_MAX_MEMORY_MB", "MemoryLimit", "memory" },
	{ CFG_LIMIT_PIDS, DOCKER_CG_PIDS, "pids", "CI_MAX_PIDS", "PidsLimit", "pids" },
	{ CFG_LIMIT_CPU, DOCKER_CG_CPU, "cpu", "CI_MAX_CPUS", "CpuCfsQuota", "cpu" },
};

/* The /info boolean that covers cap i. */
static int
info_flag(const struct docker_info *info, int i)
{
	return i == 0 ? info->memory_limit : i == 1 ? info->pids_limit : info->cpu_cfs_quota;
}

/* Why cap i would not be enforced, into why; "" if it would. */
static void
cap_reason(const struct docker_info *info, const char *info_err, int i, char *why, size_t len)
{
	const struct cap *c = &caps[i];
	int flag;

	why[0] = '\0';
	if (!info) {
		snprintf(why, len, "the engine's GET /info could not be read (%s), so nothing "
		    "says the caps are applied", info_err ? info_err : "no answer");
		return;
	}
	if (info->cgroup_none) {
		snprintf(why, len, "the engine uses no cgroups (GET /info: CgroupDriver=none)");
		return;
	}
	if (info->rootless && info->cgroup_version == 1) {
		snprintf(why, len, "the engine runs rootless on cgroup v1, where it has no cgroup "
		    "to apply them in and drops them without an error (GET /info: Rootless, "
		    "CgroupVersion=1)");
		return;
	}
	if (info->controllers >= 0 && !(info->controllers & c->cg)) {
		snprintf(why, len, "the %s cgroup controller is not delegated to the rootless "
		    "engine (GET /libpod/info: cgroupControllers lacks it)", c->controller);
		return;
	}
	flag = info_flag(info, i);
	if (flag == 0)
		snprintf(why, len, "GET /info says %s=false", c->info_key);
	else if (flag < 0)
		snprintf(why, len, "GET /info does not say %s", c->info_key);
}

int
engine_limits_unenforced(const struct docker_info *info, const char *info_err, int wanted,
    char why[3][200])
{
	int i, bits = 0;

	for (i = 0; i < 3; i++) {
		why[i][0] = '\0';
		if (!(wanted & caps[i].bit))
			continue;
		cap_reason(info, info_err, i, why[i], sizeof(why[i]));
		if (why[i][0])
			bits |= caps[i].bit;
	}
	return bits;
}

static void
append(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* snprintf at the end of msg; a full msg stays full and terminated. */
static void
append(char *msg, size_t len, const char *fmt, ...)
{
	size_t used = strlen(msg);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg + used, len - used, fmt, ap);
	va_end(ap);
}

/* "memory (CI_MAX_MEMORY_MB), pids (CI_MAX_PIDS) and cpu (CI_MAX_CPUS)" for bits. */
static void
append_names(char *msg, size_t len, int bits)
{
	int i, n = 0, total = 0;

	for (i = 0; i < 3; i++)
		total += !!(bits & caps[i].bit);
	for (i = 0; i < 3; i++) {
		if (!(bits & caps[i].bit))
			continue;
		n++;
		append(msg, len, "%s%s (%s)", n == 1 ? "" : n == total ? " and " : ", ",
		    caps[i].word, caps[i].var);
	}
}

/* ": reason" if the caps in bits share one, else ": memory: r1; cpu: r2". */
static void
append_reasons(char *msg, size_t len, int bits, char why[3][200])
{
	const char *first = NULL;
	int i, n = 0, same = 1;

	for (i = 0; i < 3; i++) {
		if (!(bits & caps[i].bit))
			continue;
		if (!first)
			first = why[i];
		else if (strcmp(first, why[i]) != 0)
			same = 0;
	}
	if (same) {
		append(msg, len, ": %s", first ? first : "");
		return;
	}
	for (i = 0; i < 3; i++)
		if (bits & caps[i].bit)
			append(msg, len, "%s%s: %s", n++ ? "; " : ": ", caps[i].word, why[i]);
}

/* "memory,pids": the value of CI_ACCEPT_UNENFORCED_LIMITS that covers bits. */
static void
append_words(char *msg, size_t len, int bits)
{
	int i, n = 0;

	for (i = 0; i < 3; i++)
		if (bits & caps[i].bit)
			append(msg, len, "%s%s", n++ ? "," : "", caps[i].word);
}

enum engine_limits_verdict
engine_limits_verdict(const struct docker_info *info, const char *info_err, int wanted, int accepted,
    char *msg, size_t msglen)
{
	char why[3][200];
	int missing, refused;

	msg[0] = '\0';
	missing = engine_limits_unenforced(info, info_err, wanted, why);
	if (!missing)
		return ENGINE_LIMITS_OK;
	refused = missing & ~accepted;
	if (!refused) {
		append(msg, msglen, "the engine does not enforce the sandbox caps on ");
		append_names(msg, msglen, missing);
		append_reasons(msg, msglen, missing, why);
		append(msg, msglen, "; starting anyway, as CI_ACCEPT_UNENFORCED_LIMITS accepts it: "
		    "sandboxes are not held to these caps");
		return ENGINE_LIMITS_ACCEPTED;
	}
	append(msg, msglen, "refusing to start: the engine would not enforce the sandbox caps on ");
	append_names(msg, msglen, refused);
	append_reasons(msg, msglen, refused, why);
	append(msg, msglen, "; give the engine those cgroup controllers (run it rootful, or on "
	    "cgroup v2 with them delegated), or set CI_ACCEPT_UNENFORCED_LIMITS=");
	append_words(msg, msglen, missing);
	append(msg, msglen, " to run without them");
	return ENGINE_LIMITS_REFUSED;
}
