#include "config.h"

#include <string.h>

#include "names.h"
#include "utf8.h"

const char *
name_problem(const char *name, size_t json_len)
{
	const char *seg = name, *slash;
	size_t len = strnlen(name, json_len), n;
	int segments = 0;

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
	for (;;) {
		slash = strchr(seg, '/');
		n = slash ? (size_t)(slash - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return "must not have empty, '.' or '..' segments";
		if (++segments > NAME_MAX_SEGMENTS)
			return "must have at most 10 segments";
		if (!slash)
			return NULL;
		seg = slash + 1;
	}
}

/* files[]: {id, name} plus storage_session_id (current) or session_id (legacy). */
