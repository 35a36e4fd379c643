/* tuplekv-check: check a history.jsonl against a workload's checker.
 *
 *   tuplekv-check [-o OPTIONS] WORKLOAD [HISTORY]
 *
 * HISTORY is a history.jsonl file (history.h), "-" or absent for stdin.
 * OPTIONS is a JSON object, or @FILE to read one from a file. The results
 * object goes to stdout. Exit status: 0 valid, 1 invalid, 2 unknown
 * (including a malformed history), 64 usage error, 70 internal failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "checker.h"
#include "history.h"
#include "result.h"

#define EXIT_INVALID 1
#define EXIT_UNKNOWN 2
#define EXIT_USAGE 64
#define EXIT_SOFTWARE 70

static void usage(FILE *out)
{
    const struct tkv_checker *c;

    fprintf(out,
            "usage: tuplekv-check [-o OPTIONS|-o @FILE] WORKLOAD [HISTORY]\n"
            "Checks a history.jsonl and writes results.json to stdout.\n"
            "Exit: 0 valid, 1 invalid, 2 unknown, 64 usage.\n"
            "Workloads:\n");
    for (c = tkv_checkers; c->name != NULL; c++) {
        fprintf(out, "  %-9s %s\n", c->name, c->summary);
    }
}

static json_t *load_options(const char *arg)
{
    json_error_t jerr;
    json_t *o;

    if (arg[0] == '@') {
        o = json_load_file(arg + 1, 0, &jerr);
    } else {
        o = json_loads(arg, 0, &jerr);
    }
    if (o == NULL) {
        fprintf(stderr, "tuplekv-check: options: %s (line %d)\n", jerr.text,
                jerr.line);
        return NULL;
    }
    if (!json_is_object(o)) {
        fprintf(stderr, "tuplekv-check: options must be a JSON object\n");
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Results for a history that could not be parsed. */
static json_t *parse_failure(const char *workload, const char *msg)
{
    struct tkv_result r;
    json_t *out;

    if (tkv_result_init(&r) != 0) {
        return NULL;
    }
    out = tkv_result_json(&r, workload, msg);
    tkv_result_close(&r);
    return out;
}

int main(int argc, char **argv)
{
    const char *workload = NULL;
    const char *path = NULL;
    json_t *opts = NULL;
    json_t *results;
    struct tkv_history h;
    struct tkv_err err;
    FILE *in = stdin;
    int i, rv, code;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            json_decref(opts);
            opts = load_options(argv[++i]);
            if (opts == NULL) {
                return EXIT_USAGE;
            }
        } else if (workload == NULL) {
            workload = argv[i];
        } else if (path == NULL) {
            path = argv[i];
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (workload == NULL || tkv_checker_find(workload) == NULL) {
        if (workload != NULL) {
            fprintf(stderr, "tuplekv-check: unknown workload \"%s\"\n",
                    workload);
        }
        usage(stderr);
        json_decref(opts);
        return EXIT_USAGE;
    }
    if (path != NULL && strcmp(path, "-") != 0) {
        in = fopen(path, "rb");
        if (in == NULL) {
            perror(path);
            json_decref(opts);
            return EXIT_USAGE;
        }
    }
    tkv_err_clear(&err);
    rv = tkv_history_load(&h, in, &err);
    if (in != stdin) {
        fclose(in);
    }
    if (rv == TKV_EINVALID || rv == TKV_EIO) {
        fprintf(stderr, "tuplekv-check: %s\n", err.msg);
        results = parse_failure(workload, err.msg);
    } else if (rv != 0) {
        fprintf(stderr, "tuplekv-check: %s\n", err.msg);
        json_decref(opts);
        return EXIT_SOFTWARE;
    } else {
        results = tkv_check(workload, &h, opts, &err);
        tkv_history_close(&h);
    }
    json_decref(opts);
    if (results == NULL) {
        fprintf(stderr, "tuplekv-check: %s\n",
                err.msg[0] ? err.msg : "out of memory");
        return EXIT_SOFTWARE;
    }
    if (json_dumpf(results, stdout, JSON_INDENT(2)) != 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        json_decref(results);
        return EXIT_SOFTWARE;
    }
    switch (tkv_result_verdict(results)) {
        case 1:
            code = 0;
            break;
        case 0:
            code = EXIT_INVALID;
            break;
        default:
            code = EXIT_UNKNOWN;
            break;
    }
    if (code == EXIT_UNKNOWN && json_object_get(results, "error") != NULL) {
        fprintf(stderr, "tuplekv-check: %s\n",
                json_string_value(json_object_get(results, "error")));
    }
    json_decref(results);
    return code;
}
