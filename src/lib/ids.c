#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "ids.h"

static const char id_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

int
id_new(char out[ID_LEN + 1])
{
	unsigned char rnd[ID_LEN];
	size_t got = 0;
	ssize_t n;
	int i;

	while (got < sizeof(rnd)) {
		n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	/* 64 symbols: the low 6 bits of a random byte are uniform. */
	for (i = 0; i < ID_LEN; i++)
		out[i] = id_alphabet[rnd[i] & 63];
	out[ID_LEN] = '\0';
	return 0;
}

int
id_valid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != ID_LEN)
		return 0;
	for (i = 0; i < ID_LEN; i++)
		if (!memchr(id_alphabet, s[i], sizeof(id_alphabet) - 1))
			return 0;
	return 1;
}
