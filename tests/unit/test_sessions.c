/*
 * sessions/ driven through its sandbox seam with fake sandboxes
 * (fake_sandbox.h): the exec sequence, the container cap and eviction, the
 * sweeper, and a runner that lies.  Real SQLite and a real file store in a
 * temporary directory; no engine.
 */
#include "config.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "exec_req.h"
#include "fake_sandbox.h"
#include "ids.h"
#include "sessions.h"
#include "suites.h"
#include "../../storage/blobs.h"
#include "../../storage/db.h"
#include "../../storage/files.h"

static char dir[64], dbpath[128];
static struct cfg *cfg;
static struct db *db;
static struct blobs *blobs;
static struct metrics *mx;
static struct fake *fk;
static struct sessions *sm;

struct env { const char *const *kv; };

/* The last value of name in the list: a test's own settings override the defaults. */
static const char *
env_get(const char *name, void *ctx)
{
	const char *const *kv = ((struct env *)ctx)->kv, *v = NULL;

	for (; kv[0]; kv += 2)
		if (strcmp(kv[0], name) == 0)
			v = kv[1];
	return v;
}

/* A manager on fake sandboxes, configured by kv (no warm pool unless kv asks). */
static void
start(const char *const *kv)
{
	const char *merged[32] = { "CI_POOL_SIZE", "0" };
	struct env e = { merged };
	char err[512], store[128];
	int i;

	for (i = 0; kv && kv[i] && i < 28; i++)
		merged[i + 2] = kv[i];
	strcpy(dir, "/tmp/cip-sesstest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/t.db", dir);
	snprintf(store, sizeof(store), "%s", dir);
	ck_assert_msg(cfg_load(env_get, &e, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(db_open(dbpath, &db, err, sizeof(err)), 0);
	ck_assert_int_eq(blobs_open(store, &blobs, err, sizeof(err)), 0);
	mx = metrics_new();
	fk = fake_new();
	ck_assert_ptr_nonnull(sm = sessions_new_with(cfg, fake_sandboxes(fk), db, blobs, mx));
}

static void
stop(void)
{
	char cmd[160];

	sessions_free(sm);
	fake_free(fk);
	blobs_close(blobs);
	db_close(db);
	metrics_free(mx);
	cfg_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

/* Exec code (fake script) in session sid (NULL: a new one) for who, with files (JSON or NULL). */
static int
run_as(const struct caller *who, const char *sid, const char *code, const char *files,
    struct exec_result *res, char *why)
{
	char json[2048], err[256];
	struct exec_req *req;
	int rc;

	snprintf(json, sizeof(json), "{\"lang\":\"py\",\"code\":\"%s\"%s%s%s%s%s}", code,
	    sid ? ",\"session_id\":\"" : "", sid ? sid : "", sid ? "\"" : "",
	    files ? ",\"files\":" : "", files ? files : "");
	ck_assert_msg(exec_req_parse(json, strlen(json), &req, err, sizeof(err)) == 0, "%s", err);
	why[0] = '\0';
	rc = sessions_exec(sm, who, req, NULL, res, why, 256);
	exec_req_free(req);
	return rc;
}

/* Exec code in session sid (NULL: a new one) as verified user u1. */
static int
run(const char *sid, const char *code, struct exec_result *res, char *why)
{
	static const struct caller u1 = { "u1", 1 };

	return run_as(&u1, sid, code, NULL, res, why);
}

/* The container session sid holds now ("" for none). */
static const char *
container_of(const char *sid)
{
	static struct db_session row;

	ck_assert_int_eq(db_session_get(db, sid, &row), 0);
	return row.container_id;
}

/* The stored bytes of a captured file. */
static char *
stored(const struct exec_file *f)
{
	char *data;
	off_t size;
	int fd;

	ck_assert_int_eq(blobs_open_read(blobs, f->bucket, f->id, &fd, &size), 0);
	data = calloc(1, (size_t)size + 1);
	ck_assert_int_eq(read(fd, data, (size_t)size), size);
	close(fd);
	return data;
}

static int
count_file(const struct db_file *f, void *ctx)
{
	(void)f;
	(*(int *)ctx)++;
	return 0;
}

static int
files_in(const char *bucket)
{
	int n = 0;

	ck_assert_int_eq(db_file_list(db, bucket, count_file, &n), 0);
	return n;
}

/* Make every session look created (and used) long ago. */
static void
age_sessions(void)
{
	sqlite3 *h;

	ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "UPDATE sessions SET created_at = 0, last_used_at = 0",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

struct bg_exec {
	pthread_t t;
	char sid[32];
	const char *code;
	struct exec_result res;
	char why[256];
	int rc;
};

static void *
bg_main(void *arg)
{
	struct bg_exec *b = arg;

	b->rc = run(b->sid[0] ? b->sid : NULL, b->code, &b->res, b->why);
	return NULL;
}

static void
bg_start(struct bg_exec *b, const char *sid, const char *code)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->sid, sizeof(b->sid), "%s", sid ? sid : "");
	b->code = code;
	ck_assert_int_eq(pthread_create(&b->t, NULL, bg_main, b), 0);
}

START_TEST(exec_stores_what_the_run_wrote)
{
	struct exec_result r1, r2;
	char why[256], *data;

	start(NULL);
	ck_assert_int_eq(run(NULL, "write out.txt hello\\nprint done", &r1, why), SESS_OK);
	ck_assert_str_eq(r1.out, "done\n");
	ck_assert_int_eq(r1.exit_code, 0);
	ck_assert_uint_eq(r1.nfiles, 1);
	ck_assert_str_eq(r1.files[0].name, "out.txt");
	ck_assert_str_eq(data = stored(&r1.files[0]), "hello");
	free(data);
	/* The same session: the same container, and an unchanged file is not captured again. */
	ck_assert_int_eq(run(r1.session_id, "print again\\nexit 3", &r2, why), SESS_OK);
	ck_assert_str_eq(r2.session_id, r1.session_id);
	ck_assert_int_eq(r2.exit_code, 3);
	ck_assert_uint_eq(r2.nfiles, 0);
	ck_assert_int_eq(fake_made(fk), 1);
	ck_assert_int_eq(files_in(r1.session_id), 1);
	exec_result_free(&r1);
	exec_result_free(&r2);
	stop();
}
END_TEST

START_TEST(eviction_takes_the_least_recently_used)
{
	static const char *const kv[] = { "CI_MAX_LIVE_CONTAINERS", "2", NULL };
	struct exec_result a, b, c, x;
	char why[256], ca[DOCKER_ID_MAX], cb[DOCKER_ID_MAX], *kept;

	start(kv);
	ck_assert_int_eq(run(NULL, "write a.txt A", &a, why), SESS_OK);
	usleep(5000);
	ck_assert_int_eq(run(NULL, "write b.txt B", &b, why), SESS_OK);
	usleep(5000);
	ck_assert_int_eq(run(a.session_id, "print a again", &x, why), SESS_OK);
	exec_result_free(&x);
	snprintf(ca, sizeof(ca), "%s", container_of(a.session_id));
	snprintf(cb, sizeof(cb), "%s", container_of(b.session_id));
	usleep(5000);
	/* A third session needs a slot: B's container was used least recently. */
	ck_assert_int_eq(run(NULL, "print c", &c, why), SESS_OK);
	ck_assert_int_eq(fake_removed(fk), 1);
	ck_assert_str_eq(fake_removed_id(fk, 0), cb);
	ck_assert_str_eq(container_of(b.session_id), "");
	ck_assert_str_eq(container_of(a.session_id), ca);
	usleep(5000);
	/* B comes back in a new container with its file; now A is the oldest. */
	ck_assert_int_eq(run(b.session_id, "print b again", &x, why), SESS_OK);
	ck_assert_str_eq(fake_removed_id(fk, 1), ca);
	ck_assert_ptr_nonnull(kept = fake_file(fk, container_of(b.session_id), "b.txt"));
	ck_assert_str_eq(kept, "B");
	free(kept);
	ck_assert_int_le(fake_max_alive(fk), 2);
	exec_result_free(&a);
	exec_result_free(&b);
	exec_result_free(&c);
	exec_result_free(&x);
	stop();
}
END_TEST

START_TEST(a_session_mid_run_is_never_evicted)
{
	static const char *const kv[] = { "CI_MAX_LIVE_CONTAINERS", "1", NULL };
	struct exec_result r;
	struct bg_exec a;
	char why[256];

	start(kv);
	bg_start(&a, NULL, "block\\nprint finished");
	fake_wait_blocked(fk, 1);
	ck_assert_int_eq(run(NULL, "print other", &r, why), SESS_EBUSY);
	ck_assert_ptr_nonnull(strstr(why, "CI_MAX_LIVE_CONTAINERS=1"));
	ck_assert_int_eq(fake_removed(fk), 0);
	fake_release(fk);
	pthread_join(a.t, NULL);
	ck_assert_int_eq(a.rc, SESS_OK);
	ck_assert_str_eq(a.res.out, "finished\n");
	exec_result_free(&a.res);
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(the_cap_holds_under_concurrent_takes)
{
	static const char *const kv[] = { "CI_MAX_LIVE_CONTAINERS", "4", "CI_POOL_SIZE", "2",
	    NULL };
	struct bg_exec b[12];
	struct metrics_sample ms;
	struct exec_result r;
	char why[256];
	int i, ok = 0;

	start(kv);
	fake_make_delay(fk, 20);
	ck_assert_int_eq(sessions_start_pool(sm), 0);
	for (i = 0; i < 12; i++)
		bg_start(&b[i], NULL, "print hi");
	for (i = 0; i < 12; i++) {
		pthread_join(b[i].t, NULL);
		ck_assert_msg(b[i].rc == SESS_OK || (b[i].rc == SESS_EBUSY &&
		    strstr(b[i].why, "CI_MAX_LIVE_CONTAINERS=4")), "exec %d: %d %s", i, b[i].rc,
		    b[i].why);
		ok += b[i].rc == SESS_OK;
		exec_result_free(&b[i].res);
	}
	/* Busy is "every container is in use right now", never a hang or an overshoot. */
	ck_assert_int_ge(ok, 1);
	ck_assert_int_le(fake_max_alive(fk), 4);
	/* Once they are idle, new sessions get slots by evicting the least recently used. */
	for (i = 0; i < 6; i++) {
		ck_assert_msg(run(NULL, "print later", &r, why) == SESS_OK, "later %d: %s", i, why);
		exec_result_free(&r);
	}
	ck_assert_int_le(fake_max_alive(fk), 4);
	ck_assert_int_eq(sessions_sample(sm, &ms), 0);
	ck_assert_int_le(ms.containers_live + ms.pool_size, 4);
	/* Every container is somebody's: a session's row, or the pool's, until it stops. */
	sessions_stop_pool(sm);
	ck_assert_int_eq(fake_alive(fk), db_count_holding(db));
	stop();
}
END_TEST

START_TEST(the_sweep_skips_a_session_mid_run)
{
	struct db_session row;
	struct bg_exec a;
	char cid[DOCKER_ID_MAX];

	start(NULL);
	bg_start(&a, NULL, "block\\nwrite late.txt L");
	fake_wait_blocked(fk, 1);
	age_sessions();
	sessions_sweep(sm);
	/* Past its TTL but mid-run: left for the next sweep, container and all. */
	ck_assert_int_eq(fake_removed(fk), 0);
	fake_release(fk);
	pthread_join(a.t, NULL);
	ck_assert_int_eq(a.rc, SESS_OK);
	ck_assert_uint_eq(a.res.nfiles, 1);
	snprintf(cid, sizeof(cid), "%s", container_of(a.res.session_id));
	ck_assert_int_eq(db_session_get(db, a.res.session_id, &row), 0);
	ck_assert_str_eq(row.state, "active");
	age_sessions();
	sessions_sweep(sm);
	ck_assert_int_eq(db_session_get(db, a.res.session_id, &row), 0);
	ck_assert_str_eq(row.state, "expired");
	ck_assert(!fake_exists(fk, cid));
	exec_result_free(&a.res);
	stop();
}
END_TEST

START_TEST(names_that_escape_are_never_fetched)
{
	struct exec_result r;
	char why[256], *gets;

	start(NULL);
	fake_set_lie(fk, LIE_BAD_NAMES);
	ck_assert_int_eq(run(NULL, "write good.txt ok", &r, why), SESS_OK);
	ck_assert_uint_eq(r.nfiles, 1);
	ck_assert_str_eq(r.files[0].name, "good.txt");
	ck_assert_str_eq(gets = fake_gets(fk), "good.txt\n");
	free(gets);
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(sizes_past_the_cap_are_not_stored)
{
	static const char *const kv[] = { "CI_MAX_FILE_SIZE_BYTES", "1000", NULL };
	struct exec_result r;
	char why[256], *gets;

	start(kv);
	/* A listing claiming 1 TB: not even fetched. */
	fake_set_lie(fk, LIE_LIST_HUGE);
	ck_assert_int_eq(run(NULL, "write a.txt hi", &r, why), SESS_OK);
	ck_assert_uint_eq(r.nfiles, 0);
	ck_assert_str_eq(gets = fake_gets(fk), "");
	free(gets);
	exec_result_free(&r);
	/* A small listing, then a GET that answers with 1 MiB: not stored, and said so. */
	fake_set_lie(fk, LIE_GET_HUGE);
	ck_assert_int_eq(run(NULL, "write b.txt hi", &r, why), SESS_OK);
	ck_assert_uint_eq(r.nfiles, 0);
	ck_assert_int_eq(files_in(r.session_id), 0);
	ck_assert_uint_eq(r.outputs_attempted, 1);
	ck_assert_uint_eq(r.outputs_failed, 1);
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(eof_mid_run_is_a_sandbox_error_and_the_next_call_recovers)
{
	struct exec_result r;
	char why[256], sid[32];

	start(NULL);
	fake_set_lie(fk, LIE_EOF_RUN);
	ck_assert_int_eq(run(NULL, "write x.txt X\\nprint x", &r, why), SESS_ESANDBOX);
	ck_assert_ptr_nonnull(strstr(why, "the sandbox failed during the run"));
	snprintf(sid, sizeof(sid), "%s", r.session_id);
	exec_result_free(&r);
	/* The run is not repeated behind the user's back: one RUN only. */
	fake_set_lie(fk, LIE_NONE);
	ck_assert_int_eq(run(sid, "print back", &r, why), SESS_OK);
	ck_assert_str_eq(r.out, "back\n");
	/* The container runs on: a new channel, not a new container. */
	ck_assert_int_eq(fake_made(fk), 1);
	ck_assert_int_eq(fake_attached(fk), 2);
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(eof_before_the_run_is_retried_once)
{
	struct exec_result r;
	char why[256];

	start(NULL);
	fake_set_lie(fk, LIE_EOF_PUT_ONCE);
	ck_assert_int_eq(run(NULL, "print once", &r, why), SESS_OK);
	ck_assert_str_eq(r.out, "once\n");
	ck_assert_int_eq(fake_attached(fk), 2);
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(garbage_from_the_runner_is_a_sandbox_error)
{
	struct exec_result r;
	char why[256];

	start(NULL);
	fake_set_lie(fk, LIE_GARBAGE_RUN);
	ck_assert_int_eq(run(NULL, "print x", &r, why), SESS_ESANDBOX);
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(absurd_numbers_are_clamped)
{
	struct exec_result r;
	char why[256];

	start(NULL);
	fake_set_lie(fk, LIE_WILD_NUMBERS);
	ck_assert_int_eq(run(NULL, "print x", &r, why), SESS_OK);
	ck_assert_int_eq(r.exit_code, 255);
	ck_assert_int_eq(r.signal, 0);
	ck_assert_int_eq(r.wall_ms, 0);
	/* stdout stays the bytes shown; the overflow is flagged and told in stderr. */
	ck_assert_str_eq(r.out, "x\n");
	ck_assert(r.overflow);
	ck_assert_ptr_nonnull(strstr(r.err, "[stdout truncated: 2 of 1000000000000 bytes shown"));
	exec_result_free(&r);
	stop();
}
END_TEST

START_TEST(engine_failures_map_to_their_errors)
{
	struct exec_result r;
	char why[256];

	start(NULL);
	fake_fail_make(fk, DOCKER_EUNAVAIL);
	ck_assert_int_eq(run(NULL, "print x", &r, why), SESS_EUNAVAIL);
	ck_assert_str_eq(why, "docker engine unavailable");
	exec_result_free(&r);
	fake_fail_make(fk, DOCKER_ENOTFOUND);
	ck_assert_int_eq(run(NULL, "print x", &r, why), SESS_EENGINE);
	ck_assert_ptr_nonnull(strstr(why, "not found"));
	exec_result_free(&r);
	ck_assert_int_eq(fake_alive(fk), 0);
	stop();
}
END_TEST

START_TEST(a_stopped_container_is_replaced_with_its_files)
{
	struct exec_result r;
	char why[256], sid[32], c1[DOCKER_ID_MAX], *kept;

	start(NULL);
	ck_assert_int_eq(run(NULL, "write keep.txt K", &r, why), SESS_OK);
	snprintf(sid, sizeof(sid), "%s", r.session_id);
	snprintf(c1, sizeof(c1), "%s", container_of(sid));
	exec_result_free(&r);
	fake_stop(fk, c1);
	ck_assert_int_eq(run(sid, "print again", &r, why), SESS_OK);
	ck_assert_str_eq(r.out, "again\n");
	ck_assert_str_ne(container_of(sid), c1);
	ck_assert(!fake_exists(fk, c1));
	ck_assert_ptr_nonnull(kept = fake_file(fk, container_of(sid), "keep.txt"));
	ck_assert_str_eq(kept, "K");
	free(kept);
	exec_result_free(&r);
	stop();
}
END_TEST

/* A stored file of owner's in a new bucket; its files[] ref as JSON in ref. */
static void
stored_file(const char *owner, const char *name, char *ref, size_t cap)
{
	char bucket[ID_LEN + 1];
	struct file_new nf = { .bucket = bucket, .name = name, .owner = owner };
	struct db_file row;

	ck_assert_int_eq(id_new(bucket), 0);
	ck_assert_int_eq(files_store_named(db, blobs, &nf, "data", 4, &row), 0);
	snprintf(ref, cap, "[{\"id\":\"%s\",\"storage_session_id\":\"%s\",\"name\":\"%s\","
	    "\"kind\":\"user\"}]", row.id, bucket, name);
}

START_TEST(who_may_use_a_users_file)
{
	static const struct {
		struct caller who;
		int ok;
	} matrix[] = {
		{ { "u1", 1 }, 1 },	/* the token's subject, the owner */
		{ { "u2", 1 }, 0 },	/* another subject */
		{ { NULL, 0 }, 1 },	/* no user named: LibreChat's helper calls */
		{ { "u1", 0 }, 1 },	/* User-Id or user_id of the owner */
		{ { "u2", 0 }, 0 },	/* claims to be someone else */
	};
	struct db_totals t;
	struct exec_result r;
	char ref[256], why[256];
	size_t i;
	int rc;

	start(NULL);
	stored_file("u1", "in.txt", ref, sizeof(ref));
	for (i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
		rc = run_as(&matrix[i].who, NULL, "print ok", ref, &r, why);
		ck_assert_msg(rc == (matrix[i].ok ? SESS_OK : SESS_EINPUT), "case %zu: %d %s", i, rc,
		    why);
		if (!matrix[i].ok)
			ck_assert_str_eq(why, "files[0] (in.txt) does not exist or has expired");
		exec_result_free(&r);
	}
	/* Refused calls made nothing: three sessions and containers, for the three allowed. */
	ck_assert_int_eq(db_totals(db, &t), 0);
	ck_assert_int_eq(t.sessions_active, 3);
	ck_assert_int_eq(fake_made(fk), 3);
	stop();
}
END_TEST

START_TEST(a_call_naming_no_user_works_in_the_users_session)
{
	static const struct caller helper = { NULL, 0 };
	struct exec_result r1, r2;
	char why[256], ref[256];

	start(NULL);
	stored_file("u1", "photo.png", ref, sizeof(ref));
	ck_assert_int_eq(run_as(&(struct caller){ "u1", 1 }, NULL, "print hi", ref, &r1, why),
	    SESS_OK);
	/* LibreChat's image reader: session_id and files, no user. */
	ck_assert_int_eq(run_as(&helper, r1.session_id, "write copy.txt c", ref, &r2, why),
	    SESS_OK);
	ck_assert_str_eq(r2.session_id, r1.session_id);
	ck_assert_int_eq(fake_made(fk), 1);
	ck_assert_uint_eq(r2.nfiles, 2);	/* copy.txt, and photo.png inherited */
	{
		struct db_file f;
		size_t i;

		for (i = 0; i < r2.nfiles && r2.files[i].inherited; i++)
			;
		ck_assert_int_eq(db_file_get(db, r2.files[i].bucket, r2.files[i].id, &f), 0);
		ck_assert_str_eq(f.owner, "u1");	/* the session's owner's */
	}
	exec_result_free(&r1);
	exec_result_free(&r2);
	stop();
}
END_TEST

START_TEST(deleted_inputs_are_named_after_a_complete_listing)
{
	static const struct caller u1 = { "u1", 1 };
	struct exec_result r;
	char why[256], ref[256];

	start(NULL);
	stored_file("u1", "in.txt", ref, sizeof(ref));
	ck_assert_int_eq(run_as(&u1, NULL, "print kept", ref, &r, why), SESS_OK);
	ck_assert(r.deleted_known);
	ck_assert_uint_eq(r.ndeleted, 0);
	exec_result_free(&r);
	ck_assert_int_eq(run_as(&u1, NULL, "remove in.txt", ref, &r, why), SESS_OK);
	ck_assert(r.deleted_known);
	ck_assert_uint_eq(r.ndeleted, 1);
	ck_assert_str_eq(r.deleted[0], "in.txt");
	ck_assert_uint_eq(r.outputs_failed, 0);
	exec_result_free(&r);
	stop();
}
END_TEST

Suite *
suite_sessions(void)
{
	Suite *s = suite_create("sessions");
	TCase *tc = tcase_create("fake sandboxes");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, exec_stores_what_the_run_wrote);
	tcase_add_test(tc, eviction_takes_the_least_recently_used);
	tcase_add_test(tc, a_session_mid_run_is_never_evicted);
	tcase_add_test(tc, the_cap_holds_under_concurrent_takes);
	tcase_add_test(tc, the_sweep_skips_a_session_mid_run);
	tcase_add_test(tc, names_that_escape_are_never_fetched);
	tcase_add_test(tc, sizes_past_the_cap_are_not_stored);
	tcase_add_test(tc, eof_mid_run_is_a_sandbox_error_and_the_next_call_recovers);
	tcase_add_test(tc, eof_before_the_run_is_retried_once);
	tcase_add_test(tc, garbage_from_the_runner_is_a_sandbox_error);
	tcase_add_test(tc, absurd_numbers_are_clamped);
	tcase_add_test(tc, engine_failures_map_to_their_errors);
	tcase_add_test(tc, a_stopped_container_is_replaced_with_its_files);
	tcase_add_test(tc, who_may_use_a_users_file);
	tcase_add_test(tc, deleted_inputs_are_named_after_a_complete_listing);
	tcase_add_test(tc, a_call_naming_no_user_works_in_the_users_session);
	suite_add_tcase(s, tc);
	return s;
}
