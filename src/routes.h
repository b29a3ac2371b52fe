/* The API's routes: handlers that parse, call sessions/, and shape replies. */
#ifndef CIP_ROUTES_H
#define CIP_ROUTES_H

#include <stddef.h>

#include "http.h"

struct blobs;
struct cfg;
struct db;
struct sessions;

/* What every handler gets as its app pointer. */
struct app {
	const struct cfg *cfg;
	struct sessions *sessions;
	struct db *db;		/* file metadata, for the file routes */
	struct blobs *blobs;	/* file contents */
};

extern const struct http_route routes[];
extern const size_t nroutes;

#endif
