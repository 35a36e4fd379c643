/* tuplekvctl against a real cluster: every command and option, the JSON
 * it prints, the exit codes (0 ok, 1 refused, 2 usage, 3 unavailable,
 * 4 conflict) and the messages on stderr. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "testutil.h"

static struct tkv_tc cl;
static char out[1 << 16];
static char errout[1 << 16];
static char tmpdir[] = "/tmp/tkv-ctl-XXXXXX";

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* Run tuplekvctl with -e <cluster> (unless args start with "-e") and the
 * given arguments, stdin from `input` (may be NULL); returns the exit code,
 * stdout in `out`, stderr in `errout`. */
static int ctl_v(const char *input, const char **args)
{
    char po[300];
    char pe[300];
    char pi[300];
    const char *argv[64];
    int argc = 0;
    pid_t pid;
    int status;
    int i;

    snprintf(po, sizeof po, "%s/out", tmpdir);
    snprintf(pe, sizeof pe, "%s/err", tmpdir);
    snprintf(pi, sizeof pi, "%s/in", tmpdir);
    if (input != NULL) {
        FILE *f = fopen(pi, "w");
        fputs(input, f);
        fclose(f);
    }
    argv[argc++] = "tuplekvctl";
    if (args[0] == NULL || strcmp(args[0], "-e") != 0) {
        argv[argc++] = "-e";
        argv[argc++] = cl.endpoints;
    }
    for (i = 0; args[i] != NULL && argc < 63; i++) {
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    pid = fork();
    if (pid == 0) {
        int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open(input != NULL ? pi : "/dev/null", O_RDONLY);
        dup2(fo, 1);
        dup2(fe, 2);
        dup2(fi, 0);
        unsetenv("TUPLEKV_ENDPOINTS");
        execv(tkv_tc_bin("tuplekvctl"), (char *const *)argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    slurp(po, out, sizeof out);
    slurp(pe, errout, sizeof errout);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define CTL(input, ...) ctl_v(input, (const char *[]){__VA_ARGS__, NULL})

/* Expect an exit code and stdout equal (as JSON) to `json` when given. */
#define EXPECT(code, json, input, ...)                              \
    do {                                                            \
        int rc__ = CTL(input, __VA_ARGS__);                         \
        if (rc__ != (code)) {                                       \
            print_message(                                          \
                "line %d: exit %d (wanted %d)\nstdout: %s\n"        \
                "stderr: %s\n",                                     \
                __LINE__, rc__, (code), out, errout);               \
        }                                                           \
        assert_int_equal(rc__, (code));                             \
        if ((json) != NULL) {                                       \
            json_t *got__ = json_loads(out, JSON_DECODE_ANY, NULL); \
            assert_non_null(got__);                                 \
            assert_json_text(got__, (json));                        \
            json_decref(got__);                                     \
        }                                                           \
    } while (0)

static json_t *out_json(void)
{
    json_t *j = json_loads(out, JSON_DECODE_ANY, NULL);
    if (j == NULL) {
        print_message("not JSON: '%s'\n", out);
    }
    assert_non_null(j);
    /* exactly one document and a newline */
    assert_int_equal(out[strlen(out) - 1], '\n');
    return j;
}

static const char *version_of(json_t *doc, char buf[17])
{
    const char *v = json_string_value(json_object_get(doc, "version"));
    assert_non_null(v);
    assert_int_equal(strlen(v), 16);
    assert_int_equal(strspn(v, "0123456789abcdef"), 16);
    memcpy(buf, v, 17);
    return buf;
}

static void test_set_get_delete(void **state)
{
    json_t *doc;
    char ver[17];
    char expect[256];
    int i;
    (void)state;

    EXPECT(0, NULL, NULL, "set", "[\"notes\",\"1\"]",
           "{\"title\":\"My note\",\"content\":\"Note content here\"}");
    doc = out_json();
    assert_json_text(json_object_get(doc, "key"), "[\"notes\",\"1\"]");
    version_of(doc, ver);
    json_decref(doc);
    snprintf(expect, sizeof expect,
             "{\"key\":[\"notes\",\"1\"],\"value\":{\"title\":\"My note\","
             "\"content\":\"Note content here\"},\"version\":\"%s\"}",
             ver);
    EXPECT(0, expect, NULL, "get", "[\"notes\",\"1\"]");
    /* an eventual read may be served by a follower that has not applied
     * the write yet: it learns the commit index with the next heartbeat
     * (the strong read before confirms leadership without a log write, so
     * it does not carry the commit to the followers) */
    for (i = 0; i < 50; i++) {
        assert_int_equal(CTL(NULL, "--eventual", "get", "[\"notes\",\"1\"]"),
                         0);
        if (strcmp(out, "null\n") != 0) {
            break;
        }
        usleep(100000);
    }
    doc = out_json();
    assert_json_text(doc, expect);
    json_decref(doc);
    EXPECT(0, "null", NULL, "get", "[\"notes\",\"missing\"]");
    EXPECT(0, NULL, NULL, "get-many", "[\"notes\",\"1\"]",
           "[\"notes\",\"missing\"]", "[\"notes\",\"1\"]");
    doc = out_json();
    assert_int_equal(json_array_size(doc), 3);
    assert_true(json_is_null(json_array_get(doc, 1)));
    assert_json_eq(json_array_get(doc, 0), json_array_get(doc, 2));
    json_decref(doc);
    EXPECT(0, "null", NULL, "delete", "[\"notes\",\"1\"]");
    EXPECT(0, "null", NULL, "delete", "[\"notes\",\"1\"]");
    EXPECT(0, "null", NULL, "get", "[\"notes\",\"1\"]");
    /* scalars and numbers in keys */
    EXPECT(0, NULL, NULL, "set", "[\"items\",42,true]", "3.5");
    EXPECT(0, NULL, NULL, "get", "[\"items\",42,true]");
    doc = out_json();
    assert_json_text(json_object_get(doc, "value"), "3.5");
    json_decref(doc);
}

static void test_ttl(void **state)
{
    int i;
    (void)state;
    EXPECT(0, NULL, NULL, "set", "[\"cache\",\"w\"]", "{\"t\":1}", "--ttl",
           "1");
    EXPECT(0, NULL, NULL, "set", "--ttl=0.5", "[\"cache\",\"x\"]", "1");
    for (i = 0; i < 40; i++) {
        CTL(NULL, "get", "[\"cache\",\"w\"]");
        if (strcmp(out, "null\n") == 0) {
            break;
        }
        usleep(100000);
    }
    assert_string_equal(out, "null\n");
    EXPECT(2, NULL, NULL, "set", "[\"c\"]", "1", "--ttl", "-3");
    assert_non_null(strstr(errout, "--ttl must be a positive number"));
    EXPECT(2, NULL, NULL, "set", "[\"c\"]", "1", "--ttl");
}

static void test_list(void **state)
{
    json_t *doc;
    char cursor[512];
    int i;
    (void)state;

    for (i = 1; i <= 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "[\"ln\",\"note-%03d\"]", i);
        EXPECT(0, NULL, NULL, "set", key, "{}");
    }
    EXPECT(0, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--limit", "2");
    doc = out_json();
    assert_int_equal(json_array_size(json_object_get(doc, "items")), 2);
    assert_int_equal(json_integer_value(json_object_get(doc, "total")), 5);
    assert_true(json_is_string(json_object_get(doc, "cursor")));
    snprintf(cursor, sizeof cursor, "%s",
             json_string_value(json_object_get(doc, "cursor")));
    json_decref(doc);
    EXPECT(0, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--limit", "2",
           "--cursor", cursor);
    doc = out_json();
    assert_json_text(
        json_object_get(json_array_get(json_object_get(doc, "items"), 0),
                        "key"),
        "[\"ln\",\"note-003\"]");
    json_decref(doc);
    EXPECT(0, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--reverse",
           "--limit=1");
    doc = out_json();
    assert_json_text(
        json_object_get(json_array_get(json_object_get(doc, "items"), 0),
                        "key"),
        "[\"ln\",\"note-005\"]");
    json_decref(doc);
    EXPECT(0, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--start",
           "[\"ln\",\"note-002\"]", "--end", "[\"ln\",\"note-004\"]");
    doc = out_json();
    assert_int_equal(json_integer_value(json_object_get(doc, "total")), 2);
    assert_true(json_is_null(json_object_get(doc, "cursor")));
    json_decref(doc);
    EXPECT(0, NULL, NULL, "--eventual", "list", "--start", "[\"ln\"]", "--end",
           "[\"lo\"]");
    /* errors */
    EXPECT(1, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--cursor",
           "garbage");
    assert_non_null(strstr(errout, "cursor"));
    EXPECT(2, NULL, NULL, "list");
    EXPECT(2, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--limit", "0");
    EXPECT(2, NULL, NULL, "list", "--prefix", "[\"ln\"]", "--limit", "1001");
    EXPECT(2, NULL, NULL, "list", "--bogus");
}

static void test_atomic(void **state)
{
    char path[300];
    char doc[512];
    json_t *j;
    char ver[17];
    FILE *f;
    (void)state;

    EXPECT(0, NULL, NULL, "set", "[\"acct\",\"a\"]", "{\"balance\":10}");
    j = out_json();
    version_of(j, ver);
    json_decref(j);
    snprintf(doc, sizeof doc,
             "{\"checks\":[{\"key\":[\"acct\",\"a\"],\"version\":\"%s\"},"
             "{\"key\":[\"acct\",\"b\"],\"version\":null}],"
             "\"mutations\":[{\"type\":\"set\",\"key\":[\"acct\",\"a\"],"
             "\"value\":{\"balance\":5}},{\"type\":\"set\",\"key\":"
             "[\"acct\",\"b\"],\"value\":{\"balance\":5},\"ttl\":600},"
             "{\"type\":\"delete\",\"key\":[\"acct\",\"gone\"]}]}",
             ver);
    snprintf(path, sizeof path, "%s/atomic.json", tmpdir);
    f = fopen(path, "w");
    fputs(doc, f);
    fclose(f);
    EXPECT(0, NULL, NULL, "atomic", path);
    j = out_json();
    assert_true(json_is_true(json_object_get(j, "ok")));
    version_of(j, ver);
    json_decref(j);
    /* the same again from stdin: the checks fail now */
    EXPECT(4, "{\"ok\":false,\"conflict\":[\"acct\",\"a\"]}", doc, "atomic",
           "-");
    /* bad documents */
    EXPECT(1, NULL, "{\"mutations\":[]}", "atomic", "-");
    assert_non_null(strstr(errout, "non-empty"));
    EXPECT(1, NULL, "{\"mutations\":[{\"type\":\"put\",\"key\":[\"a\"]}]}",
           "atomic", "-");
    assert_non_null(strstr(errout, "\"set\" or \"delete\""));
    EXPECT(1, NULL,
           "{\"checks\":[{\"key\":[\"a\"],\"version\":\"xyz\"}],"
           "\"mutations\":[{\"type\":\"delete\",\"key\":[\"a\"]}]}",
           "atomic", "-");
    assert_non_null(strstr(errout, "16 hex"));
    EXPECT(1, NULL, "not json", "atomic", "-");
    EXPECT(1, NULL, NULL, "atomic", "/nonexistent/file.json");
    EXPECT(2, NULL, NULL, "atomic");
}

static void test_refusals(void **state)
{
    char path[300];
    FILE *f;
    size_t i;
    (void)state;

    EXPECT(1, NULL, NULL, "get", "notes");
    assert_non_null(strstr(errout, "KEY is not JSON text"));
    EXPECT(1, NULL, NULL, "get", "[]");
    EXPECT(1, NULL, NULL, "get", "[{\"a\":1}]");
    assert_non_null(strstr(errout, "part"));
    EXPECT(1, NULL, NULL, "set", "[\"a\"]", "{bad json");
    assert_non_null(strstr(errout, "VALUE is not JSON text"));
    /* a value over 1 MB, through a file (argv cannot carry it) */
    snprintf(path, sizeof path, "%s/big.json", tmpdir);
    f = fopen(path, "w");
    fputs("{\"mutations\":[{\"type\":\"set\",\"key\":[\"big\"],\"value\":\"",
          f);
    for (i = 0; i < 1264189; i++) {
        fputc('z', f);
    }
    fputs("\"}]}", f);
    fclose(f);
    EXPECT(1, NULL, NULL, "atomic", path);
    assert_non_null(strstr(errout,
                           "Value size (1234.56 KB) exceeds the maximum "
                           "allowed size of 1 MB (1024 KB)"));
}

static void test_usage(void **state)
{
    const char *cmds[] = {"set",    "get",    "get-many", "delete", "list",
                          "atomic", "status", "members",  "member", "transfer"};
    size_t i;
    (void)state;

    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        EXPECT(0, NULL, NULL, cmds[i], "--help");
        assert_non_null(strstr(out, "usage: tuplekvctl"));
    }
    EXPECT(0, NULL, NULL, "--help");
    assert_non_null(strstr(out, "exit codes"));
    EXPECT(2, NULL, NULL, "frobnicate");
    EXPECT(2, NULL, NULL, "get");
    EXPECT(2, NULL, NULL, "get", "[\"a\"]", "[\"b\"]");
    EXPECT(2, NULL, NULL, "set", "[\"a\"]");
    EXPECT(2, NULL, NULL, "--timeout", "abc", "get", "[\"a\"]");
    EXPECT(2, NULL, NULL, "--nope", "get", "[\"a\"]");
    EXPECT(2, NULL, NULL, "-e", "nonsense", "get", "[\"a\"]");
    EXPECT(2, NULL, NULL, "member", "add", "1");
    EXPECT(2, NULL, NULL, "member", "remove", "x");
    EXPECT(2, NULL, NULL, "transfer", "-1");
    assert_int_equal(ctl_v(NULL, (const char *[]){"-e", cl.endpoints, NULL}),
                     2);
}

static void test_unavailable(void **state)
{
    (void)state;
    /* 2 s: on a starved machine a shorter timeout can pass before the
     * first connect is even tried ("(no connection)", no reason) */
    EXPECT(3, NULL, NULL, "-e", "127.0.0.1:1", "--timeout", "2000", "get",
           "[\"a\"]");
    assert_non_null(strstr(errout, "connection refused"));
    EXPECT(3, NULL, NULL, "-e", "127.0.0.1:1", "--timeout", "2000", "set",
           "[\"a\"]", "1");
    assert_non_null(strstr(errout, "not applied"));
}

static void test_admin(void **state)
{
    json_t *doc;
    char eps[300];
    size_t i;
    int leaders = 0;
    (void)state;

    EXPECT(0, NULL, NULL, "status");
    doc = out_json();
    assert_int_equal(json_array_size(doc), 3);
    for (i = 0; i < 3; i++) {
        json_t *o = json_array_get(doc, i);
        const char *fields[] = {
            "id",     "endpoint",     "role",          "term",
            "leader", "commit_index", "applied_index", "keys"};
        size_t f;
        for (f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            assert_non_null(json_object_get(o, fields[f]));
        }
        leaders += strcmp(json_string_value(json_object_get(o, "role")),
                          "leader") == 0;
    }
    assert_int_equal(leaders, 1);
    json_decref(doc);
    snprintf(eps, sizeof eps, "%.250s,127.0.0.1:1", cl.endpoints);
    EXPECT(0, NULL, NULL, "-e", eps, "status");
    doc = out_json();
    assert_int_equal(json_array_size(doc), 4);
    assert_non_null(json_object_get(json_array_get(doc, 3), "error"));
    json_decref(doc);
    EXPECT(3, NULL, NULL, "-e", "127.0.0.1:1", "status");

    EXPECT(0, NULL, NULL, "members");
    doc = out_json();
    assert_int_equal(json_array_size(doc), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(doc, 0), "role")),
        "voter");
    json_decref(doc);

    EXPECT(0, "null", NULL, "transfer");
    /* the cluster keeps working under its new leader */
    EXPECT(0, NULL, NULL, "--timeout", "10000", "set", "[\"after\"]", "1");
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    return tkv_test_cluster_start(&cl, 3, TKV_TEST_PORT);
}

static int teardown(void **state)
{
    char cmd[300];
    int rv;
    (void)state;
    rv = tkv_tc_destroy(&cl);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? rv : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_delete), cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_list),           cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_refusals),       cmocka_unit_test(test_usage),
        cmocka_unit_test(test_unavailable),    cmocka_unit_test(test_admin),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, teardown));
}
