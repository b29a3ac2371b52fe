/*
 * What every libFuzzer target of tests/fuzz shares: the entry point's
 * prototype (the warnings want one) and an assertion that holds in every
 * build, NDEBUG or not, and aborts so libFuzzer keeps the input.
 */
#ifndef CIP_FUZZ_H
#define CIP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

#endif
