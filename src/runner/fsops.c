/*
 * The workspace (/mnt/data) as the sandbox user sees it.  Every path is
 * walked one component at a time with O_NOFOLLOW, so a symlink planted by
 * user code is never followed, and file system access runs with the sandbox
 * user's fsuid, so the runner can do nothing there the user could not.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"
#include "relpath.h"
#include "runner.h"
#include "sha256.h"

#define PATH_MAX_LEN 4096

struct walk {
	struct proto_msg *rep;
	unsigned max_depth;
	uint64_t max_entries, hash_max, count;
	int hidden, truncated;
	struct hash_cache *hc;
	int nomem;		/* an entry could not be added: the walk stops */
};

/* File system access as the sandbox user (on), or as root again. */
static void
as_sandbox(int on)
{
	setfsgid(on ? SANDBOX_GID : 0);
	setfsuid(on ? SANDBOX_UID : 0);
}

/* 1 if p is a clean relative path (relpath.h) of at most PATH_MAX_LEN bytes. */
static int
fs_path_ok(const char *p)
{
	size_t n = strlen(p);

	return n <= PATH_MAX_LEN && relpath_segments(p, n) != 0;
}

/*
 * Open the directory that holds path's last component, creating missing
 * directories if asked.  Returns a dir fd and points *leaf into path.
 */
static int
open_parent(const char *path, int create, char *scratch, const char **leaf)
{
	char *seg, *slash;
	int dfd, nfd;

	strcpy(scratch, path);
	dfd = open(RUNNER_WORKDIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	seg = scratch;
	while (dfd >= 0 && (slash = strchr(seg, '/'))) {
		*slash = '\0';
		nfd = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(dfd, seg, 0755) < 0 && errno != EEXIST) {
				close(dfd);
				return -1;
			}
			nfd = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		close(dfd);
		dfd = nfd;
		seg = slash + 1;
	}
	*leaf = path + (seg - scratch);
	return dfd;
}

/* Write one file; 0 or -1 with errno. */
static int
put_one(const char *path, const char *data, size_t len, mode_t mode)
{
	char scratch[PATH_MAX_LEN + 1];
	const char *leaf;
	int dfd, fd, rc = -1, e;

	if ((dfd = open_parent(path, 1, scratch, &leaf)) < 0)
		return -1;
	fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd >= 0) {
		rc = write_all(fd, data, len);
		if (rc == 0)
			rc = fchmod(fd, mode);
		e = errno;
		close(fd);
		errno = e;
	}
	e = errno;
	close(dfd);
	errno = e;
	return rc;
}

/* Fields: repeated (path, [mode], data); each data writes the current path. */
int
fs_put(const struct proto_msg *req, struct proto_msg *rep, struct rerr *e)
{
	const char *key, *val, *path = NULL;
	unsigned long mode = 0644;
	size_t i, len;
	uint64_t written = 0;
	int rc = 0;

	as_sandbox(1);
	for (i = 0; i < proto_nfields(req); i++) {
		key = proto_field(req, i, &val, &len);
		if (strcmp(key, "path") == 0) {
			path = val;
			mode = 0644;
		} else if (strcmp(key, "mode") == 0) {
			mode = strtoul(val, NULL, 8) & 0777;
		} else if (strcmp(key, "data") == 0) {
			if (!path || !fs_path_ok(path)) {
				rc = rerr_set(e, "put: bad path");
				goto out;
			}
			if (put_one(path, val, len, (mode_t)mode) < 0) {
				rc = rerr_set(e, "put %s: %s", path, strerror(errno));
				goto out;
			}
			written++;
		}
	}
	if (proto_add_u64(rep, "written", written) < 0)
		rc = rerr_set(e, "put: out of memory");
out:
	as_sandbox(0);
	return rc;
}

/* Fields: path, max.  Reply: data, the regular file's bytes (refused over max). */
int
fs_get(const struct proto_msg *req, struct proto_msg *rep, struct rerr *e)
{
	char scratch[PATH_MAX_LEN + 1], *data = NULL;
	const char *path = proto_get(req, "path", NULL), *leaf;
	uint64_t max = 10000000;
	struct stat st;
	int dfd = -1, fd = -1, rc = 0;
	ssize_t n;
	size_t got = 0;

	proto_get_u64(req, "max", &max);
	as_sandbox(1);
	if (!path || !fs_path_ok(path)) {
		rc = rerr_set(e, "get: bad path");
		goto out;
	}
	if ((dfd = open_parent(path, 0, scratch, &leaf)) < 0 ||
	    (fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) < 0) {
		rc = rerr_set(e, "get %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		rc = rerr_set(e, "get %s: %s", path,
		    S_ISREG(st.st_mode) ? "too large" : "not a regular file");
		goto out;
	}
	if (!(data = malloc((size_t)st.st_size + 1))) {
		rc = rerr_set(e, "get: out of memory");
		goto out;
	}
	/* The file may shrink or grow while we read: take at most st_size. */
	while (got < (size_t)st.st_size &&
	    (n = read(fd, data + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	if (proto_add(rep, "data", data, got) < 0)
		rc = rerr_set(e, "get: out of memory");
out:
	as_sandbox(0);
	free(data);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* The SHA-256 of file name in dfd, in hex; "-" if it cannot be read. */
static void
hash_file(int dfd, const char *name, char hex[65])
{
	unsigned char b[65536], dig[32];
	struct sha256 s;
	ssize_t n;
	int fd;

	strcpy(hex, "-");
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	sha256_init(&s);
	while ((n = read(fd, b, sizeof(b))) > 0)
		sha256_update(&s, b, (size_t)n);
	close(fd);
	if (n == 0) {
		sha256_final(&s, dig);
		sha256_hex(dig, hex);
	}
}

/* Add an "e" line to the reply for each entry under dfd (then closed), within the caps. */
static void
walk_dir(struct walk *w, int dfd, const char *prefix, unsigned depth)
{
	char rel[PATH_MAX_LEN + 1], line[PATH_MAX_LEN + 200], hex[65];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int sub;
	char type;

	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (w->count >= w->max_entries) {
			w->truncated = 1;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;	/* renamed or deleted under us */
		if ((size_t)snprintf(rel, sizeof(rel), "%s%s", prefix, de->d_name) >= sizeof(rel))
			continue;
		type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' :
		    S_ISLNK(st.st_mode) ? 'l' : 'o';
		strcpy(hex, "-");
		if (type == 'f' && (uint64_t)st.st_size <= w->hash_max) {
			const char *known = hash_cache_get(w->hc, rel, &st);
			if (known) {
				strcpy(hex, known);
			} else {
				hash_file(dirfd(d), de->d_name, hex);
				if (strcmp(hex, "-") != 0)
					hash_cache_put(w->hc, rel, &st, hex);
			}
		}
		snprintf(line, sizeof(line), "%c\t%lld\t%lld\t%o\t%s\t%s", type,
		    (long long)st.st_size,
		    (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
		    (unsigned)(st.st_mode & 07777), hex, rel);
		if (proto_add_str(w->rep, "e", line) < 0) {
			w->nomem = w->truncated = 1;
			break;
		}
		w->count++;
		if (type != 'd' || depth + 1 >= w->max_depth)
			continue;
		if (!w->hidden && de->d_name[0] == '.')
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0 && strlen(rel) + 2 < sizeof(rel)) {
			strcat(rel, "/");
			walk_dir(w, sub, rel, depth + 1);
		} else if (sub >= 0) {
			close(sub);
		}
	}
	closedir(d);
}

/* Fields: max_depth, max_entries, hash_max, hidden.  Reply: "e" lines. */
int
fs_list(const struct proto_msg *req, struct proto_msg *rep, struct hash_cache *hc,
    struct rerr *e)
{
	struct walk w = { .rep = rep, .max_depth = 10, .max_entries = 10000,
	    .hash_max = 10000000, .hc = hc };
	uint64_t v;
	int fd;

	if (proto_get_u64(req, "max_depth", &v) == 0)
		w.max_depth = v > 64 ? 64 : (unsigned)v;
	proto_get_u64(req, "max_entries", &w.max_entries);
	proto_get_u64(req, "hash_max", &w.hash_max);
	if (proto_get_u64(req, "hidden", &v) == 0)
		w.hidden = v != 0;
	hash_cache_begin(hc);
	as_sandbox(1);
	fd = open(RUNNER_WORKDIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		walk_dir(&w, fd, "", 0);
	as_sandbox(0);
	/* Forget files that are gone, unless the walk was cut short. */
	if (!w.truncated)
		hash_cache_end(hc);
	if (fd < 0)
		return rerr_set(e, "list: %s", strerror(errno));
	if (w.nomem || proto_add_u64(rep, "truncated", (uint64_t)w.truncated) < 0)
		return rerr_set(e, "list: out of memory");
	return 0;
}
