#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	ck_assert_int_eq(db_schema_version(db), 1);
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
	ck_assert_int_eq(db_schema_version(db), 1);
	ck_assert_int_eq(db_session_get(db, s.id, &g), 0);
	ck_assert_str_eq(g.state, "expired");
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

Suite *
suite_db(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("db");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sessions_round_trip);
	tcase_add_test(tc, unopenable_path_says_why);
	suite_add_tcase(s, tc);
	return s;
}
