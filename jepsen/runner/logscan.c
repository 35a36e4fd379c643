/* Node log scan (see logscan.h). */
#include "logscan.h"

#include <stdio.h>
#include <string.h>

#include "runner.h"

#define MAX_PER_NODE 5
#define CONTEXT_LINES 12

/* Substrings that only a crash or a checker of memory safety prints. */
static const char *const patterns[] = {
    "Assertion",            /* glibc assert(): "...: Assertion `x' failed." */
    "AddressSanitizer",     "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "ThreadSanitizer",      "MemorySanitizer",
    "runtime error:",       /* UBSan */
    "Segmentation fault",   "stack smashing detected",
    "double free",          "free(): invalid",
    "malloc(): ",           "corrupted size vs",
    "corrupted double-linked list",
    "terminate called",     "PANIC",
};

static const char *match(const char *line)
{
    size_t i;
    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        if (strstr(line, patterns[i]) != NULL) {
            return patterns[i];
        }
    }
    return NULL;
}

int tkvj_logscan(struct tkvj_run *r)
{
    int total = 0, i;
    for (i = 1; i <= r->cluster.n; i++) {
        const char *path = r->cluster.nodes[i].log_path;
        FILE *f = fopen(path, "r");
        char line[2048];
        long lineno = 0;
        int hits = 0;
        json_t *ctx = NULL, *cur = NULL;
        int ctx_left = 0;

        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof line, f) != NULL) {
            const char *p;
            lineno++;
            line[strcspn(line, "\n")] = '\0';
            if (ctx_left > 0 && ctx != NULL) {
                json_array_append_new(ctx, json_string(line));
                ctx_left--;
            }
            p = match(line);
            if (p == NULL) {
                continue;
            }
            total++;
            if (++hits > MAX_PER_NODE) {
                continue;
            }
            if (cur != NULL) {
                tkvj_finding(r, "node-log", cur);
            }
            ctx = json_array();
            cur = json_pack("{si ss sI ss ss so}", "node", i, "log", path,
                            "line_number", (json_int_t)lineno, "pattern", p,
                            "line", line, "following", ctx);
            ctx_left = CONTEXT_LINES;
        }
        if (cur != NULL) {
            tkvj_finding(r, "node-log", cur);
        }
        fclose(f);
    }
    return total;
}
