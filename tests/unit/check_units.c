/* All unit suites in one runner; Check prints its summary line at the end. */
#include "config.h"

#include <stdlib.h>

#include "log.h"
#include "suites.h"

int
main(void)
{
	SRunner *sr = srunner_create(suite_cfg());
	int failed;

	log_setup(LOG_ERROR, LOG_TEXT);
	srunner_add_suite(sr, suite_ids());
	srunner_add_suite(sr, suite_utf8());
	srunner_add_suite(sr, suite_lib());
	srunner_add_suite(sr, suite_sessions());
	srunner_add_suite(sr, suite_demux());
	srunner_add_suite(sr, suite_proto());
	srunner_add_suite(sr, suite_exec_req());
	srunner_add_suite(sr, suite_http());
	srunner_add_suite(sr, suite_buf());
	srunner_add_suite(sr, suite_docker_fake());
	srunner_add_suite(sr, suite_engine_limits());
	srunner_add_suite(sr, suite_sha256());
	srunner_add_suite(sr, suite_db());
	srunner_add_suite(sr, suite_metrics());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
