#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blobs.h"
#include "db.h"
#include "suites.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	strcpy(dir, "/tmp/cip-dbtest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
}

static void
teardown(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

START_TEST(sessions_round_trip)
{
	struct db_session s = { .id = "V1StGXR8_Z5jdHi6B-myT", .user_id = "u1",
	    .hint = "conv-1", .created_at = 1000, .last_used_at = 1000, .state = "active" }, g;
	struct db *db;
	char err[256];

	ck_assert_int_eq(db_open(path, &db, err, sizeof(err)), 0);
	ck_assert_int_eq(db_schema_version(db), 4);
	ck_assert_int_eq(db_session_insert(db, &s), 0);
	ck_assert_int_eq(db_session_insert(db, &s), -EIO);	/* duplicate id */
	ck_assert_int_eq(db_session_get(db, s.id, &g), 0);
	ck_assert_str_eq(g.user_id, "u1");
	ck_assert_str_eq(g.container_id, "");
	ck_assert_int_eq(db_session_set_container(db, s.id, "abc123"), 0);
	ck_assert_int_eq(db_session_touch(db, s.id, 2000), 0);
	ck_assert_int_eq(db_session_by_hint(db, "u1", "conv-1", &g), 0);
	ck_assert_str_eq(g.container_id, "abc123");
	ck_assert_int_eq(g.last_used_at, 2000);
	ck_assert_int_eq(db_session_by_hint(db, "u2", "conv-1", &g), -ENOENT);
	ck_assert_int_eq(db_session_get(db, "nope", &g), -ENOENT);
	ck_assert_int_eq(db_session_touch(db, "nope", 1), -ENOENT);
	ck_assert_int_eq(db_session_set_state(db, s.id, "expired"), 0);
	ck_assert_int_eq(db_session_by_hint(db, "u1", "conv-1", &g), -ENOENT);
	ck_assert_int_eq(db_check_writable(db, err, sizeof(err)), 0);
	db_close(db);

	/* Reopening keeps the rows and does not migrate again. */
	ck_assert_int_eq(db_open(path, &db, err, sizeof(err)), 0);
	ck_assert_int_eq(db_schema_version(db), 4);
	ck_assert_int_eq(db_session_get(db, s.id, &g), 0);
	ck_assert_str_eq(g.state, "expired");
	db_close(db);
}
END_TEST

static int
collect_ids(const struct db_session *s, long files, long long bytes, void *ctx)
{
	strcat(ctx, s->id);
	strcat(ctx, " ");
	return 0;
}

/* Eviction's view: active sessions with a container, least recently used first. */
START_TEST(holding_sessions_oldest_use_first)
{
	const char *ids[] = { "AAAAAAAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAAAAAAA2",
	    "AAAAAAAAAAAAAAAAAAAA3", "AAAAAAAAAAAAAAAAAAAA4" };
	long long used[] = { 300, 100, 200, 50 };
	struct db_session s, g;
	struct db_totals t;
	struct db *db;
	char err[256], seen[200] = "";
	int i;

	ck_assert_int_eq(db_open(path, &db, err, sizeof(err)), 0);
	for (i = 0; i < 4; i++) {
		memset(&s, 0, sizeof(s));
		strcpy(s.id, ids[i]);
		strcpy(s.user_id, "u");
		strcpy(s.state, "active");
		s.created_at = 1;
		s.last_used_at = used[i];
		ck_assert_int_eq(db_session_insert(db, &s), 0);
	}
	ck_assert_int_eq(db_session_set_container(db, ids[0], "c1"), 0);
	ck_assert_int_eq(db_session_set_container(db, ids[1], "c2"), 0);
	ck_assert_int_eq(db_session_set_container(db, ids[2], "c3"), 0);
	ck_assert_int_eq(db_session_set_state(db, ids[2], "expired"), 0); /* ended: not counted */
	ck_assert_int_eq(db_count_holding(db), 2);
	ck_assert_int_eq(db_session_holding(db, 1000, 10, collect_ids, seen), 0);
	ck_assert_str_eq(seen, "AAAAAAAAAAAAAAAAAAAA2 AAAAAAAAAAAAAAAAAAAA1 ");
	seen[0] = '\0';
	ck_assert_int_eq(db_session_holding(db, 200, 10, collect_ids, seen), 0);
	ck_assert_str_eq(seen, "AAAAAAAAAAAAAAAAAAAA2 ");
	ck_assert_int_eq(db_session_by_container(db, "c1", &g), 0);
	ck_assert_str_eq(g.id, ids[0]);
	ck_assert_int_eq(db_session_by_container(db, "c3", &g), -ENOENT);
	ck_assert_int_eq(db_totals(db, &t), 0);
	ck_assert_int_eq(t.sessions_active, 3);
	ck_assert_int_eq(t.containers, 2);
	ck_assert_int_eq(db_session_set_container(db, ids[0], NULL), 0);
	ck_assert_int_eq(db_count_holding(db), 1);
	db_close(db);
}
END_TEST

START_TEST(unopenable_path_says_why)
{
	struct db *db;
	char err[256] = "";

	ck_assert_int_lt(db_open("/nonexistent-dir/x/t.db", &db, err, sizeof(err)), 0);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, "/nonexistent-dir/x/t.db"), "%s", err);
}
END_TEST

static int
count_row(const struct db_file *f, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

START_TEST(files_round_trip)
{
	struct db_file f = { .bucket = "bucketAAAAAAAAAAAAAAA", .id = "fileAAAAAAAAAAAAAAAAA",
	    .name = "out/report.csv", .size = 3, .sha256 = "abc", .mime = "text/csv",
	    .created_at = 5, .owner = "u" }, g;
	struct db *db;
	char err[256];
	int n = 0;

	ck_assert_int_eq(db_open(path, &db, err, sizeof(err)), 0);
	ck_assert_int_eq(db_file_insert(db, &f), 0);
	strcpy(f.id, "fileBBBBBBBBBBBBBBBBB");
	strcpy(f.from_id, "fileAAAAAAAAAAAAAAAAA");
	ck_assert_int_eq(db_file_insert(db, &f), 0);
	ck_assert_int_eq(db_file_get(db, f.bucket, "fileAAAAAAAAAAAAAAAAA", &g), 0);
	ck_assert_str_eq(g.name, "out/report.csv");
	ck_assert_str_eq(g.from_id, "");
	ck_assert_int_eq(db_file_get(db, f.bucket, "fileBBBBBBBBBBBBBBBBB", &g), 0);
	ck_assert_str_eq(g.from_id, "fileAAAAAAAAAAAAAAAAA");
	ck_assert_int_eq(db_file_get(db, "otherbucketAAAAAAAAAA", f.id, &g), -ENOENT);
	ck_assert_int_eq(db_file_list(db, f.bucket, count_row, &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(db_file_delete(db, f.bucket, f.id), 0);
	ck_assert_int_eq(db_file_delete(db, f.bucket, f.id), -ENOENT);
	db_close(db);
}
END_TEST

START_TEST(blobs_round_trip)
{
	struct blobs *b;
	char err[256], buf[16];
	off_t size;
	int fd;

	/* A crash left a half-written temporary file: opening clears it. */
	snprintf(err, sizeof(err), "%s/blobs/.tmp", dir);
	ck_assert_int_eq(blobs_open(dir, &b, err + 200, 50), 0);
	blobs_close(b);
	snprintf(err, sizeof(err), "%s/blobs/.tmp/halfwritten", dir);
	fd = open(err, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(blobs_open(dir, &b, err + 200, 50), 0);
	ck_assert_int_eq(access(err, F_OK), -1);
	ck_assert_int_eq(blobs_write(b, "bucketAAAAAAAAAAAAAAA", "fileAAAAAAAAAAAAAAAAA", "hello", 5), 0);
	ck_assert_int_eq(blobs_open_read(b, "bucketAAAAAAAAAAAAAAA", "fileAAAAAAAAAAAAAAAAA", &fd, &size), 0);
	ck_assert_int_eq(size, 5);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	close(fd);
	/* Names that are not ids never reach the file system. */
	ck_assert_int_eq(blobs_write(b, "../../etc", "fileAAAAAAAAAAAAAAAAA", "x", 1), -EINVAL);
	ck_assert_int_eq(blobs_open_read(b, "bucketAAAAAAAAAAAAAAA", "../bucketAAAAAAAAAAAA", &fd, &size), -ENOENT);
	ck_assert_int_eq(blobs_remove(b, "bucketAAAAAAAAAAAAAAA", "fileAAAAAAAAAAAAAAAAA"), 0);
	ck_assert_int_eq(blobs_remove(b, "bucketAAAAAAAAAAAAAAA", "fileAAAAAAAAAAAAAAAAA"), 0);
	ck_assert_int_eq(blobs_open_read(b, "bucketAAAAAAAAAAAAAAA", "fileAAAAAAAAAAAAAAAAA", &fd, &size), -ENOENT);
	blobs_close(b);
}
END_TEST

Suite *
suite_db(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("db");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sessions_round_trip);
	tcase_add_test(tc, unopenable_path_says_why);
	tcase_add_test(tc, holding_sessions_oldest_use_first);
	tcase_add_test(tc, files_round_trip);
	tcase_add_test(tc, blobs_round_trip);
	suite_add_tcase(s, tc);
	return s;
}
