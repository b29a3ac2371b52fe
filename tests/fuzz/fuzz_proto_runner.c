/*
 * Fuzz target: the runner protocol as the runner reads the proxy's
 * requests.  The input is the byte stream from the proxy, fed to the
 * decoder in chunks (sizes from the first byte) as serve_client does;
 * each PUT, GET and LIST goes to the runner's own handlers (fsops.c,
 * built here with the fuzzer's flags) on a scratch workspace, not
 * /mnt/data.  RUN is never served: it would execute the input.
 * Asserts: nothing is ever created beside the workspace (no path leaves
 * it); a PUT that succeeded reads back, through GET, as the bytes it
 * wrote; a LIST names only clean relative paths; a decoded request
 * encodes and decodes back to itself.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "proto.h"
#include "relpath.h"
#include "runner/runner.h"

const char *fuzz_runner_workdir;
static char scratch[64];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* Empty the workspace; then the scratch directory must hold it alone. */
static void
reset_workspace(void)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	nftw(fuzz_runner_workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	FUZZ_ASSERT((d = opendir(scratch)) != NULL);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			FUZZ_ASSERT(strcmp(de->d_name, "w") == 0 && ++n == 1);
	closedir(d);
}

/* At exit: the scratch directory goes, workspace and all. */
static void
remove_scratch(void)
{
	nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(scratch);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char work[80];

	(void)argc;
	(void)argv;
	snprintf(scratch, sizeof(scratch), "/tmp/cip-fuzz-runner.XXXXXX");
	if (!mkdtemp(scratch))
		abort();
	snprintf(work, sizeof(work), "%s/w", scratch);
	/* The handlers work as the sandbox user: let it in, as the runner's setup does. */
	if (mkdir(work, 0777) < 0 || chmod(scratch, 0711) < 0 || chmod(work, 0777) < 0)
		abort();
	fuzz_runner_workdir = work;
	atexit(remove_scratch);
	return 0;
}

static void
check_put(const struct proto_msg *req)
{
	struct proto_msg *get = proto_msg_new(PROTO_GET), *rep = proto_msg_new(PROTO_OK);
	const char *key, *val, *path = NULL, *last_path = NULL, *last = NULL, *back;
	unsigned long mode = 0644, last_mode = 0;
	struct rerr e = { "" };
	size_t i, len, last_len = 0, blen;

	for (i = 0; i < proto_nfields(req); i++) {
		key = proto_field(req, i, &val, &len);
		if (strcmp(key, "path") == 0)
			path = val, mode = 0644;
		else if (strcmp(key, "mode") == 0)
			mode = strtoul(val, NULL, 8) & 0777;
		else if (strcmp(key, "data") == 0)
			last = val, last_len = len, last_path = path, last_mode = mode;
	}
	/* The last write stands; read it back when its owner may read it. */
	if (get && rep && last && (last_mode & 0400) &&
	    proto_add_str(get, "path", last_path) == 0) {
		FUZZ_ASSERT(fs_get(get, rep, &e) == 0);
		back = proto_get(rep, "data", &blen);
		FUZZ_ASSERT(back && blen == last_len && memcmp(back, last, blen) == 0);
	}
	proto_msg_free(get);
	proto_msg_free(rep);
}

static void
check_list(const struct proto_msg *rep)
{
	const char *key, *val, *p;
	size_t i, len, tabs;

	for (i = 0; i < proto_nfields(rep); i++) {
		key = proto_field(rep, i, &val, &len);
		if (strcmp(key, "e") != 0)
			continue;
		for (p = val, tabs = 0; tabs < 5 && (p = strchr(p, '\t')); p++)
			tabs++;
		FUZZ_ASSERT(tabs == 5 && p);
		FUZZ_ASSERT(relpath_segments(p, strlen(p)) > 0);
	}
}

static void
serve(const struct proto_msg *req, struct hash_cache *hc)
{
	struct proto_msg *rep = proto_msg_new(PROTO_OK);
	struct rerr e = { "" };
	int rc;

	if (!rep)
		return;
	switch (proto_msg_type(req)) {
	case PROTO_PUT:
		if ((rc = fs_put(req, rep, &e)) == 0)
			check_put(req);
		break;
	case PROTO_GET:
		rc = fs_get(req, rep, &e);
		break;
	case PROTO_LIST:
		if ((rc = fs_list(req, rep, hc, &e)) == 0)
			check_list(rep);
		break;
	default:
		rc = 0;
	}
	FUZZ_ASSERT(rc == 0 || e.msg[0] != '\0');
	proto_msg_free(rep);
}

static void
round_trip(const struct proto_msg *m)
{
	struct proto_decoder *d = proto_decoder_new(PROTO_MAX_FRAME);
	struct proto_msg *back = NULL;
	unsigned char *frame;
	const char *ka, *kb, *va, *vb;
	size_t len, i, la, lb;

	if (!d || proto_encode(m, 1, &frame, &len) < 0) {
		proto_decoder_free(d);
		return;
	}
	/* Armored: no byte the engine could take for a detach key. */
	for (i = 11; i < len; i++)
		FUZZ_ASSERT(frame[i] >= 0x20 && frame[i] <= 0x7e);
	FUZZ_ASSERT(proto_decoder_feed(d, frame, len) == 0 && proto_decoder_next(d, &back) == 1);
	FUZZ_ASSERT(proto_msg_type(back) == proto_msg_type(m) &&
	    proto_nfields(back) == proto_nfields(m));
	for (i = 0; i < proto_nfields(m); i++) {
		ka = proto_field(m, i, &va, &la);
		kb = proto_field(back, i, &vb, &lb);
		FUZZ_ASSERT(strcmp(ka, kb) == 0 && la == lb && memcmp(va, vb, la) == 0);
	}
	proto_msg_free(back);
	proto_decoder_free(d);
	free(frame);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_decoder *d = proto_decoder_new(PROTO_MAX_FRAME);
	struct hash_cache *hc = hash_cache_new();
	struct proto_msg *m;
	size_t o = 1, step;
	uint8_t seed;
	int r = 0;

	if (!d || !hc || size < 1)
		goto out;
	seed = data[0];
	while (o < size && r >= 0) {
		step = seed == 0 ? size - o : (size_t)(seed % 29) + 1;
		seed = (uint8_t)(seed * 41 + 3);
		if (step > size - o)
			step = size - o;
		FUZZ_ASSERT(proto_decoder_feed(d, data + o, step) == 0);
		o += step;
		while ((r = proto_decoder_next(d, &m)) == 1) {
			round_trip(m);
			serve(m, hc);
			proto_msg_free(m);
		}
	}
out:
	reset_workspace();
	hash_cache_free(hc);
	proto_decoder_free(d);
	return 0;
}
