/* The two entry points every target in tests/fuzz defines, so that one
 * target links either into libFuzzer or into the replay driver. */
#ifndef RECONCILED_FUZZ_H
#define RECONCILED_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Called once before the first input; returns 0. */
int	LLVMFuzzerInitialize(int *argc, char ***argv);
/* Runs one input; aborts when an invariant of the module breaks. Returns 0. */
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
