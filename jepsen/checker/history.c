/* Parsing history.jsonl into events and ops (format: history.h).
 *
 * Happy path: split the text into lines, parse each non-blank line with
 * jansson, check its fields, then pair each client invoke with the next
 * line of the same process. Failures: a line that is not a JSON object, a
 * missing or mistyped field, an index that does not increase, a completion
 * without an invoke, a second invoke while one is outstanding, or an invoke
 * from a process that already ended in info: all TKV_EINVALID with the line
 * number. */
#include "history.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "../../common/alloc.h"

static const char *const type_names[] = {"invoke", "ok", "fail", "info"};

const char *tkv_htype_name(enum tkv_htype t)
{
    return type_names[t];
}

void tkv_history_init(struct tkv_history *h)
{
    h->events = NULL;
    h->nevents = 0;
    h->ops = NULL;
    h->nops = 0;
}

void tkv_history_close(struct tkv_history *h)
{
    size_t i;

    for (i = 0; i < h->nevents; i++) {
        json_decref(h->events[i].line);
    }
    tkv_free(h->events);
    tkv_free(h->ops);
    tkv_history_init(h);
}

/* Per-process pairing state while parsing. */
struct proc {
    int64_t process;
    size_t pending; /* op position, TKV_HNONE when idle */
    int crashed;    /* ended in info: may not invoke again */
};

struct parser {
    struct tkv_history *h;
    size_t cap_events;
    size_t cap_ops;
    struct proc *procs; /* owned; small, searched linearly by a hint */
    size_t nprocs;
    size_t cap_procs;
    struct tkv_err *err;
};

static int bad(struct parser *p, size_t lineno, const char *what)
{
    return tkv_err_set(p->err, TKV_EINVALID, "history line %zu: %s", lineno,
                       what);
}

static struct proc *proc_get(struct parser *p, int64_t process)
{
    size_t i;

    /* processes are few (a few per worker); a linear scan from the end
     * finds the recent ones first */
    for (i = p->nprocs; i-- > 0;) {
        if (p->procs[i].process == process) {
            return &p->procs[i];
        }
    }
    if (p->nprocs == p->cap_procs) {
        size_t cap = p->cap_procs ? p->cap_procs * 2 : 16;
        struct proc *n = tkv_realloc(p->procs, cap * sizeof *n);
        if (n == NULL) {
            return NULL;
        }
        p->procs = n;
        p->cap_procs = cap;
    }
    p->procs[p->nprocs].process = process;
    p->procs[p->nprocs].pending = TKV_HNONE;
    p->procs[p->nprocs].crashed = 0;
    return &p->procs[p->nprocs++];
}

static int parse_type(const char *s, enum tkv_htype *t)
{
    size_t i;

    for (i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *t = (enum tkv_htype)i;
            return 0;
        }
    }
    return -1;
}

/* Fill ev from its parsed line (ev->line already set). */
static int read_fields(struct parser *p, struct tkv_hevent *ev, size_t lineno)
{
    json_t *line = ev->line;
    json_t *v;

    if (!json_is_object(line)) {
        return bad(p, lineno, "not a JSON object");
    }
    v = json_object_get(line, "index");
    if (!json_is_integer(v)) {
        return bad(p, lineno, "\"index\" must be an integer");
    }
    ev->index = json_integer_value(v);

    v = json_object_get(line, "process");
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        ev->process = json_integer_value(v);
    } else if (json_is_string(v)) {
        ev->process = TKV_HPROCESS_NEMESIS;
    } else {
        return bad(p, lineno,
                   "\"process\" must be an integer >= 0 or a string");
    }

    v = json_object_get(line, "type");
    if (!json_is_string(v) || parse_type(json_string_value(v), &ev->type)) {
        return bad(p, lineno,
                   "\"type\" must be \"invoke\", \"ok\", \"fail\" or \"info\"");
    }
    v = json_object_get(line, "f");
    if (!json_is_string(v)) {
        return bad(p, lineno, "\"f\" must be a string");
    }
    ev->f = json_string_value(v);

    v = json_object_get(line, "value");
    ev->value = v != NULL ? v : json_null();

    v = json_object_get(line, "time");
    if (v == NULL || json_is_null(v)) {
        ev->time = TKV_HTIME_NONE;
    } else if (json_is_integer(v)) {
        ev->time = json_integer_value(v);
    } else {
        return bad(p, lineno, "\"time\" must be an integer");
    }
    ev->op = TKV_HNONE;
    return 0;
}

static int new_op(struct parser *p, size_t evpos)
{
    struct tkv_history *h = p->h;
    struct tkv_hevent *ev = &h->events[evpos];
    struct tkv_hop *op;

    if (h->nops == p->cap_ops) {
        size_t cap = p->cap_ops ? p->cap_ops * 2 : 256;
        struct tkv_hop *n = tkv_realloc(h->ops, cap * sizeof *n);
        if (n == NULL) {
            return TKV_ENOMEM;
        }
        h->ops = n;
        p->cap_ops = cap;
    }
    op = &h->ops[h->nops];
    op->invoke = evpos;
    op->complete = TKV_HNONE;
    op->type = TKV_HINFO;
    op->process = ev->process;
    op->f = ev->f;
    op->value = ev->value;
    op->result = json_null();
    ev->op = h->nops++;
    return 0;
}

/* Pair a client line with its process's outstanding op. */
static int pair(struct parser *p, size_t evpos, size_t lineno)
{
    struct tkv_history *h = p->h;
    struct tkv_hevent *ev = &h->events[evpos];
    struct proc *pr = proc_get(p, ev->process);
    struct tkv_hop *op;
    char msg[160];

    if (pr == NULL) {
        return tkv_err_set(p->err, TKV_ENOMEM, "out of memory");
    }
    if (ev->type == TKV_HINVOKE) {
        if (pr->pending != TKV_HNONE) {
            snprintf(msg, sizeof msg,
                     "process %lld invokes while its op at index %lld is "
                     "outstanding",
                     (long long)ev->process,
                     (long long)h->events[h->ops[pr->pending].invoke].index);
            return bad(p, lineno, msg);
        }
        if (pr->crashed) {
            snprintf(msg, sizeof msg,
                     "process %lld invokes after an info completion (use a "
                     "new process id)",
                     (long long)ev->process);
            return bad(p, lineno, msg);
        }
        if (new_op(p, evpos) != 0) {
            return tkv_err_set(p->err, TKV_ENOMEM, "out of memory");
        }
        pr->pending = ev->op;
        return 0;
    }
    if (pr->pending == TKV_HNONE) {
        snprintf(msg, sizeof msg,
                 "%s completion of process %lld without an "
                 "invoke",
                 tkv_htype_name(ev->type), (long long)ev->process);
        return bad(p, lineno, msg);
    }
    op = &h->ops[pr->pending];
    if (strcmp(op->f, ev->f) != 0) {
        snprintf(msg, sizeof msg,
                 "completion f \"%.40s\" differs from the "
                 "invoke's \"%.40s\"",
                 ev->f, op->f);
        return bad(p, lineno, msg);
    }
    op->complete = evpos;
    op->type = ev->type;
    op->result = ev->value;
    ev->op = pr->pending;
    pr->pending = TKV_HNONE;
    if (ev->type == TKV_HINFO) {
        pr->crashed = 1;
    }
    return 0;
}

int tkv_history_parse(struct tkv_history *h,
                      const char *text,
                      size_t len,
                      struct tkv_err *err)
{
    struct parser p = {h, 0, 0, NULL, 0, 0, err};
    size_t pos = 0;
    size_t lineno = 0;
    int rv = 0;

    tkv_history_init(h);
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        struct tkv_hevent *ev;
        json_error_t jerr;
        size_t i;

        pos += n + (nl != NULL);
        lineno++;
        for (i = 0; i < n; i++) {
            if (start[i] != ' ' && start[i] != '\t' && start[i] != '\r') {
                break;
            }
        }
        if (i == n) {
            continue; /* blank line */
        }
        if (h->nevents == p.cap_events) {
            size_t cap = p.cap_events ? p.cap_events * 2 : 512;
            struct tkv_hevent *e = tkv_realloc(h->events, cap * sizeof *e);
            if (e == NULL) {
                rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
                goto err_after_parse;
            }
            h->events = e;
            p.cap_events = cap;
        }
        ev = &h->events[h->nevents];
        ev->line = json_loadb(start, n, JSON_REJECT_DUPLICATES, &jerr);
        if (ev->line == NULL) {
            char msg[200];
            snprintf(msg, sizeof msg, "bad JSON: %s", jerr.text);
            rv = bad(&p, lineno, msg);
            goto err_after_parse;
        }
        h->nevents++;
        rv = read_fields(&p, ev, lineno);
        if (rv != 0) {
            goto err_after_parse;
        }
        if (h->nevents > 1 && ev->index <= h->events[h->nevents - 2].index) {
            rv = bad(&p, lineno, "\"index\" does not increase");
            goto err_after_parse;
        }
        if (ev->process != TKV_HPROCESS_NEMESIS) {
            rv = pair(&p, h->nevents - 1, lineno);
            if (rv != 0) {
                goto err_after_parse;
            }
        }
    }
    tkv_free(p.procs);
    return 0;

err_after_parse:
    tkv_free(p.procs);
    tkv_history_close(h);
    return rv;
}

int tkv_history_load(struct tkv_history *h, FILE *in, struct tkv_err *err)
{
    struct tkv_buf b;
    char chunk[65536];
    size_t n;
    int rv;

    tkv_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) {
        if (tkv_buf_append(&b, chunk, n) != 0) {
            tkv_buf_close(&b);
            tkv_history_init(h);
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
    }
    if (ferror(in)) {
        tkv_buf_close(&b);
        tkv_history_init(h);
        return tkv_err_set(err, TKV_EIO, "cannot read the history");
    }
    rv = tkv_history_parse(h, (const char *)b.data, b.len, err);
    tkv_buf_close(&b);
    return rv;
}

int64_t tkv_hop_name(const struct tkv_history *h, size_t op)
{
    const struct tkv_hop *o = &h->ops[op];
    size_t ev = o->complete != TKV_HNONE ? o->complete : o->invoke;
    return h->events[ev].index;
}

json_t *tkv_hop_field(const struct tkv_history *h, size_t op, const char *name)
{
    const struct tkv_hop *o = &h->ops[op];
    json_t *v = NULL;

    if (o->complete != TKV_HNONE) {
        v = json_object_get(h->events[o->complete].line, name);
    }
    if (v == NULL) {
        v = json_object_get(h->events[o->invoke].line, name);
    }
    return v;
}

json_t *tkv_hop_describe(const struct tkv_history *h, size_t op)
{
    const struct tkv_hop *o = &h->ops[op];
    json_t *complete = o->complete != TKV_HNONE
                           ? json_integer(h->events[o->complete].index)
                           : json_null();

    return json_pack(
        "{s:I, s:s, s:s, s:O, s:O, s:I, s:o}", "process",
        (json_int_t)o->process, "f", o->f, "type", tkv_htype_name(o->type),
        "value", o->value, "result", o->result, "invoke",
        (json_int_t)h->events[o->invoke].index, "complete", complete);
}

/* ---- values ---- */

static int canon_cb(const char *buffer, size_t size, void *data)
{
    return tkv_buf_append(data, buffer, size) == 0 ? 0 : -1;
}

int tkv_hvalue_canon(const json_t *v, struct tkv_buf *out)
{
    if (json_is_integer(v)) {
        /* the common case, as jansson prints it, without its machinery */
        char num[24];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        return tkv_buf_append(out, num, (size_t)n);
    }
    if (json_dump_callback(v, canon_cb, out,
                           JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) !=
        0) {
        return TKV_ENOMEM;
    }
    return 0;
}

int tkv_hvalue_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
            *out = (int64_t)d;
            return 1;
        }
    }
    return 0;
}
