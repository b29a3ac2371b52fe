/*
 * Will the engine enforce the sandbox caps we ask for?  An engine can
 * accept a create with a memory, pids or CPU cap and drop it without an
 * error: rootless Podman on cgroup v1 does so for all three.  At startup
 * the daemon asks the engine (docker_info) and this module decides, from
 * the answer alone, which caps would go unenforced and whether the
 * operator accepted that (CI_ACCEPT_UNENFORCED_LIMITS).  Pure: no I/O, so
 * the unit tests drive every case.
 */
#ifndef CIP_ENGINE_LIMITS_H
#define CIP_ENGINE_LIMITS_H

#include <stddef.h>

#include "docker_json.h"

enum engine_limits_verdict {
	ENGINE_LIMITS_OK,		/* every wanted cap is applied; msg is "" */
	ENGINE_LIMITS_ACCEPTED,		/* some are not, all of those accepted: a warning */
	ENGINE_LIMITS_REFUSED,		/* some are not, and not accepted: the error */
};

/*
 * Of the wanted caps (CFG_LIMIT_* bits), those the engine would not
 * enforce.  info is what docker_info read, or NULL if it failed, with
 * info_err saying why (then no cap can be vouched for).  The reason of
 * each one is written to why[i] for bit 1 << i, "" for an enforced one.
 */
int engine_limits_unenforced(const struct docker_info *info, const char *info_err, int wanted,
    char why[3][200]);

/*
 * The verdict for the wanted caps given what the operator accepts, and
 * the one log line that says which caps, why, and how to proceed.
 */
enum engine_limits_verdict engine_limits_verdict(const struct docker_info *info,
    const char *info_err, int wanted, int accepted, char *msg, size_t msglen);

#endif
