#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lang.h"

#define A(...) (const char *const[]){ __VA_ARGS__, NULL }
/*
 * Compiled languages build into /tmp (a tmpfs with exec) and run the result
 * with the user's arguments: sh passes them on as "$@".  A failed build
 * stops there with the compiler's own exit status and messages on stderr;
 * the build counts inside the run's timeout.  Optimisation is off: the
 * programs are small and a fast build matters more.
 */
#define BUILD_RUN(cmd) A("/bin/sh", "-c", cmd " && exec /tmp/cip-main \"$@\"", "main")

static const struct lang langs[] = {
	{ "py", A("python", "python3", "py3"), "main.py", A("python3", "{file}") },
	{ "js", A("javascript", "node", "nodejs"), "index.js", A("node", "{file}") },
	{ "ts", A("typescript"), "main.ts", A("node", "/opt/cip/ts/run-ts.js", "{file}") },
	{ "bash", A("sh", "shell"), "script.sh", A("bash", "{file}") },
	{ "c", A("gcc"), "main.c",
	  BUILD_RUN("gcc -O0 -o /tmp/cip-main main.c -lm") },
	{ "cpp", A("c++", "cxx", "g++"), "main.cpp",
	  BUILD_RUN("g++ -O0 -o /tmp/cip-main main.cpp") },
	{ "java", NULL, "Main.java", A("java", "-Xss8m", "{file}") },
	{ "php", NULL, "main.php", A("php", "{file}") },
	{ "rs", A("rust"), "main.rs",
	  BUILD_RUN("rustc --edition 2021 -C opt-level=0 -o /tmp/cip-main main.rs") },
	{ "go", A("golang"), "main.go",
	  BUILD_RUN("go build -o /tmp/cip-main main.go") },
	{ "d", A("dlang"), "main.d",
	  BUILD_RUN("gdc -O0 -o /tmp/cip-main main.d") },
	{ "f90", A("fortran", "f95", "f03"), "main.f90",
	  BUILD_RUN("gfortran -O0 -o /tmp/cip-main main.f90") },
	{ "r", A("rscript"), "main.r", A("Rscript", "{file}") },
};

const struct lang *
lang_all(size_t *n)
{
	*n = sizeof(langs) / sizeof(langs[0]);
	return langs;
}

const struct lang *
lang_find(const char *name)
{
	size_t i, j;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(langs) / sizeof(langs[0]); i++) {
		if (strcasecmp(name, langs[i].id) == 0)
			return &langs[i];
		for (j = 0; langs[i].aliases && langs[i].aliases[j]; j++)
			if (strcasecmp(name, langs[i].aliases[j]) == 0)
				return &langs[i];
	}
	return NULL;
}

/* The name of Java's public top-level class in code, if any. */
static int
java_public_class(const char *code, char *out, size_t cap)
{
	const char *p = code, *q;
	size_t n;

	while ((p = strstr(p, "public"))) {
		q = p + 6;
		p = q;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		while (!strncmp(q, "final", 5) || !strncmp(q, "abstract", 8)) {
			q += q[0] == 'f' ? 5 : 8;
			while (*q == ' ' || *q == '\t' || *q == '\n')
				q++;
		}
		if (strncmp(q, "class", 5) != 0 || !strchr(" \t\n\r", q[5]))
			continue;
		q += 5;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		for (n = 0; (q[n] >= 'A' && q[n] <= 'Z') || (q[n] >= 'a' && q[n] <= 'z') ||
		    (q[n] >= '0' && q[n] <= '9') || q[n] == '_' || q[n] == '$'; n++)
			;
		if (n == 0 || n + 6 > cap)
			return 0;
		memcpy(out, q, n);
		strcpy(out + n, ".java");
		return 1;
	}
	return 0;
}

void
lang_names(char *out, size_t cap)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(langs) / sizeof(langs[0]) && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", langs[i].id);
}

const char *
lang_file(const struct lang *l, const char *code, char *buf, size_t cap)
{
	/* javac wants a public class in a file of its name; the launcher runs it. */
	if (strcmp(l->id, "java") == 0 && java_public_class(code, buf, cap))
		return buf;
	return l->file;
}
