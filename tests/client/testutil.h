/* Small helpers shared by the client tests (cmocka). */
#ifndef TKV_TEST_UTIL_H
#define TKV_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tuplekv.h"

/* Assert a library call returned 0, printing its message if not. */
#define TKV_OK(call, err)                                                     \
    do {                                                                      \
        int rv__ = (call);                                                    \
        if (rv__ != 0) {                                                      \
            print_message("%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call, \
                          tkv_errname(rv__), (err)->msg);                     \
        }                                                                     \
        assert_int_equal(rv__, 0);                                            \
    } while (0)

/* Assert a call failed with code and a message containing `text`. */
#define TKV_FAILS(call, err, code, text)                                \
    do {                                                                \
        int rv__ = (call);                                              \
        if (rv__ != (code) || strstr((err)->msg, (text)) == NULL) {     \
            print_message("%s:%d: %s -> %s: '%s' (wanted %s, '%s')\n",  \
                          __FILE__, __LINE__, #call, tkv_errname(rv__), \
                          (err)->msg, tkv_errname(code), (text));       \
        }                                                               \
        assert_int_equal(rv__, (code));                                 \
        assert_non_null(strstr((err)->msg, (text)));                    \
    } while (0)

/* A key from a format, e.g. K("[ss]", "notes", "a"); new reference. */
#define K(...) json_pack(__VA_ARGS__)

/* JSON equality with a readable failure. */
static inline void assert_json_eq(const json_t *a, const json_t *b)
{
    if (!json_equal(a, b)) {
        char *sa = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
        char *sb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
        print_message("json differs: %s != %s\n", sa ? sa : "NULL",
                      sb ? sb : "NULL");
        free(sa);
        free(sb);
        fail();
    }
}

/* assert_json_eq against JSON text. */
static inline void assert_json_text(const json_t *a, const char *text)
{
    json_t *b = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(b);
    assert_json_eq(a, b);
    json_decref(b);
}

#endif /* TKV_TEST_UTIL_H */
