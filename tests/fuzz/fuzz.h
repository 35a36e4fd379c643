/* Shared by the libFuzzer targets: a property that must hold; abort() makes
 * libFuzzer keep the input as a crash. */
#ifndef TKV_FUZZ_H
#define TKV_FUZZ_H

#include <stdlib.h>

#define REQUIRE(c)   \
    do {             \
        if (!(c)) {  \
            abort(); \
        }            \
    } while (0)

#endif /* TKV_FUZZ_H */
