/*
 * File contents on disk: CI_FILE_STORAGE_PATH/blobs/<bucket>/<id>.  A blob
 * is written to a temporary name, fsynced, then renamed into place, so a
 * crash never leaves half a file under a real name.  Callers write the blob
 * before its database row and delete the row before the blob: a row never
 * points at a missing blob (an orphan blob is invisible and swept later).
 */
#ifndef CIP_BLOBS_H
#define CIP_BLOBS_H

#include <stddef.h>
#include <sys/types.h>

#include "attr.h"

struct blobs;

/* Open (creating) the store under root; err says why not. */
int blobs_open(const char *root, struct blobs **out, char *err, size_t errlen);
void blobs_close(struct blobs *b);

/* Store data as bucket/id; 0 or -errno.  bucket and id must be ids. */
CIP_MUST_CHECK int blobs_write(struct blobs *b, const char *bucket, const char *id, const void *data,
    size_t len);
/* Open bucket/id for reading: a new fd (caller closes) and its size. */
int blobs_open_read(struct blobs *b, const char *bucket, const char *id, int *fd, off_t *size);
/* Remove bucket/id; a missing blob is success. */
CIP_MUST_CHECK int blobs_remove(struct blobs *b, const char *bucket, const char *id);

/* One stored blob, with when it was last written (unix ms); non-zero stops the walk. */
typedef int (*blobs_walk_cb)(const char *bucket, const char *id, long long mtime_ms, void *ctx);
/* Call cb for every blob in the store; 0, or -errno if the store cannot be read. */
int blobs_walk(struct blobs *b, blobs_walk_cb cb, void *ctx);
/* When this process opened the store (unix ms): older blobs were written by another. */
long long blobs_opened_ms(const struct blobs *b);

#endif
