/*
 * Stored files (see files.h): a blob and its row, stored and deleted in the
 * order that never leaves a row without its blob.
 */
#include "config.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "files.h"
#include "ids.h"
#include "log.h"
#include "mime.h"

/* Blob first, then row: a row never points at a missing blob. */
static int
files_store(struct db *db, struct blobs *b, struct db_file *row, const void *data, size_t len)
{
	unsigned char dig[SHA256_DIGEST_LENGTH];
	size_t i;
	int rc;

	if ((rc = id_new(row->id)) < 0)
		return rc;
	row->size = (long long)len;
	if (!row->created_at)
		row->created_at = clock_wall_ms();
	SHA256(data, len, dig);
	for (i = 0; i < sizeof(dig); i++)
		snprintf(row->sha256 + 2 * i, 3, "%02x", dig[i]);
	if ((rc = blobs_write(b, row->bucket, row->id, data, len)) < 0)
		return rc;
	if ((rc = db_file_insert(db, row)) < 0) {
		if (blobs_remove(b, row->bucket, row->id) < 0)
			log_warn("file %s/%s: no row, blob left for the sweeper", row->bucket, row->id);
		return rc;
	}
	return 0;
}

int
files_store_named(struct db *db, struct blobs *b, const struct file_new *nf, const void *data,
    size_t len, struct db_file *row)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->bucket, sizeof(row->bucket), "%s", nf->bucket);
	snprintf(row->name, sizeof(row->name), "%s", nf->name);
	snprintf(row->owner, sizeof(row->owner), "%s", nf->owner);
	if (nf->session_id)
		snprintf(row->session_id, sizeof(row->session_id), "%s", nf->session_id);
	if (nf->from_id && nf->from_bucket) {
		snprintf(row->from_id, sizeof(row->from_id), "%s", nf->from_id);
		snprintf(row->from_bucket, sizeof(row->from_bucket), "%s", nf->from_bucket);
	}
	row->read_only = nf->read_only;
	mime_guess(data, len, nf->name, row->mime, sizeof(row->mime));
	return files_store(db, b, row, data, len);
}

struct orphans {
	struct db *db;
	struct blobs *b;
	long long cutoff_ms;
	long removed;
};

/* Remove one blob written before the cutoff if no row names it. */
static int
sweep_orphan(const char *bucket, const char *id, long long mtime_ms, void *ctx)
{
	struct orphans *o = ctx;
	struct db_file row;

	/* Only a row known missing: a database that failed to answer proves nothing. */
	if (mtime_ms >= o->cutoff_ms || db_file_get(o->db, bucket, id, &row) != -ENOENT)
		return 0;
	if (blobs_remove(o->b, bucket, id) < 0)
		return 0;
	log_warn("file %s/%s: a blob no row names (an interrupted store or delete) removed",
	    bucket, id);
	o->removed++;
	return 0;
}

long
files_sweep_orphans(struct db *db, struct blobs *b, long long grace_ms)
{
	struct orphans o = { db, b, clock_wall_ms() - grace_ms, 0 };

	/* Anything from before this process started is no store in progress. */
	if (o.cutoff_ms < blobs_opened_ms(b))
		o.cutoff_ms = blobs_opened_ms(b);
	blobs_walk(b, sweep_orphan, &o);
	return o.removed;
}

int
files_delete(struct db *db, struct blobs *b, const char *bucket, const char *id)
{
	int rc;

	if ((rc = db_file_delete(db, bucket, id)) < 0)
		return rc;
	if (blobs_remove(b, bucket, id) < 0)
		log_warn("file %s/%s: row deleted, blob left for the sweeper", bucket, id);
	return 0;
}
