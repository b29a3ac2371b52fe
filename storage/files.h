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

/*
 * Store data under row->bucket with a new id (written to row->id), its size
 * and SHA-256 filled in.  The caller fills name, mime, owner and the rest.
 * 0 or -errno; nothing is left behind on failure.
 */
CIP_MUST_CHECK int files_store(struct db *db, struct blobs *b, struct db_file *row, const void *data,
    size_t len);
/* Delete a stored file: -ENOENT if there is none. */
CIP_MUST_CHECK int files_delete(struct db *db, struct blobs *b, const char *bucket, const char *id);

#endif
