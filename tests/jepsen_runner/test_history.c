/* The history writer: one line per call, valid JSON, indexes 0, 1, 2, ...
 * in line order even with many writing threads, nemesis lines named
 * "nemesis", extra fields merged, nemesis_clock on client lines only. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "jepsen/runner/history.h"

#define THREADS 8
#define PER_THREAD 500

/* the runner's clock (main.c), for history.c */
int64_t tkvj_now_ns(void);
int64_t tkvj_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct tkvj_history hist;
static atomic_int clock_flag;

static void *writer(void *arg)
{
    int64_t p = (int64_t)(intptr_t)arg;
    int i;
    for (i = 0; i < PER_THREAD; i++) {
        json_t *v = json_pack("{sI si}", "p", (json_int_t)p, "i", i);
        tkvj_history_write(&hist, p, "invoke", "write", v, NULL);
        tkvj_history_write(&hist, p, i % 3 ? "ok" : "info", "write", v,
                           NULL);
        json_decref(v);
    }
    return NULL;
}

static void test_concurrent_lines(void **state)
{
    char path[] = "/tmp/tkvj-history-XXXXXX";
    pthread_t th[THREADS];
    int fd = mkstemp(path);
    FILE *f;
    char line[1024];
    int64_t expect = 0, i;
    int64_t last[THREADS];
    (void)state;

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tkvj_history_open(&hist, path), 0);
    hist.mark_clock = 1;
    hist.clock = &clock_flag;
    for (i = 0; i < THREADS; i++) {
        last[i] = -1;
        pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(hist.lines[0], THREADS * PER_THREAD);
    tkvj_history_close(&hist);

    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        int64_t p, k;
        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "index")),
                         expect++);
        p = json_integer_value(json_object_get(o, "process"));
        k = json_integer_value(
            json_object_get(json_object_get(o, "value"), "i"));
        /* per process: invoke, completion, invoke, ... in order */
        if (strcmp(json_string_value(json_object_get(o, "type")),
                   "invoke") == 0) {
            assert_int_equal(k, last[p] + 1);
            last[p] = k;
        } else {
            assert_int_equal(k, last[p]);
        }
        assert_true(json_is_false(json_object_get(o, "nemesis_clock")));
        assert_true(json_is_integer(json_object_get(o, "time")));
        json_decref(o);
    }
    fclose(f);
    assert_int_equal(expect, 2 * THREADS * PER_THREAD);
    unlink(path);
}

static void test_nemesis_and_extra(void **state)
{
    char path[] = "/tmp/tkvj-history-XXXXXX";
    int fd = mkstemp(path);
    json_t *extra = json_pack("{ss}", "error", "UNKNOWN: lost");
    json_t *a, *b;
    json_error_t jerr;
    FILE *f;
    char line[1024];
    (void)state;

    close(fd);
    assert_int_equal(tkvj_history_open(&hist, path), 0);
    hist.mark_clock = 1;
    hist.clock = &clock_flag;
    atomic_store(&clock_flag, 1);
    tkvj_history_write(&hist, TKVJ_PROCESS_NEMESIS, "info", "start-clock",
                       NULL, NULL);
    tkvj_history_write(&hist, 3, "info", "write", NULL, extra);
    tkvj_history_close(&hist);
    json_decref(extra);

    f = fopen(path, "r");
    assert_non_null(fgets(line, sizeof line, f));
    a = json_loads(line, 0, &jerr);
    assert_non_null(fgets(line, sizeof line, f));
    b = json_loads(line, 0, &jerr);
    fclose(f);
    unlink(path);
    assert_string_equal(json_string_value(json_object_get(a, "process")),
                        "nemesis");
    assert_null(json_object_get(a, "nemesis_clock"));
    assert_true(json_is_null(json_object_get(a, "value")));
    assert_int_equal(json_integer_value(json_object_get(b, "process")), 3);
    assert_true(json_is_true(json_object_get(b, "nemesis_clock")));
    assert_string_equal(json_string_value(json_object_get(b, "error")),
                        "UNKNOWN: lost");
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_lines),
        cmocka_unit_test(test_nemesis_and_extra),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
