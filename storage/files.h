/*
 * Stored files as one thing: the blob and its row, kept in step.  A file is
 * stored blob first, then row, and deleted row first, then blob, so a row
 * never points at a missing blob.
 */
#ifndef CIP_FILES_H
#define CIP_FILES_H

#include <stddef.h>

#include "attr.h"

#include "blobs.h"
#include "db.h"

/* What a new file is, where it goes and whose it is (strings borrowed). */
struct file_new {
	const char *bucket;
	const char *name;		/* as uploaded, or relative to /mnt/data */
	const char *owner;		/* the user it belongs to */
	const char *session_id;		/* the session whose run wrote it, or NULL */
	const char *from_id, *from_bucket;	/* the input it changed, or NULL */
	int read_only;
};
/*
 * Store data as a new file described by nf: row is filled (a new id, the
 * size, SHA-256, and the MIME type told by its bytes and name).  0 or
 * -errno; nothing is left behind on failure.
 */
CIP_MUST_CHECK int files_store_named(struct db *db, struct blobs *b, const struct file_new *nf,
    const void *data, size_t len, struct db_file *row);
/* Delete a stored file: -ENOENT if there is none. */
CIP_MUST_CHECK int files_delete(struct db *db, struct blobs *b, const char *bucket, const char *id);
/*
 * Remove the blobs no row names: left by a crash between a blob's rename
 * and its row (any such blob older than this process), or by a delete
 * whose unlink failed (older than grace_ms, which must outlast a store
 * between its blob and its row).  The number removed.
 */
long files_sweep_orphans(struct db *db, struct blobs *b, long long grace_ms);

#endif
