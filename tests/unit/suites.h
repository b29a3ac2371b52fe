#ifndef CIP_TEST_SUITES_H
#define CIP_TEST_SUITES_H

#include <check.h>

Suite *suite_cfg(void);
Suite *suite_ids(void);
Suite *suite_utf8(void);
Suite *suite_demux(void);
Suite *suite_proto(void);
Suite *suite_exec_req(void);
Suite *suite_http(void);
Suite *suite_buf(void);
Suite *suite_docker_fake(void);
Suite *suite_engine_limits(void);
Suite *suite_sha256(void);
Suite *suite_db(void);
Suite *suite_metrics(void);
Suite *suite_lib(void);
Suite *suite_sessions(void);

#endif
