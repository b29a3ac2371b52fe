#include "config.h"

#include <string.h>

#include "names.h"
#include "relpath.h"
#include "utf8.h"

const char *
name_problem(const char *name, size_t json_len)
{
	size_t len = strnlen(name, json_len), n;

	if (len != json_len)
		return "must not contain NUL";
	if (len == 0 || len > NAME_MAX_LEN)
		return "must be 1 to 256 bytes long";
	if (name[0] == '/')
		return "must be relative to /mnt/data";
	if (!utf8_valid(name, len))
		return "must be UTF-8";
	for (n = 0; n < len; n++)
		if (name[n] == '\\' || (unsigned char)name[n] < 0x20 || name[n] == 0x7f)
			return "must not contain a backslash or a control character";
	if (!(n = relpath_segments(name, len)))
		return "must not have empty, '.' or '..' segments";
	if (n > NAME_MAX_SEGMENTS)
		return "must have at most 10 segments";
	return NULL;
}


/* files[]: {id, name} plus storage_session_id (current) or session_id (legacy). */
