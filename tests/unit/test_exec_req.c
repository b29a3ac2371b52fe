#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "exec_req.h"
#include "ptc.h"
#include "suites.h"

static struct exec_req *
ok(const char *body)
{
	struct exec_req *r = NULL;
	char err[512] = "";

	ck_assert_msg(exec_req_parse(body, strlen(body), &r, err, sizeof(err)) == 0,
	    "refused %s: %s", body, err);
	return r;
}

static void
refused(const char *body, const char *needle)
{
	struct exec_req *r = NULL;
	char err[512] = "";

	ck_assert_int_eq(exec_req_parse(body, strlen(body), &r, err, sizeof(err)), -1);
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(err, needle), "for %s: %s", body, err);
}

START_TEST(an_unknown_language_parses_for_the_model_to_be_told)
{
	struct exec_req *r = ok("{\"lang\":\"cobol\",\"code\":\"x\",\"session_id\":\"s\"}");

	ck_assert_ptr_null(r->lang);
	ck_assert_str_eq(r->unknown_lang, "cobol");
	ck_assert_str_eq(r->session_id, "s");
	exec_req_free(r);
}
END_TEST

START_TEST(timeout_is_milliseconds_floored_at_a_second)
{
	struct exec_req *r = ok("{\"lang\":\"py\",\"code\":\"x\",\"timeout\":5000}");

	ck_assert_int_eq(r->timeout_ms, 5000);
	exec_req_free(r);
	r = ok("{\"lang\":\"py\",\"code\":\"x\",\"timeout\":12.5}");
	ck_assert_int_eq(r->timeout_ms, 1000);
	exec_req_free(r);
	r = ok("{\"lang\":\"py\",\"code\":\"x\",\"timeout\":-3}");
	ck_assert_int_eq(r->timeout_ms, 0);
	exec_req_free(r);
	r = ok("{\"lang\":\"py\",\"code\":\"x\",\"timeout\":null}");
	ck_assert_int_eq(r->timeout_ms, 0);
	exec_req_free(r);
	refused("{\"lang\":\"py\",\"code\":\"x\",\"timeout\":\"soon\"}", "timeout must be");
}
END_TEST

START_TEST(ptc_tool_names_follow_the_contracts_rules)
{
	static const char *const cases[][3] = {
		/* lang, name, as the program calls it */
		{ "py", "get-weather now", "get_weather_now" }, { "py", "class", "class_tool" },
		{ "py", "1st", "_1st" }, { "py", "a.b!c", "abc" }, { "py", "await", "await_tool" },
		{ "bash", "mcp.server tool", "mcp_server_tool" }, { "bash", "done", "done_tool" },
		{ "bash", "9lives", "_9lives" }, { "bash", "a.b!c", "a_bc" }, { "py", "x_y", "x_y" },
	};
	char out[160];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(ptc_tool_name(cases[i][0], cases[i][1], out, sizeof(out)), 0);
		ck_assert_msg(strcmp(out, cases[i][2]) == 0, "%s %s: %s", cases[i][0], cases[i][1], out);
	}
	ck_assert_int_eq(ptc_tool_name("py", "!!!", out, sizeof(out)), -1);
	ck_assert_int_eq(ptc_tool_name("py", "", out, sizeof(out)), -1);
}
END_TEST

START_TEST(minimal_and_full)
{
	struct exec_req *r = ok("{\"lang\":\"py\",\"code\":\"print(1)\"}");

	ck_assert_str_eq(r->lang->id, "py");
	ck_assert_str_eq(r->code, "print(1)");
	ck_assert_uint_eq(r->nargs, 0);
	ck_assert_ptr_null(r->session_id);
	exec_req_free(r);

	r = ok("{\"lang\":\"Python\",\"code\":\"x\",\"args\":[\"a\",2,true],\"session_id\":\"s\","
	    "\"runtime_session_hint\":\"h\",\"user_id\":\"u\",\"timeout\":5000,"
	    "\"LIBRECHAT_CODE_API_KEY\":\"k\",\"unknown\":{\"deep\":[1,2]},"
	    "\"files\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaa\",\"name\":\"in.csv\",\"session_id\":\"b1bbbbbbbbbbbbbbbbbbb\"},"
	    "{\"id\":\"ccccccccccccccccccccc\",\"name\":\"d/x.txt\",\"storage_session_id\":\"b2bbbbbbbbbbbbbbbbbbb\",\"kind\":\"user\","
	    "\"resource_id\":\"665f\",\"entity_id\":\"e\"}]}");
	ck_assert_str_eq(r->lang->id, "py");
	ck_assert_uint_eq(r->nargs, 3);
	ck_assert_str_eq(r->args[1], "2");
	ck_assert_str_eq(r->args[2], "true");
	ck_assert_str_eq(r->session_id, "s");
	ck_assert_str_eq(r->hint, "h");
	ck_assert_str_eq(r->user_id, "u");
	ck_assert_uint_eq(r->nfiles, 2);
	ck_assert_str_eq(r->files[0].bucket, "b1bbbbbbbbbbbbbbbbbbb");
	ck_assert_str_eq(r->files[1].bucket, "b2bbbbbbbbbbbbbbbbbbb");
	ck_assert_str_eq(r->files[1].name, "d/x.txt");
	exec_req_free(r);
}
END_TEST

START_TEST(aliases)
{
	static const char *const names[][2] = { { "javascript", "js" }, { "node", "js" },
	    { "JS", "js" }, { "sh", "bash" }, { "bash", "bash" }, { "python3", "py" } };
	char body[128];
	struct exec_req *r;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(body, sizeof(body), "{\"lang\":\"%s\",\"code\":\"\"}", names[i][0]);
		r = ok(body);
		ck_assert_str_eq(r->lang->id, names[i][1]);
		exec_req_free(r);
	}
}
END_TEST

START_TEST(thirteen_languages_and_java_files)
{
	static const char *const ids[] = { "py", "js", "ts", "c", "cpp", "java", "php", "rs", "go",
	    "d", "f90", "r", "bash" };
	static const char *const alias[][2] = { { "typescript", "ts" }, { "C++", "cpp" },
	    { "rust", "rs" }, { "golang", "go" }, { "fortran", "f90" }, { "R", "r" } };
	const struct lang *l;
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		ck_assert_ptr_nonnull(l = lang_find(ids[i]));
		ck_assert_str_eq(l->id, ids[i]);
	}
	for (i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		ck_assert_str_eq(lang_find(alias[i][0])->id, alias[i][1]);
	ck_assert_ptr_null(lang_find("cobol"));
	l = lang_find("java");
	ck_assert_str_eq(lang_file(l, "import x;\npublic final class Report_1 {", buf, sizeof(buf)),
	    "Report_1.java");
	ck_assert_str_eq(lang_file(l, "class Hidden { }", buf, sizeof(buf)), "Main.java");
	ck_assert_str_eq(lang_file(l, "public static void x(); public  class\tT$ {}", buf,
	    sizeof(buf)), "T$.java");
	ck_assert_str_eq(lang_file(lang_find("py"), "public class X", buf, sizeof(buf)), "main.py");
}
END_TEST

START_TEST(code_with_nul_keeps_its_length)
{
	struct exec_req *r = ok("{\"lang\":\"py\",\"code\":\"a\\u0000b\"}");

	ck_assert_uint_eq(r->code_len, 3);
	ck_assert_mem_eq(r->code, "a\0b", 3);
	exec_req_free(r);
}
END_TEST

START_TEST(bad_bodies)
{
	refused("", "Invalid JSON");
	refused("{", "Invalid JSON");
	refused("{\"lang\":\"py\",\"code\":\"x\"} trailing", "trailing");
	refused("[1,2]", "expected an object");
	refused("{\"code\":\"x\"}", "lang is required");
	refused("{\"lang\":\"py\"}", "code is required");
	refused("{\"lang\":\"py\",\"code\":5}", "code is required");
	refused("{\"lang\":\"py\",\"code\":\"x\",\"args\":{}}", "args must be");
	refused("{\"lang\":\"py\",\"code\":\"x\",\"args\":[[1]]}", "args[0]");
	refused("{\"lang\":\"py\",\"code\":\"x\",\"files\":[{\"id\":\"a\"}]}", "files[0]");
	refused("{\"lang\":\"py\",\"code\":\"x\",\"files\":{}}", "files must be");
}
END_TEST

static void
bad_name(const char *name_json, const char *needle)
{
	char body[1024];

	snprintf(body, sizeof(body), "{\"lang\":\"py\",\"code\":\"x\",\"files\":[{\"id\":"
	    "\"aaaaaaaaaaaaaaaaaaaaa\",\"storage_session_id\":\"bbbbbbbbbbbbbbbbbbbbb\","
	    "\"name\":%s}]}", name_json);
	refused(body, needle);
}

START_TEST(hostile_file_refs)
{
	char longname[300];

	bad_name("\"../etc/passwd\"", "files[].name must not have empty");
	bad_name("\"a/../../x\"", "files[].name must not have empty");
	bad_name("\"/etc/passwd\"", "files[].name must be relative");
	bad_name("\"a\\\\b\"", "files[].name must not contain a backslash");
	bad_name("\"a\\u0000b\"", "files[].name must not contain NUL");
	bad_name("\"a\\nb\"", "control character");
	bad_name("\"a//b\"", "files[].name must not have empty");
	bad_name("\"./a\"", "files[].name must not have empty");
	bad_name("\"\"", "1 to 256");
	bad_name("\"1/2/3/4/5/6/7/8/9/10/11\"", "at most 10 segments");
	memset(longname, 'x', sizeof(longname));
	longname[0] = '"';
	longname[sizeof(longname) - 2] = '"';
	longname[sizeof(longname) - 1] = '\0';
	bad_name(longname, "1 to 256");
	refused("{\"lang\":\"py\",\"code\":\"x\",\"files\":[{\"id\":\"../x\",\"name\":\"a\","
	    "\"storage_session_id\":\"bbbbbbbbbbbbbbbbbbbbb\"}]}", "21-character ids");
	refused("{\"lang\":\"py\",\"code\":\"x\",\"session_id\":7}", "must be strings");
	refused("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "Invalid JSON");
}
END_TEST

/*
 * Seen while writing fuzz_ptc: a call that is not an object, after one
 * that named a tool, was refused as a request for that tool (name was
 * left over, and uninitialized for the first call).
 */
START_TEST(a_malformed_call_is_not_blamed_on_the_call_before)
{
	struct ptc_tool t = { "get_weather", "get_weather" };
	struct json_object *calls;
	char err[256] = "";

	calls = ptc_calls_parse(&t, 1, "{\"calls\":[{\"id\":\"1\",\"name\":\"get_weather\"},5]}", 0,
	    err, sizeof(err));
	ck_assert(calls == NULL);
	ck_assert_str_eq(err, "Sandbox requested an unregistered tool: ?");
	calls = ptc_calls_parse(&t, 1, "{\"calls\":[{\"id\":\"1\",\"name\":\"get_weather\"}]}", 0,
	    err, sizeof(err));
	ck_assert(calls != NULL);
	json_object_put(calls);
}
END_TEST

Suite *
suite_exec_req(void)
{
	Suite *s = suite_create("exec_req");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, minimal_and_full);
	tcase_add_test(tc, ptc_tool_names_follow_the_contracts_rules);
	tcase_add_test(tc, a_malformed_call_is_not_blamed_on_the_call_before);
	tcase_add_test(tc, an_unknown_language_parses_for_the_model_to_be_told);
	tcase_add_test(tc, timeout_is_milliseconds_floored_at_a_second);
	tcase_add_test(tc, aliases);
	tcase_add_test(tc, thirteen_languages_and_java_files);
	tcase_add_test(tc, code_with_nul_keeps_its_length);
	tcase_add_test(tc, bad_bodies);
	tcase_add_test(tc, hostile_file_refs);
	suite_add_tcase(s, tc);
	return s;
}
