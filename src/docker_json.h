/*
 * The JSON the Engine API answers with, read: an error's message, the id
 * of a new container or exec, whether an inspected container runs, the
 * container list, what the engine says about the caps it can apply.  Apart from the transport (docker.c) so that the parsing
 * of what the engine says can be tested and fuzzed without an engine.
 * Every body is NUL-terminated text, as struct buf keeps it.
 */
#ifndef CIP_DOCKER_JSON_H
#define CIP_DOCKER_JSON_H

#include <stddef.h>

#include "docker.h"

/* The engine's message from an error body: JSON "message", else the text; one line. */
void docker_json_message(const char *body, size_t len, char *out, size_t cap);
/* "Id" of a create answer (container or exec) into id: 0, or -1 if there is none that fits. */
int docker_json_id(const char *body, char id[DOCKER_ID_MAX]);
/* 1 if an inspect answer says State.Running, else 0. */
int docker_json_running(const char *body);
/* 1 if a container inspect body says State.OOMKilled; 0 otherwise or unparsable. */
int docker_json_oom_killed(const char *body);
/*
 * cb for each container with an id in a list answer, until it returns
 * non-zero; `labelled` says which carry key (may be NULL).  Returns how
 * many were passed to cb.
 */
size_t docker_json_containers(const char *body, const char *key, docker_container_cb cb,
    void *ctx);
/* What GET /info says about the caps the engine can apply. */
struct docker_info {
	int memory_limit;	/* "MemoryLimit": 1 true, 0 false, -1 not said */
	int pids_limit;		/* "PidsLimit", the same */
	int cpu_cfs_quota;	/* "CpuCfsQuota", the same */
	int rootless;		/* Podman's "Rootless", or "name=rootless" in SecurityOptions */
	int cgroup_version;	/* "CgroupVersion" 1 or 2; 0 if not said */
	int cgroup_none;	/* "CgroupDriver" is "none": no cgroups at all */
	int controllers;	/* Podman's delegated controllers (DOCKER_CG_*); -1 unknown */
};

/* Bits of the cgroup controllers that enforce our caps. */
#define DOCKER_CG_MEMORY 1
#define DOCKER_CG_PIDS 2
#define DOCKER_CG_CPU 4

/* Read a GET /info answer into *out: 0, or -1 if it is no JSON object. */
int docker_json_info(const char *body, struct docker_info *out);
/*
 * The controllers in Podman's GET /libpod/info host.cgroupControllers
 * as DOCKER_CG_* bits; -1 if the answer has no such list.
 */
int docker_json_libpod_controllers(const char *body);
/* An API version "1.41" as 141; 0 if unreadable. */
int docker_json_api_version(const char *v);

#endif
