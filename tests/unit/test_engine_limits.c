/*
 * The startup check of the caps an engine would drop: reading GET /info
 * (and Podman's /libpod/info) answers, and the verdict with its log line.
 * The first answers are what the engines on the test machine said: rootless
 * Podman 4.3.1 on cgroup v1 claims MemoryLimit, PidsLimit and CpuCfsQuota
 * yet applies none of them.
 */
#include "config.h"

#include <string.h>

#include "cfg.h"
#include "docker_json.h"
#include "engine_limits.h"
#include "suites.h"

/* Trimmed from GET /v1.41/info of `podman system service` run as a user. */
static const char rootless_podman_v1[] =
    "{\"Driver\":\"vfs\",\"MemoryLimit\":true,\"SwapLimit\":true,\"KernelMemory\":false,"
    "\"CpuCfsPeriod\":true,\"CpuCfsQuota\":true,\"CPUShares\":true,\"CPUSet\":true,"
    "\"PidsLimit\":true,\"CgroupDriver\":\"cgroupfs\",\"ServerVersion\":\"4.3.1\","
    "\"SecurityOptions\":[\"name=seccomp,profile=default\"],\"CgroupVersion\":\"1\","
    "\"Rootless\":true}";
/* The same service run as root. */
static const char rootful_podman_v1[] =
    "{\"MemoryLimit\":true,\"CpuCfsQuota\":true,\"PidsLimit\":true,\"CgroupDriver\":\"cgroupfs\","
    "\"SecurityOptions\":[\"name=seccomp,profile=default\"],\"CgroupVersion\":\"1\","
    "\"Rootless\":false}";
/* dockerd 20.10 on the same machine: no Rootless member. */
static const char dockerd_v1[] =
    "{\"MemoryLimit\":true,\"SwapLimit\":true,\"CpuCfsQuota\":true,\"PidsLimit\":true,"
    "\"CgroupDriver\":\"cgroupfs\",\"CgroupVersion\":\"1\","
    "\"SecurityOptions\":[\"name=seccomp,profile=default\"]}";
/* Shapes the rules cover beyond this machine (dockerd's and Podman's sources). */
static const char dockerd_rootless_nocgroup[] =
    "{\"MemoryLimit\":true,\"CpuCfsQuota\":true,\"PidsLimit\":true,\"CgroupDriver\":\"none\","
    "\"CgroupVersion\":\"2\",\"SecurityOptions\":[\"name=seccomp,profile=builtin\","
    "\"name=rootless\",\"name=cgroupns\"]}";
static const char rootless_podman_v2[] =
    "{\"MemoryLimit\":true,\"CpuCfsQuota\":true,\"PidsLimit\":true,\"CgroupDriver\":\"systemd\","
    "\"CgroupVersion\":\"2\",\"Rootless\":true}";
static const char no_memory_no_quota[] =
    "{\"MemoryLimit\":false,\"CpuCfsQuota\":false,\"PidsLimit\":true,\"CgroupVersion\":\"1\"}";
static const char silent_on_memory[] = "{\"CpuCfsQuota\":true,\"PidsLimit\":true}";
static const char mistyped[] =
    "{\"MemoryLimit\":\"yes\",\"CpuCfsQuota\":1,\"PidsLimit\":null,\"Rootless\":\"true\","
    "\"CgroupVersion\":1,\"CgroupDriver\":[\"none\"],\"SecurityOptions\":{\"name\":\"rootless\"}}";

static struct docker_info
info_of(const char *body)
{
	struct docker_info i;

	ck_assert_int_eq(docker_json_info(body, &i), 0);
	return i;
}

START_TEST(info_answers_read)
{
	struct docker_info i;

	i = info_of(rootless_podman_v1);
	ck_assert_int_eq(i.memory_limit, 1);
	ck_assert_int_eq(i.pids_limit, 1);
	ck_assert_int_eq(i.cpu_cfs_quota, 1);
	ck_assert_int_eq(i.rootless, 1);
	ck_assert_int_eq(i.cgroup_version, 1);
	ck_assert_int_eq(i.cgroup_none, 0);
	ck_assert_int_eq(i.controllers, -1);
	i = info_of(rootful_podman_v1);
	ck_assert_int_eq(i.rootless, 0);
	i = info_of(dockerd_v1);
	ck_assert_int_eq(i.rootless, 0);
	ck_assert_int_eq(i.cgroup_version, 1);
	i = info_of(dockerd_rootless_nocgroup);
	ck_assert_int_eq(i.rootless, 1);
	ck_assert_int_eq(i.cgroup_none, 1);
	ck_assert_int_eq(i.cgroup_version, 2);
	i = info_of(silent_on_memory);
	ck_assert_int_eq(i.memory_limit, -1);
	ck_assert_int_eq(i.cgroup_version, 0);
	/* A member of the wrong type reads as not said. */
	i = info_of(mistyped);
	ck_assert_int_eq(i.memory_limit, -1);
	ck_assert_int_eq(i.cpu_cfs_quota, -1);
	ck_assert_int_eq(i.pids_limit, -1);
	ck_assert_int_eq(i.rootless, 0);
	ck_assert_int_eq(i.cgroup_version, 0);
	ck_assert_int_eq(i.cgroup_none, 0);
	ck_assert_int_eq(docker_json_info(NULL, &i), -1);
	ck_assert_int_eq(docker_json_info("[true]", &i), -1);
	ck_assert_int_eq(docker_json_info("page not found", &i), -1);
	ck_assert_int_eq(i.memory_limit, -1);
}
END_TEST

START_TEST(libpod_controllers_read)
{
	ck_assert_int_eq(docker_json_libpod_controllers(
	    "{\"host\":{\"cgroupControllers\":[\"cpuset\",\"cpu\",\"io\",\"memory\",\"pids\"]}}"),
	    DOCKER_CG_CPU | DOCKER_CG_MEMORY | DOCKER_CG_PIDS);
	ck_assert_int_eq(docker_json_libpod_controllers(
	    "{\"host\":{\"cgroupControllers\":[\"cpu\",7,null,\"pids\"]}}"),
	    DOCKER_CG_CPU | DOCKER_CG_PIDS);
	/* Rootless on cgroup v1, as seen: an empty list. */
	ck_assert_int_eq(docker_json_libpod_controllers(
	    "{\"host\":{\"cgroupControllers\":[],\"cgroupVersion\":\"v1\"}}"), 0);
	ck_assert_int_eq(docker_json_libpod_controllers("{\"host\":{}}"), -1);
	ck_assert_int_eq(docker_json_libpod_controllers("{\"host\":[]}"), -1);
	ck_assert_int_eq(docker_json_libpod_controllers(NULL), -1);
	ck_assert_int_eq(docker_json_libpod_controllers("{\"host\":{\"cgroupControllers\":\"memory\"}}"),
	    -1);
}
END_TEST

START_TEST(rootless_on_cgroup_v1_is_refused)
{
	struct docker_info i = info_of(rootless_podman_v1);
	char msg[1200];

	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, 0, msg, sizeof(msg)),
	    ENGINE_LIMITS_REFUSED);
	ck_assert_msg(strstr(msg, "refusing to start") &&
	    strstr(msg, "memory (CI_MAX_MEMORY_MB), pids (CI_MAX_PIDS) and cpu (CI_MAX_CPUS)") &&
	    strstr(msg, "rootless on cgroup v1") &&
	    strstr(msg, "CI_ACCEPT_UNENFORCED_LIMITS=memory,pids,cpu "), "%s", msg);
	ck_assert_ptr_null(strchr(msg, '\n'));
}
END_TEST

START_TEST(accepted_caps_start_with_a_warning)
{
	struct docker_info i = info_of(rootless_podman_v1);
	char msg[1200];

	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, CFG_LIMIT_ALL, msg,
	    sizeof(msg)), ENGINE_LIMITS_ACCEPTED);
	ck_assert_msg(strstr(msg, "does not enforce") && strstr(msg, "starting anyway") &&
	    strstr(msg, "memory (CI_MAX_MEMORY_MB)"), "%s", msg);
	/* Accepting one of three is not enough: the others are named, all suggested. */
	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, CFG_LIMIT_MEMORY, msg,
	    sizeof(msg)), ENGINE_LIMITS_REFUSED);
	ck_assert_msg(!strstr(msg, "memory (CI_MAX") && strstr(msg, "pids (CI_MAX_PIDS) and cpu") &&
	    strstr(msg, "CI_ACCEPT_UNENFORCED_LIMITS=memory,pids,cpu "), "%s", msg);
}
END_TEST

START_TEST(engines_that_apply_caps_pass)
{
	struct docker_info i;
	char msg[1200];

	i = info_of(rootful_podman_v1);
	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, 0, msg, sizeof(msg)),
	    ENGINE_LIMITS_OK);
	ck_assert_str_eq(msg, "");
	i = info_of(dockerd_v1);
	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, 0, msg, sizeof(msg)),
	    ENGINE_LIMITS_OK);
	/* Rootless on cgroup v2 with every controller delegated. */
	i = info_of(rootless_podman_v2);
	i.controllers = DOCKER_CG_MEMORY | DOCKER_CG_PIDS | DOCKER_CG_CPU;
	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, 0, msg, sizeof(msg)),
	    ENGINE_LIMITS_OK);
}
END_TEST

START_TEST(each_cap_with_its_reason)
{
	struct docker_info i = info_of(no_memory_no_quota);
	char why[3][200], msg[1200];

	ck_assert_int_eq(engine_limits_unenforced(&i, NULL, CFG_LIMIT_ALL, why),
	    CFG_LIMIT_MEMORY | CFG_LIMIT_CPU);
	ck_assert_str_eq(why[0], "GET /info says MemoryLimit=false");
	ck_assert_str_eq(why[1], "");
	ck_assert_str_eq(why[2], "GET /info says CpuCfsQuota=false");
	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_ALL, 0, msg, sizeof(msg)),
	    ENGINE_LIMITS_REFUSED);
	ck_assert_msg(strstr(msg, "memory (CI_MAX_MEMORY_MB) and cpu (CI_MAX_CPUS): "
	    "memory: GET /info says MemoryLimit=false; cpu: GET /info says CpuCfsQuota=false") &&
	    strstr(msg, "=memory,cpu "), "%s", msg);
	/* A cap not asked for is not checked. */
	ck_assert_int_eq(engine_limits_verdict(&i, NULL, CFG_LIMIT_PIDS, 0, msg, sizeof(msg)),
	    ENGINE_LIMITS_OK);
	/* An engine silent about a cap cannot vouch for it. */
	i = info_of(silent_on_memory);
	ck_assert_int_eq(engine_limits_unenforced(&i, NULL, CFG_LIMIT_ALL, why), CFG_LIMIT_MEMORY);
	ck_assert_str_eq(why[0], "GET /info does not say MemoryLimit");
}
END_TEST

START_TEST(rootless_v2_follows_the_delegated_controllers)
{
	struct docker_info i = info_of(rootless_podman_v2);
	char why[3][200];

	/* Without the list, /info's claims stand (docker_info fetches the list). */
	ck_assert_int_eq(engine_limits_unenforced(&i, NULL, CFG_LIMIT_ALL, why), 0);
	i.controllers = DOCKER_CG_CPU | DOCKER_CG_PIDS;
	ck_assert_int_eq(engine_limits_unenforced(&i, NULL, CFG_LIMIT_ALL, why), CFG_LIMIT_MEMORY);
	ck_assert_msg(strstr(why[0], "memory cgroup controller is not delegated"), "%s", why[0]);
	i.controllers = 0;
	ck_assert_int_eq(engine_limits_unenforced(&i, NULL, CFG_LIMIT_ALL, why), CFG_LIMIT_ALL);
	i = info_of(dockerd_rootless_nocgroup);
	ck_assert_int_eq(engine_limits_unenforced(&i, NULL, CFG_LIMIT_ALL, why), CFG_LIMIT_ALL);
	ck_assert_msg(strstr(why[1], "CgroupDriver=none"), "%s", why[1]);
}
END_TEST

START_TEST(unreadable_info_vouches_for_nothing)
{
	char msg[1200], small[48];

	ck_assert_int_eq(engine_limits_verdict(NULL, "GET /info: 404 page not found", CFG_LIMIT_ALL,
	    0, msg, sizeof(msg)), ENGINE_LIMITS_REFUSED);
	ck_assert_msg(strstr(msg, "404 page not found") && strstr(msg, "pids (CI_MAX_PIDS)"), "%s",
	    msg);
	ck_assert_int_eq(engine_limits_verdict(NULL, NULL, CFG_LIMIT_ALL, CFG_LIMIT_ALL, msg,
	    sizeof(msg)), ENGINE_LIMITS_ACCEPTED);
	/* A short buffer is cut, never overrun. */
	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(engine_limits_verdict(NULL, "e", CFG_LIMIT_ALL, 0, small, sizeof(small)),
	    ENGINE_LIMITS_REFUSED);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

Suite *
suite_engine_limits(void)
{
	Suite *s = suite_create("engine_limits");
	TCase *tc = tcase_create("verdict");

	tcase_add_test(tc, info_answers_read);
	tcase_add_test(tc, libpod_controllers_read);
	tcase_add_test(tc, rootless_on_cgroup_v1_is_refused);
	tcase_add_test(tc, accepted_caps_start_with_a_warning);
	tcase_add_test(tc, engines_that_apply_caps_pass);
	tcase_add_test(tc, each_cap_with_its_reason);
	tcase_add_test(tc, rootless_v2_follows_the_delegated_controllers);
	tcase_add_test(tc, unreadable_info_vouches_for_nothing);
	suite_add_tcase(s, tc);
	return s;
}
