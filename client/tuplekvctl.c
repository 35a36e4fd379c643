/* tuplekvctl: the command line of tuplekv, built on libtuplekv.
 *
 *   tuplekvctl [-e host:port,...] [--timeout MS] [--eventual] COMMAND ARGS
 *
 * Global options come before the command; KEY and VALUE arguments are JSON
 * text. Every command prints one JSON document and a newline on stdout;
 * errors go to stderr as "tuplekvctl: <message>". Exit codes:
 *   0 success
 *   1 refused: invalid key or value, too large, bad cursor, ... (the
 *     library's or the node's message on stderr)
 *   2 usage
 *   3 unavailable or timed out (for writes: outcome unknown)
 *   4 conflict (atomic)
 * Commands are a table (name, handler, usage, help); `--help` after any
 * command prints its help. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplekv.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNAVAILABLE 3
#define EXIT_CONFLICT 4

struct ctx {
    const char *endpoints; /* NULL: $TUPLEKV_ENDPOINTS, else the default */
    int timeout_ms;
    int eventual;
    struct tkv_client *client;
};

struct command {
    const char *name;
    int (*run)(struct ctx *x, int argc, char **argv);
    const char *usage;
    const char *help;
};

static const struct command *cmd_now;

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tuplekvctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd_now != NULL) {
        fprintf(stderr, "\nusage: tuplekvctl [global options] %s %s\n",
                cmd_now->name, cmd_now->usage);
    } else {
        fprintf(stderr, "\nrun 'tuplekvctl --help' for usage\n");
    }
    return EXIT_USAGE;
}

/* Exit code for a library error code. */
static int exit_for(int rc)
{
    switch (rc) {
        case 0:
            return 0;
        case TKV_ECONFLICT:
            return EXIT_CONFLICT;
        case TKV_EUNAVAILABLE:
        case TKV_ETIMEOUT:
        case TKV_EUNKNOWN:
        case TKV_ESHUTDOWN:
        case TKV_EBUSY:
        case TKV_EIO:
        case TKV_ENOT_LEADER:
        case TKV_EPROTO:
            return EXIT_UNAVAILABLE;
        default:
            return EXIT_REFUSED;
    }
}

static int fail(int rc, const struct tkv_err *err)
{
    fprintf(stderr, "tuplekvctl: %s\n",
            err->msg[0] != '\0' ? err->msg : tkv_strerror(rc));
    return exit_for(rc);
}

/* Print a document (taking the reference) and a newline. */
static int print_doc(json_t *doc)
{
    char *s;
    if (doc == NULL) {
        fprintf(stderr, "tuplekvctl: out of memory\n");
        return EXIT_REFUSED;
    }
    s = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    if (s == NULL) {
        fprintf(stderr, "tuplekvctl: out of memory\n");
        return EXIT_REFUSED;
    }
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? 0 : EXIT_UNAVAILABLE;
}

static json_t *version_json(uint64_t v)
{
    char hex[17];
    tkv_version_str(v, hex);
    return json_string(hex);
}

static json_t *item_json(const struct tkv_item *it)
{
    if (it == NULL) {
        return json_null();
    }
    return json_pack("{sOsOso}", "key", it->key, "value", it->value, "version",
                     version_json(it->version));
}

/* Parse a JSON argument (KEY or VALUE); NULL after printing why. */
static json_t *parse_arg(const char *what, const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        fprintf(stderr,
                "tuplekvctl: %s is not JSON text: %s (at column %d)%s\n", what,
                je.text, je.column,
                strcmp(what, "VALUE") == 0
                    ? ""
                    : "; a key is a JSON array, e.g. '[\"notes\",\"1\"]'");
    }
    return j;
}

static int has_help(int argc, char **argv)
{
    int i;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
    }
    return 0;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL when not this
 * option. Sets *missing when the value is absent. */
static const char *opt_value(int argc,
                             char **argv,
                             int *i,
                             const char *name,
                             int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) {
        return NULL;
    }
    if (a[n] == '=') {
        return a + n + 1;
    }
    if (a[n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+') {
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int connect_client(struct ctx *x)
{
    struct tkv_config cfg;
    struct tkv_err err;
    int rv;

    tkv_config_init(&cfg);
    cfg.endpoints = x->endpoints;
    cfg.timeout_ms = x->timeout_ms;
    cfg.consistency = x->eventual ? TKV_EVENTUAL : TKV_STRONG;
    rv = tkv_connect(&cfg, &x->client, &err);
    if (rv != 0) {
        if (rv == TKV_EINVALID) {
            fprintf(stderr, "tuplekvctl: %s\n", err.msg);
            return EXIT_USAGE;
        }
        return fail(rv, &err);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

static int cmd_set(struct ctx *x, int argc, char **argv)
{
    json_t *key = NULL;
    json_t *value = NULL;
    const char *pos[2];
    int npos = 0;
    double ttl = 0;
    uint64_t version = 0;
    struct tkv_err err;
    int rv;
    int i;

    for (i = 0; i < argc; i++) {
        int missing = 0;
        const char *v = opt_value(argc, argv, &i, "--ttl", &missing);
        if (missing) {
            return usage_error("--ttl needs a number of seconds");
        }
        if (v != NULL) {
            char *end;
            errno = 0;
            ttl = strtod(v, &end);
            if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(ttl) ||
                ttl <= 0) {
                return usage_error(
                    "--ttl must be a positive number of "
                    "seconds, got '%s'",
                    v);
            }
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2] != '\0') {
            return usage_error("unknown option '%s'", argv[i]);
        }
        if (npos == 2) {
            return usage_error("too many arguments");
        }
        pos[npos++] = argv[i];
    }
    if (npos != 2) {
        return usage_error("set needs KEY and VALUE");
    }
    key = parse_arg("KEY", pos[0]);
    if (key == NULL) {
        return EXIT_REFUSED;
    }
    value = parse_arg("VALUE", pos[1]);
    if (value == NULL) {
        json_decref(key);
        return EXIT_REFUSED;
    }
    rv = connect_client(x);
    if (rv == 0) {
        rv = tkv_set(x->client, key, value, ttl, NULL, &version, &err);
        if (rv == 0) {
            rv = print_doc(json_pack("{sOso}", "key", key, "version",
                                     version_json(version)));
        } else {
            rv = fail(rv, &err);
        }
    }
    json_decref(key);
    json_decref(value);
    return rv;
}

static int cmd_get(struct ctx *x, int argc, char **argv)
{
    json_t *key;
    struct tkv_item *it = NULL;
    struct tkv_err err;
    int rv;

    if (argc != 1) {
        return usage_error("get needs exactly one KEY");
    }
    key = parse_arg("KEY", argv[0]);
    if (key == NULL) {
        return EXIT_REFUSED;
    }
    rv = connect_client(x);
    if (rv == 0) {
        rv = tkv_get(x->client, key, NULL, &it, &err);
        rv = rv == 0 ? print_doc(item_json(it)) : fail(rv, &err);
    }
    tkv_item_free(it);
    json_decref(key);
    return rv;
}

static int cmd_get_many(struct ctx *x, int argc, char **argv)
{
    json_t *keys;
    struct tkv_item **items = NULL;
    size_t n = 0;
    size_t i;
    struct tkv_err err;
    int rv;

    if (argc < 1) {
        return usage_error("get-many needs at least one KEY");
    }
    keys = json_array();
    for (i = 0; i < (size_t)argc; i++) {
        json_t *k = parse_arg("KEY", argv[i]);
        if (k == NULL) {
            json_decref(keys);
            return EXIT_REFUSED;
        }
        json_array_append_new(keys, k);
    }
    rv = connect_client(x);
    if (rv == 0) {
        rv = tkv_get_many(x->client, keys, NULL, &items, &n, &err);
        if (rv == 0) {
            json_t *out = json_array();
            for (i = 0; i < n; i++) {
                json_array_append_new(out, item_json(items[i]));
            }
            rv = print_doc(out);
        } else {
            rv = fail(rv, &err);
        }
    }
    tkv_items_free(items, n);
    json_decref(keys);
    return rv;
}

static int cmd_delete(struct ctx *x, int argc, char **argv)
{
    json_t *key;
    struct tkv_err err;
    int rv;

    if (argc != 1) {
        return usage_error("delete needs exactly one KEY");
    }
    key = parse_arg("KEY", argv[0]);
    if (key == NULL) {
        return EXIT_REFUSED;
    }
    rv = connect_client(x);
    if (rv == 0) {
        rv = tkv_delete(x->client, key, NULL, &err);
        rv = rv == 0 ? print_doc(json_null()) : fail(rv, &err);
    }
    json_decref(key);
    return rv;
}

static int cmd_list(struct ctx *x, int argc, char **argv)
{
    struct tkv_selector sel;
    struct tkv_list_opts lo;
    json_t *keys[3] = {NULL, NULL, NULL};
    const char *names[3] = {"--prefix", "--start", "--end"};
    struct tkv_page *page = NULL;
    struct tkv_err err;
    int rv = 0;
    int i;
    int k;

    memset(&sel, 0, sizeof sel);
    memset(&lo, 0, sizeof lo);
    for (i = 0; i < argc && rv == 0; i++) {
        int missing = 0;
        const char *v = NULL;
        for (k = 0; k < 3; k++) {
            v = opt_value(argc, argv, &i, names[k], &missing);
            if (v != NULL || missing) {
                break;
            }
        }
        if (missing) {
            rv = usage_error("%s needs a KEY", names[k]);
            break;
        }
        if (v != NULL) {
            json_decref(keys[k]);
            keys[k] = parse_arg(names[k] + 2, v);
            if (keys[k] == NULL) {
                rv = EXIT_REFUSED;
            }
            continue;
        }
        v = opt_value(argc, argv, &i, "--limit", &missing);
        if (v != NULL || missing) {
            unsigned long n;
            if (missing || parse_uint(v, 1000, &n) != 0 || n < 1) {
                rv = usage_error("--limit must be a number from 1 to 1000");
            } else {
                lo.limit = (unsigned)n;
            }
            continue;
        }
        v = opt_value(argc, argv, &i, "--cursor", &missing);
        if (v != NULL || missing) {
            if (missing) {
                rv = usage_error("--cursor needs a cursor");
            }
            lo.cursor = v;
            continue;
        }
        if (strcmp(argv[i], "--reverse") == 0) {
            lo.reverse = 1;
            continue;
        }
        rv = usage_error("unknown argument '%s'", argv[i]);
    }
    if (rv == 0 && keys[0] == NULL && keys[1] == NULL && keys[2] == NULL) {
        rv = usage_error("list needs --prefix, --start or --end");
    }
    if (rv == 0) {
        sel.prefix = keys[0];
        sel.start = keys[1];
        sel.end = keys[2];
        rv = connect_client(x);
    }
    if (rv == 0) {
        rv = tkv_list(x->client, &sel, &lo, NULL, &page, &err);
        if (rv == 0) {
            json_t *items = json_array();
            size_t j;
            for (j = 0; j < page->n; j++) {
                json_array_append_new(items, item_json(&page->items[j]));
            }
            rv = print_doc(json_pack("{sosIso}", "items", items, "total",
                                     (json_int_t)page->total, "cursor",
                                     page->cursor != NULL
                                         ? json_string(page->cursor)
                                         : json_null()));
        } else {
            rv = fail(rv, &err);
        }
    }
    tkv_page_free(page);
    for (k = 0; k < 3; k++) {
        json_decref(keys[k]);
    }
    return rv;
}

/* Fill a batch from the atomic document; EXIT_REFUSED after a message. */
static int atomic_from_doc(const json_t *doc, struct tkv_atomic *a)
{
    const json_t *checks = json_object_get(doc, "checks");
    const json_t *muts = json_object_get(doc, "mutations");
    const char *field;
    json_t *v;
    struct tkv_err err;
    size_t i;

    if (!json_is_object(doc)) {
        fprintf(stderr,
                "tuplekvctl: the atomic document must be an object "
                "with \"checks\" and \"mutations\"\n");
        return EXIT_REFUSED;
    }
    json_object_foreach((json_t *)doc, field, v)
    {
        if (strcmp(field, "checks") != 0 && strcmp(field, "mutations") != 0) {
            fprintf(stderr,
                    "tuplekvctl: unknown field \"%s\" in the atomic "
                    "document (expected \"checks\" and \"mutations\")\n",
                    field);
            return EXIT_REFUSED;
        }
    }
    if (checks != NULL && !json_is_array(checks)) {
        fprintf(stderr, "tuplekvctl: \"checks\" must be an array\n");
        return EXIT_REFUSED;
    }
    if (!json_is_array(muts) || json_array_size(muts) == 0) {
        fprintf(stderr,
                "tuplekvctl: \"mutations\" must be a non-empty array\n");
        return EXIT_REFUSED;
    }
    for (i = 0; i < json_array_size(checks); i++) {
        const json_t *c = json_array_get(checks, i);
        const json_t *key = json_object_get(c, "key");
        const json_t *ver = json_object_get(c, "version");
        uint64_t version = 0;
        if (!json_is_object(c) || key == NULL || ver == NULL ||
            json_object_size(c) != 2) {
            fprintf(stderr,
                    "tuplekvctl: checks[%zu] must be {\"key\": KEY, "
                    "\"version\": \"<16 hex digits>\" or null}\n",
                    i);
            return EXIT_REFUSED;
        }
        if (!json_is_null(ver) &&
            (!json_is_string(ver) ||
             tkv_version_from_str(json_string_value(ver), &version) != 0)) {
            fprintf(stderr,
                    "tuplekvctl: checks[%zu].version must be 16 hex digits "
                    "or null\n",
                    i);
            return EXIT_REFUSED;
        }
        if (tkv_atomic_check(a, key, version, &err) != 0) {
            fprintf(stderr, "tuplekvctl: checks[%zu].key: %s\n", i, err.msg);
            return exit_for(err.code);
        }
    }
    for (i = 0; i < json_array_size(muts); i++) {
        const json_t *m = json_array_get(muts, i);
        const char *type = json_string_value(json_object_get(m, "type"));
        const json_t *key = json_object_get(m, "key");
        int rv;
        if (!json_is_object(m) || type == NULL || key == NULL) {
            fprintf(stderr,
                    "tuplekvctl: mutations[%zu] must be {\"type\": \"set\", "
                    "\"key\": KEY, \"value\": VALUE, \"ttl\": SECONDS} or "
                    "{\"type\": \"delete\", \"key\": KEY}\n",
                    i);
            return EXIT_REFUSED;
        }
        if (strcmp(type, "set") == 0) {
            const json_t *value = json_object_get(m, "value");
            const json_t *ttl = json_object_get(m, "ttl");
            size_t expect = 3 + (ttl != NULL);
            double t = 0;
            if (value == NULL || json_object_size(m) != expect) {
                fprintf(stderr,
                        "tuplekvctl: mutations[%zu]: a set takes \"key\", "
                        "\"value\" and optionally \"ttl\"\n",
                        i);
                return EXIT_REFUSED;
            }
            if (ttl != NULL) {
                if (!json_is_number(ttl) || json_number_value(ttl) <= 0) {
                    fprintf(stderr,
                            "tuplekvctl: mutations[%zu].ttl must be a "
                            "positive number of seconds\n",
                            i);
                    return EXIT_REFUSED;
                }
                t = json_number_value(ttl);
            }
            rv = tkv_atomic_set(a, key, value, t, &err);
        } else if (strcmp(type, "delete") == 0) {
            if (json_object_size(m) != 2) {
                fprintf(stderr,
                        "tuplekvctl: mutations[%zu]: a delete takes only "
                        "\"key\"\n",
                        i);
                return EXIT_REFUSED;
            }
            rv = tkv_atomic_delete(a, key, &err);
        } else {
            fprintf(stderr,
                    "tuplekvctl: mutations[%zu].type must be \"set\" or "
                    "\"delete\", got \"%s\"\n",
                    i, type);
            return EXIT_REFUSED;
        }
        if (rv != 0) {
            fprintf(stderr, "tuplekvctl: mutations[%zu]: %s\n", i, err.msg);
            return exit_for(rv);
        }
    }
    return 0;
}

static int cmd_atomic(struct ctx *x, int argc, char **argv)
{
    json_t *doc;
    json_error_t je;
    struct tkv_atomic *a;
    json_t *conflict = NULL;
    uint64_t version = 0;
    struct tkv_err err;
    int rv;

    if (argc != 1) {
        return usage_error("atomic needs one FILE (or - for stdin)");
    }
    if (strcmp(argv[0], "-") == 0) {
        doc = json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
    } else {
        doc = json_load_file(argv[0], JSON_REJECT_DUPLICATES, &je);
    }
    if (doc == NULL) {
        fprintf(stderr, "tuplekvctl: %s: %s (line %d)\n",
                strcmp(argv[0], "-") == 0 ? "stdin" : argv[0], je.text,
                je.line);
        return EXIT_REFUSED;
    }
    a = tkv_atomic_new();
    if (a == NULL) {
        json_decref(doc);
        fprintf(stderr, "tuplekvctl: out of memory\n");
        return EXIT_REFUSED;
    }
    rv = atomic_from_doc(doc, a);
    if (rv == 0) {
        rv = connect_client(x);
    }
    if (rv == 0) {
        rv = tkv_atomic_commit(x->client, a, NULL, &version, &conflict, &err);
        if (rv == 0) {
            rv = print_doc(
                json_pack("{sbso}", "ok", 1, "version", version_json(version)));
        } else if (rv == TKV_ECONFLICT) {
            print_doc(json_pack(
                "{sbso}", "ok", 0, "conflict",
                conflict != NULL ? json_incref(conflict) : json_null()));
            rv = EXIT_CONFLICT;
        } else {
            rv = fail(rv, &err);
        }
    }
    json_decref(conflict);
    tkv_atomic_free(a);
    json_decref(doc);
    return rv;
}

static json_t *u64_json(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static int cmd_status(struct ctx *x, int argc, char **argv)
{
    const char *list = x->endpoints;
    json_t *out;
    char *copy;
    char *save = NULL;
    char *ep;
    int answered = 0;
    int asked = 0;
    int rv;

    (void)argv;
    if (argc != 0) {
        return usage_error("status takes no arguments");
    }
    if (list == NULL) {
        list = getenv("TUPLEKV_ENDPOINTS");
    }
    if (list == NULL || list[0] == '\0') {
        list = TKV_DEFAULT_ENDPOINTS;
    }
    rv = connect_client(x);
    if (rv != 0) {
        return rv;
    }
    out = json_array();
    copy = strdup(list);
    if (out == NULL || copy == NULL) {
        free(copy);
        json_decref(out);
        fprintf(stderr, "tuplekvctl: out of memory\n");
        return EXIT_REFUSED;
    }
    for (ep = strtok_r(copy, ",", &save); ep != NULL;
         ep = strtok_r(NULL, ",", &save)) {
        struct tkv_node_status *st = NULL;
        struct tkv_err err;
        json_t *o;
        while (*ep == ' ') {
            ep++;
        }
        asked++;
        if (tkv_node_status(x->client, ep, NULL, &st, &err) != 0) {
            json_array_append_new(
                out, json_pack("{ssss}", "endpoint", ep, "error", err.msg));
            continue;
        }
        answered++;
        o = json_object();
        json_object_set_new(o, "id", u64_json(st->node_id));
        json_object_set_new(o, "endpoint", json_string(ep));
        json_object_set_new(o, "role", json_string(st->role));
        json_object_set_new(o, "term", u64_json(st->term));
        json_object_set_new(
            o, "leader",
            st->leader_id != 0 ? u64_json(st->leader_id) : json_null());
        json_object_set_new(o, "leader_address",
                            st->leader_address != NULL
                                ? json_string(st->leader_address)
                                : json_null());
        json_object_set_new(o, "commit_index", u64_json(st->commit_index));
        json_object_set_new(o, "applied_index", u64_json(st->applied_index));
        json_object_set_new(o, "keys", u64_json(st->keys));
        json_array_append_new(out, o);
        tkv_node_status_free(st);
    }
    free(copy);
    rv = print_doc(out);
    if (rv == 0 && answered == 0 && asked > 0) {
        rv = EXIT_UNAVAILABLE;
    }
    return rv;
}

static int cmd_members(struct ctx *x, int argc, char **argv)
{
    struct tkv_member_info *m = NULL;
    size_t n = 0;
    size_t i;
    struct tkv_err err;
    json_t *out;
    int rv;

    (void)argv;
    if (argc != 0) {
        return usage_error("members takes no arguments");
    }
    rv = connect_client(x);
    if (rv != 0) {
        return rv;
    }
    rv = tkv_members(x->client, NULL, &m, &n, &err);
    if (rv != 0) {
        return fail(rv, &err);
    }
    out = json_array();
    for (i = 0; i < n; i++) {
        json_array_append_new(
            out,
            json_pack("{sosssoss}", "id", u64_json(m[i].id), "raft_address",
                      m[i].raft_address != NULL ? m[i].raft_address : "",
                      "client_address",
                      m[i].client_address != NULL
                          ? json_string(m[i].client_address)
                          : json_null(),
                      "role", m[i].role != NULL ? m[i].role : ""));
    }
    tkv_members_free(m, n);
    return print_doc(out);
}

static int cmd_member(struct ctx *x, int argc, char **argv)
{
    unsigned long long id;
    char *end;
    struct tkv_err err;
    int rv;

    if (argc < 1) {
        return usage_error("member needs 'add' or 'remove'");
    }
    if (strcmp(argv[0], "add") == 0      ? argc != 4
        : strcmp(argv[0], "remove") == 0 ? argc != 2
                                         : 1) {
        return usage_error(
            "expected 'member add ID RAFT_ADDR CLIENT_ADDR' "
            "or 'member remove ID'");
    }
    errno = 0;
    id = strtoull(argv[1], &end, 10);
    if (argv[1][0] == '-' || *end != '\0' || errno != 0 || id == 0) {
        return usage_error("ID must be a positive integer, got '%s'", argv[1]);
    }
    rv = connect_client(x);
    if (rv != 0) {
        return rv;
    }
    if (strcmp(argv[0], "add") == 0) {
        rv = tkv_member_add(x->client, id, argv[2], argv[3], NULL, &err);
    } else {
        rv = tkv_member_remove(x->client, id, NULL, &err);
    }
    return rv == 0 ? print_doc(json_null()) : fail(rv, &err);
}

static int cmd_transfer(struct ctx *x, int argc, char **argv)
{
    unsigned long long id = 0;
    struct tkv_err err;
    int rv;

    if (argc > 1) {
        return usage_error("transfer takes at most one ID");
    }
    if (argc == 1) {
        char *end;
        errno = 0;
        id = strtoull(argv[0], &end, 10);
        if (argv[0][0] == '-' || *end != '\0' || errno != 0) {
            return usage_error("ID must be a positive integer, got '%s'",
                               argv[0]);
        }
    }
    rv = connect_client(x);
    if (rv != 0) {
        return rv;
    }
    rv = tkv_transfer(x->client, id, NULL, &err);
    return rv == 0 ? print_doc(json_null()) : fail(rv, &err);
}

static const struct command commands[] = {
    {"set", cmd_set, "KEY VALUE [--ttl SECONDS]",
     "Create or replace KEY's value. KEY is a JSON array of strings,\n"
     "numbers and booleans; VALUE is any JSON text (at most 1 MB).\n"
     "--ttl SECONDS makes the entry expire that long after the write.\n"
     "Prints {\"key\":KEY,\"version\":\"<16 hex>\"}."},
    {"get", cmd_get, "KEY",
     "Read KEY. Prints {\"key\":KEY,\"value\":VALUE,\"version\":\"<16 hex>\"}"
     "\nor null when the key is absent."},
    {"get-many", cmd_get_many, "KEY...",
     "Read up to 1000 keys as one snapshot. Prints an array with an entry\n"
     "or null per KEY, in argument order."},
    {"delete", cmd_delete, "KEY",
     "Delete KEY (deleting an absent key is not an error). Prints null."},
    {"list", cmd_list,
     "[--prefix KEY] [--start KEY] [--end KEY] [--limit N] [--reverse] "
     "[--cursor C]",
     "List entries in key order. --prefix selects keys that start with\n"
     "KEY's parts and are longer than it; --start is inclusive, --end\n"
     "exclusive; at least one of the three is needed. --limit 1..1000\n"
     "(default 100). --cursor continues from a previous page.\n"
     "Prints {\"items\":[entries],\"total\":N,\"cursor\":C or null}."},
    {"atomic", cmd_atomic, "FILE|-",
     "Apply checks and mutations all or nothing. FILE (or stdin for -)\n"
     "holds {\"checks\":[{\"key\":KEY,\"version\":\"<16 hex>\" or null}],\n"
     " \"mutations\":[{\"type\":\"set\",\"key\":KEY,\"value\":VALUE,"
     "\"ttl\":SECONDS},\n"
     "               {\"type\":\"delete\",\"key\":KEY}]}\n"
     "(a null version means the key must be absent; ttl is optional).\n"
     "Prints {\"ok\":true,\"version\":\"<16 hex>\"}, or "
     "{\"ok\":false,\"conflict\":KEY}\nwith exit code 4."},
    {"status", cmd_status, "",
     "Ask every endpoint for its status. Prints an array with one object\n"
     "per endpoint: id, endpoint, role, term, leader, leader_address,\n"
     "commit_index, applied_index, keys; or endpoint and error for an\n"
     "endpoint that does not answer."},
    {"members", cmd_members, "",
     "Print the cluster's members: id, raft_address, client_address, role."},
    {"member", cmd_member, "add ID RAFT_ADDR CLIENT_ADDR | remove ID",
     "Add a node (it joins as a spare, then becomes a voter) or remove one.\n"
     "Prints null."},
    {"transfer", cmd_transfer, "[ID]",
     "Hand leadership to node ID (default: the most up-to-date voter).\n"
     "Prints null."},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    size_t i;
    fprintf(f,
            "usage: tuplekvctl [global options] COMMAND [ARGS]\n"
            "\n"
            "global options:\n"
            "  -e, --endpoints HOST:PORT,...  nodes to contact (default:\n"
            "                                 $TUPLEKV_ENDPOINTS, else\n"
            "                                 %s)\n"
            "  --timeout MS                   per call (default 5000)\n"
            "  --eventual                     reads served by the contacted"
            " node\n"
            "  -h, --help                     this help\n"
            "\n"
            "commands:\n",
            TKV_DEFAULT_ENDPOINTS);
    for (i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %s %s\n", commands[i].name, commands[i].usage);
    }
    fprintf(f,
            "\nKEY and VALUE are JSON text, e.g. set '[\"notes\",\"1\"]' "
            "'{\"title\":\"hi\"}'.\n"
            "'tuplekvctl COMMAND --help' describes a command.\n"
            "exit codes: 0 ok, 1 refused, 2 usage, 3 unavailable or timed "
            "out\n(for writes: outcome unknown), 4 conflict\n");
}

int main(int argc, char **argv)
{
    struct ctx x;
    const struct command *cmd = NULL;
    int i;
    size_t k;
    int rv;

    memset(&x, 0, sizeof x);
    for (i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-e") == 0) {
            if (i + 1 >= argc) {
                return usage_error("-e needs HOST:PORT,...");
            }
            x.endpoints = argv[++i];
            continue;
        }
        v = opt_value(argc, argv, &i, "--endpoints", &missing);
        if (missing) {
            return usage_error("--endpoints needs HOST:PORT,...");
        }
        if (v != NULL) {
            x.endpoints = v;
            continue;
        }
        v = opt_value(argc, argv, &i, "--timeout", &missing);
        if (v != NULL || missing) {
            unsigned long ms;
            if (missing || parse_uint(v, INT_MAX, &ms) != 0 || ms == 0) {
                return usage_error(
                    "--timeout must be a positive number of "
                    "milliseconds");
            }
            x.timeout_ms = (int)ms;
            continue;
        }
        if (strcmp(argv[i], "--eventual") == 0) {
            x.eventual = 1;
            continue;
        }
        if (argv[i][0] == '-') {
            return usage_error("unknown global option '%s'", argv[i]);
        }
        break;
    }
    if (i >= argc) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    for (k = 0; k < NCOMMANDS; k++) {
        if (strcmp(argv[i], commands[k].name) == 0) {
            cmd = &commands[k];
        }
    }
    if (cmd == NULL) {
        return usage_error("unknown command '%s'", argv[i]);
    }
    cmd_now = cmd;
    if (has_help(argc - i - 1, argv + i + 1)) {
        printf("usage: tuplekvctl [global options] %s %s\n\n%s\n", cmd->name,
               cmd->usage, cmd->help);
        return 0;
    }
    if (x.endpoints != NULL && x.endpoints[0] == '\0') {
        return usage_error("--endpoints is empty");
    }
    rv = cmd->run(&x, argc - i - 1, argv + i + 1);
    tkv_close(x.client);
    return rv;
}
