#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobs.h"
#include "clock.h"
#include "fdio.h"
#include "ids.h"

struct blobs {
	int dirfd;		/* <root>/blobs */
	long long opened_ms;	/* wall clock at blobs_open */
};

/* Temporary files of writes a crash interrupted: nothing is writing yet. */
static void
clear_tmp(int blobsfd)
{
	struct dirent *de;
	DIR *d;
	int fd = openat(blobsfd, ".tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

int
blobs_open(const char *root, struct blobs **out, char *err, size_t errlen)
{
	char path[4096];
	struct blobs *b;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/blobs", root);
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!(b = calloc(1, sizeof(*b)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0 || (mkdirat(b->dirfd, ".tmp", 0750) < 0 && errno != EEXIST)) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		blobs_close(b);
		return -EIO;
	}
	clear_tmp(b->dirfd);
	b->opened_ms = clock_wall_ms();
	*out = b;
	return 0;
}

void
blobs_close(struct blobs *b)
{
	if (!b)
		return;
	if (b->dirfd >= 0)
		close(b->dirfd);
	free(b);
}

/* The bucket's directory, created (and made durable) on first use. */
static int
bucket_dir(struct blobs *b, const char *bucket)
{
	int fd;

	if (mkdirat(b->dirfd, bucket, 0750) == 0)
		fsync(b->dirfd);
	else if (errno != EEXIST)
		return -errno;
	fd = openat(b->dirfd, bucket, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int
blobs_write(struct blobs *b, const char *bucket, const char *id, const void *data, size_t len)
{
	char tmp[64], tmpid[ID_LEN + 1];
	int fd = -1, dfd = -1, rc;

	if (!id_valid(bucket) || !id_valid(id))
		return -EINVAL;
	if ((rc = id_new(tmpid)) < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), ".tmp/%s", tmpid);
	fd = openat(b->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	close(fd);
	fd = -1;
	if ((dfd = bucket_dir(b, bucket)) < 0) {
		rc = dfd;
		goto fail;
	}
	if (renameat(b->dirfd, tmp, dfd, id) < 0) {
		rc = -errno;
		goto fail;
	}
	fsync(dfd);	/* the rename itself must survive a crash */
	close(dfd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	unlinkat(b->dirfd, tmp, 0);
	return rc;
}

int
blobs_open_read(struct blobs *b, const char *bucket, const char *id, int *fd, off_t *size)
{
	char rel[2 * ID_LEN + 2];
	struct stat st;

	*fd = -1;
	if (!id_valid(bucket) || !id_valid(id))
		return -ENOENT;
	snprintf(rel, sizeof(rel), "%s/%s", bucket, id);
	if ((*fd = openat(b->dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return -EIO;
	}
	*size = st.st_size;
	return 0;
}

int
blobs_remove(struct blobs *b, const char *bucket, const char *id)
{
	char rel[2 * ID_LEN + 2];

	if (!id_valid(bucket) || !id_valid(id))
		return -EINVAL;
	snprintf(rel, sizeof(rel), "%s/%s", bucket, id);
	if (unlinkat(b->dirfd, rel, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

long long
blobs_opened_ms(const struct blobs *b)
{
	return b->opened_ms;
}

/* Call cb for each blob of one bucket directory; non-zero if cb stopped. */
static int
walk_bucket(int root, const char *bucket, blobs_walk_cb cb, void *ctx)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, stop = 0;

	fd = openat(root, bucket, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!stop && (de = readdir(d))) {
		if (!id_valid(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		stop = cb(bucket, de->d_name, (long long)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000, ctx);
	}
	closedir(d);
	return stop;
}

int
blobs_walk(struct blobs *b, blobs_walk_cb cb, void *ctx)
{
	struct dirent *de;
	DIR *d;
	int fd = dup(b->dirfd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	/* dup shares the offset: start from the top whatever the last walk left. */
	rewinddir(d);
	while ((de = readdir(d)))
		if (id_valid(de->d_name) && walk_bucket(b->dirfd, de->d_name, cb, ctx))
			break;
	closedir(d);
	return 0;
}
