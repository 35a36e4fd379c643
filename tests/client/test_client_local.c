/* libtuplekv without a cluster: configuration errors, client-side
 * validation with the seed's messages (nothing is sent), unreachable
 * endpoints (TKV_EUNAVAILABLE within the timeout, writes "not applied"),
 * async refusals, and out-of-memory on every allocation of a call's
 * build path. */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "../../common/alloc.h"
#include "testutil.h"

/* nothing listens on port 1 */
#define DEAD "127.0.0.1:1"

static struct tkv_client *dead_client(int timeout_ms)
{
    struct tkv_config cfg;
    struct tkv_client *c = NULL;
    struct tkv_err err;
    tkv_config_init(&cfg);
    cfg.endpoints = DEAD;
    cfg.timeout_ms = timeout_ms;
    TKV_OK(tkv_connect(&cfg, &c, &err), &err);
    return c;
}

static void test_config(void **state)
{
    struct tkv_config cfg;
    struct tkv_client *c = NULL;
    struct tkv_err err;
    const char *bad[] = {"",        "nohost", "host:",    ":7001",  "h:0",
                         "h:65536", "h:12x",  "a:1,,b:2", "[::1:5", " , "};
    size_t i;
    (void)state;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tkv_config_init(&cfg);
        cfg.endpoints = bad[i];
        if (bad[i][0] == '\0') {
            continue; /* "" means the default list */
        }
        TKV_FAILS(tkv_connect(&cfg, &c, &err), &err, TKV_EINVALID, "");
        assert_null(c);
    }
    tkv_config_init(&cfg);
    cfg.endpoints = " 127.0.0.1:7001 , [::1]:7002,localhost:7003";
    TKV_OK(tkv_connect(&cfg, &c, &err), &err);
    tkv_close(c);
    tkv_config_init(&cfg);
    cfg.timeout_ms = -1;
    TKV_FAILS(tkv_connect(&cfg, &c, &err), &err, TKV_EINVALID, ">= 0");
    tkv_config_init(&cfg);
    cfg.consistency = 3;
    TKV_FAILS(tkv_connect(&cfg, &c, &err), &err, TKV_EINVALID, "consistency");
    /* NULL config: $TUPLEKV_ENDPOINTS, else the default list */
    setenv("TUPLEKV_ENDPOINTS", "bad", 1);
    TKV_FAILS(tkv_connect(NULL, &c, &err), &err, TKV_EINVALID, "bad");
    unsetenv("TUPLEKV_ENDPOINTS");
    TKV_OK(tkv_connect(NULL, &c, &err), &err);
    tkv_close(c);
    tkv_close(NULL);
}

static void test_validation(void **state)
{
    struct tkv_client *c = dead_client(200);
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *k = json_pack("[ss]", "a", "b");
    json_t *v;
    char *s;
    size_t n = 1264189;
    (void)state;

    /* value size: the seed's message, before anything is sent */
    s = malloc(n);
    memset(s, 'q', n);
    v = json_stringn(s, n);
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_ETOO_LARGE,
              "Value size (1234.56 KB) exceeds the maximum allowed size of 1 "
              "MB (1024 KB)");
    json_decref(v);
    free(s);
    v = json_stringn_nocheck("a\xc3", 2);
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_ENOT_JSON,
              "Value is not JSON serializable: ");
    json_decref(v);
    v = json_true();
    TKV_FAILS(tkv_set(c, k, v, -5, NULL, NULL, &err), &err, TKV_EINVALID,
              "ttlInSeconds");
    json_decref(k);
    k = json_pack("[s]", "");
    json_decref(k);
    k = json_pack("[b]", 0);
    /* booleans are fine as key parts; this one just cannot be reached */
    TKV_FAILS(tkv_get(c, k, NULL, &it, &err), &err, TKV_EUNAVAILABLE,
              "connection refused");
    json_decref(k);
    k = json_pack("[sn]", "x");
    TKV_FAILS(tkv_get(c, k, NULL, &it, &err), &err, TKV_EINVALID, "");
    json_decref(k);
    json_decref(v);
    TKV_FAILS(tkv_get(NULL, NULL, NULL, &it, &err), &err, TKV_EINVALID,
              "client is NULL");
    tkv_close(c);
}

static void test_unreachable(void **state)
{
    struct tkv_client *c = dead_client(300);
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *k = json_pack("[s]", "k");
    json_t *v = json_integer(1);
    struct timespec t0;
    struct timespec t1;
    long ms;
    (void)state;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    TKV_FAILS(tkv_get(c, k, NULL, &it, &err), &err, TKV_EUNAVAILABLE,
              "127.0.0.1:1");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250 && ms < 2000);
    /* a write that was never sent is "not applied", not unknown */
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_EUNAVAILABLE,
              "not applied");
    json_decref(k);
    json_decref(v);
    tkv_close(c);
}

static int async_calls;
static void never_cb(void *arg,
                     int rc,
                     struct tkv_response *res,
                     const struct tkv_err *err)
{
    (void)arg;
    (void)res;
    (void)err;
    assert_int_equal(rc, TKV_ESHUTDOWN);
    async_calls++;
}

static void test_async_limits(void **state)
{
    struct tkv_config cfg;
    struct tkv_client *c = NULL;
    struct tkv_err err;
    json_t *k = json_pack("[s]", "k");
    (void)state;

    tkv_config_init(&cfg);
    cfg.endpoints = DEAD;
    cfg.timeout_ms = 60000;
    cfg.max_inflight = 2;
    TKV_OK(tkv_connect(&cfg, &c, &err), &err);
    TKV_OK(tkv_get_async(c, k, NULL, never_cb, NULL, &err), &err);
    TKV_OK(tkv_get_async(c, k, NULL, never_cb, NULL, &err), &err);
    TKV_FAILS(tkv_get_async(c, k, NULL, never_cb, NULL, &err), &err, TKV_EBUSY,
              "max_inflight");
    /* close fails the calls in flight with TKV_ESHUTDOWN */
    tkv_close(c);
    assert_int_equal(async_calls, 2);
    json_decref(k);
}

static void test_versions(void **state)
{
    char hex[17];
    uint64_t v = 0;
    (void)state;
    tkv_version_str(0x0000000700010002ull, hex);
    assert_string_equal(hex, "0000000700010002");
    assert_int_equal(tkv_version_from_str(hex, &v), 0);
    assert_int_equal(v, 0x0000000700010002ull);
    assert_int_equal(tkv_version_from_str("xyz", &v), TKV_EINVALID);
    assert_int_equal(tkv_version_from_str(NULL, &v), TKV_EINVALID);
    assert_string_equal(tkv_errname(TKV_EUNKNOWN), "UNKNOWN");
    assert_string_equal(tkv_strerror(TKV_ECONFLICT),
                        "transaction check failed");
}

static void test_atomic_local(void **state)
{
    struct tkv_client *c = dead_client(200);
    struct tkv_atomic *a = tkv_atomic_new();
    struct tkv_err err;
    json_t *k = json_pack("[s]", "k");
    json_t *v = json_true();
    int i;
    (void)state;

    TKV_FAILS(tkv_atomic_commit(c, a, NULL, NULL, NULL, &err), &err,
              TKV_EINVALID, "at least one mutation");
    for (i = 0; i < 1000; i++) {
        TKV_OK(tkv_atomic_set(a, k, v, 0, &err), &err);
    }
    TKV_FAILS(tkv_atomic_delete(a, k, &err), &err, TKV_EINVALID,
              "at most 1000 mutations");
    tkv_atomic_free(a);
    a = tkv_atomic_new();
    for (i = 0; i < 1000; i++) {
        TKV_OK(tkv_atomic_check(a, k, 0, &err), &err);
    }
    TKV_FAILS(tkv_atomic_check(a, k, 0, &err), &err, TKV_EINVALID,
              "at most 1000 checks");
    tkv_atomic_free(a);
    tkv_atomic_free(NULL);
    json_decref(k);
    json_decref(v);
    tkv_close(c);
}

/* Fail the Nth allocation of the batch builder (which runs in the
 * caller's thread only: the failure hook is not thread safe), for every N:
 * each must come back as an error code, never a crash or a leak. */
static void test_alloc_failures(void **state)
{
    json_t *k = json_pack("[ss]", "a", "b");
    json_t *v = json_pack("{s[iii]}", "x", 1, 2, 3);
    long n;
    int succeeded = 0;
    (void)state;

    for (n = 0; n < 40; n++) {
        struct tkv_err err;
        struct tkv_atomic *a;
        int rv = TKV_ENOMEM;
        tkv_alloc_fail_after(n);
        a = tkv_atomic_new();
        if (a != NULL) {
            rv = tkv_atomic_set(a, k, v, 0, &err);
            if (rv == 0) {
                rv = tkv_atomic_check(a, k, 7, &err);
            }
            if (rv == 0) {
                rv = tkv_atomic_delete(a, k, &err);
            }
            tkv_atomic_free(a);
        }
        tkv_alloc_fail_reset();
        assert_true(rv == 0 || rv == TKV_ENOMEM);
        succeeded += rv == 0;
    }
    assert_true(succeeded > 0);
    json_decref(k);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_async_limits),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_atomic_local),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
