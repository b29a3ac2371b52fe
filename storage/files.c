#include "config.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>

#include "clock.h"
#include "files.h"
#include "ids.h"
#include "log.h"

int
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
files_delete(struct db *db, struct blobs *b, const char *bucket, const char *id)
{
	int rc;

	if ((rc = db_file_delete(db, bucket, id)) < 0)
		return rc;
	if (blobs_remove(b, bucket, id) < 0)
		log_warn("file %s/%s: row deleted, blob left for the sweeper", bucket, id);
	return 0;
}
