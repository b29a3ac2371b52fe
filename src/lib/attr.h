/*
 * Compiler attributes shared by every layer.  CIP_MUST_CHECK marks a write
 * whose failure must not pass for success: ignoring its result is a build
 * warning (an error under -Werror).
 */
#ifndef CIP_ATTR_H
#define CIP_ATTR_H

#define CIP_MUST_CHECK __attribute__((warn_unused_result))

#endif
