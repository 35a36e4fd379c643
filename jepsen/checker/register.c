/* The register checker: each key is a linearizable read/write/cas register.
 *
 * Linearizability is compositional, so the history is split by key and each
 * key is searched alone (wgl.c). Values are interned to small ids (null is
 * 0) so states are integers. Per op:
 *   - ok read: must return the register's value at its linearization point;
 *   - write (ok or info): sets the value; an info write may take effect at
 *     any time after its invoke, or never;
 *   - cas [e, n] (ok or info): needs the value e, sets n;
 *   - fail ops and info reads say nothing and are dropped.
 * Real time is the line order of the history (history.h).
 *
 * When a key is not linearizable the checker looks for a small witness:
 *   1. the shortest prefix (cut right after some return) that is already
 *      not linearizable; linearizability is prefix-closed when the ops
 *      still running at the cut become info, so that prefix proves it;
 *   2. within it, the latest "closed" window: the ops whose return comes
 *      after a point s, widened until every op outside it returned before
 *      every op inside with a return was invoked; ops without a return
 *      (info, or still running at the cut) are always inside. In any
 *      linearization of the prefix, the part after the last outside op
 *      holds only inside ops, and the inside ops placed before it can be
 *      taken as never having happened (they have no return), so if the
 *      window cannot be linearized from ANY starting value (a wildcard
 *      state), the prefix cannot either.
 * The report lists the window's ops and says whether it failed from any
 * value or only from the initial one.
 *
 * Before searching, info writes and info cas whose new value nobody
 * observes (no ok read returns it, no cas expects it) are dropped. That is
 * exact, not a heuristic: in any linearization, the op right after such an
 * effect neither reads nor expects its value, so it is a write (or
 * nothing), and the effect can be removed; and since an info op may also
 * never happen, removing it loses no linearization. It matters because
 * crashed ops stay pending forever, and every pending op doubles the
 * states the search may have to visit before it can say "not
 * linearizable".
 *
 * The search is bounded per key (options max_steps, max_cache_mb); a key
 * that hits a bound makes the verdict "unknown", never valid. */
#include <stdlib.h>
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/buf.h"
#include "checker.h"
#include "strmap.h"
#include "wgl.h"

#define STATE_ANY (-1)

enum reg_kind { REG_READ, REG_WRITE, REG_CAS };

struct reg_op {
    size_t hop; /* position in h->ops */
    size_t key; /* key id */
    enum reg_kind kind;
    int64_t a; /* read: value seen; write: value; cas: expected */
    int64_t b; /* cas: new value */
    uint64_t call;
    uint64_t ret; /* TKV_WGL_NEVER for info */
};

struct reg_ctx {
    const struct reg_op *const *ops; /* the ops of the current search */
};

static int reg_step(void *ctx, size_t i, int64_t s, int64_t *next)
{
    const struct reg_op *o = ((struct reg_ctx *)ctx)->ops[i];

    switch (o->kind) {
        case REG_READ:
            if (s == STATE_ANY || s == o->a) {
                *next = o->a;
                return 1;
            }
            return 0;
        case REG_WRITE:
            *next = o->a;
            return 1;
        case REG_CAS:
            if (s == STATE_ANY || s == o->a) {
                *next = o->b;
                return 1;
            }
            return 0;
    }
    return 0;
}

/* Run WGL over sel[0..n-1] (ret positions given separately so callers can
 * cut a history). */
static int search(const struct reg_op *const *sel,
                  const uint64_t *rets,
                  size_t n,
                  int64_t init,
                  const struct tkv_wgl_limits *lim,
                  enum tkv_wgl_verdict *verdict,
                  uint64_t *steps)
{
    struct tkv_wgl_op *w = tkv_malloc((n ? n : 1) * sizeof *w);
    struct reg_ctx ctx = {sel};
    size_t i;
    int rv;

    if (w == NULL) {
        return TKV_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        w[i].call = sel[i]->call;
        w[i].ret = rets[i];
    }
    rv = tkv_wgl_check(w, n, init, reg_step, &ctx, lim, verdict, steps);
    tkv_free(w);
    return rv;
}

/* A set of one key's ops to search, with return positions of their own
 * (a cut turns running ops into info). */
struct cutset {
    const struct reg_op **sel; /* owned */
    uint64_t *rets;            /* owned */
    size_t n;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Drop the info writes and cas of c whose new value nobody in c observes
 * (see the top of the file), until none is left: an info cas kept alive
 * only by another droppable one goes too. *dropped counts them. */
static int prune(struct cutset *c, size_t *dropped)
{
    int64_t *seen = tkv_malloc((c->n ? c->n : 1) * sizeof *seen);
    size_t nseen, i, k, before;

    if (seen == NULL) {
        return TKV_ENOMEM;
    }
again:
    nseen = 0;
    k = 0;
    before = *dropped;
    for (i = 0; i < c->n; i++) {
        if (c->sel[i]->kind != REG_WRITE) {
            seen[nseen++] = c->sel[i]->a; /* read value, cas expected */
        }
    }
    qsort(seen, nseen, sizeof *seen, cmp_i64);
    for (i = 0; i < c->n; i++) {
        const struct reg_op *o = c->sel[i];
        if (c->rets[i] == TKV_WGL_NEVER && o->kind != REG_READ) {
            int64_t v = o->kind == REG_WRITE ? o->a : o->b;
            if (bsearch(&v, seen, nseen, sizeof *seen, cmp_i64) == NULL) {
                (*dropped)++;
                continue;
            }
        }
        c->sel[k] = c->sel[i];
        c->rets[k] = c->rets[i];
        k++;
    }
    c->n = k;
    if (*dropped != before) {
        goto again;
    }
    tkv_free(seen);
    return 0;
}

/* ops[] (sorted by call) cut right after position t: ops invoked before t;
 * those still running at t become info; info reads are dropped. */
static void cut_at(const struct reg_op *ops,
                   size_t m,
                   uint64_t t,
                   struct cutset *c)
{
    size_t i;

    c->n = 0;
    for (i = 0; i < m && ops[i].call < t; i++) {
        uint64_t r = ops[i].ret <= t ? ops[i].ret : TKV_WGL_NEVER;
        if (r == TKV_WGL_NEVER && ops[i].kind == REG_READ) {
            continue;
        }
        c->sel[c->n] = &ops[i];
        c->rets[c->n] = r;
        c->n++;
    }
}

/* The closed window of c after point s (see the top of the file), as a
 * subset written to w. */
static void window(const struct cutset *c, uint64_t s, struct cutset *w)
{
    for (;;) {
        uint64_t lowest = UINT64_MAX;
        size_t i;

        w->n = 0;
        for (i = 0; i < c->n; i++) {
            if (c->rets[i] > s) {
                w->sel[w->n] = c->sel[i];
                w->rets[w->n] = c->rets[i];
                w->n++;
                if (c->rets[i] != TKV_WGL_NEVER && c->sel[i]->call < lowest) {
                    lowest = c->sel[i]->call;
                }
            }
        }
        if (w->n == 0 || lowest >= s) {
            return;
        }
        s = lowest;
    }
}

/* 1 when the set (pruned first; it is scratch) is shown illegal; unknown
 * counts as not shown. */
static int fails(struct cutset *c,
                 int64_t init,
                 const struct tkv_wgl_limits *lim,
                 int *rv)
{
    enum tkv_wgl_verdict v;
    size_t dropped = 0;

    *rv = prune(c, &dropped);
    if (*rv == 0) {
        *rv = search(c->sel, c->rets, c->n, init, lim, &v, NULL);
    }
    return *rv == 0 && v == TKV_WGL_ILLEGAL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int report(const struct tkv_history *h,
                  const struct reg_op *ops,
                  size_t m,
                  int64_t init,
                  const json_t *key,
                  const struct tkv_wgl_limits *lim,
                  struct tkv_result *res)
{
    struct cutset c = {NULL, NULL, 0}, w = {NULL, NULL, 0};
    struct cutset scratch = {NULL, NULL, 0};
    uint64_t *rets = tkv_malloc((m ? m : 1) * sizeof *rets);
    size_t nrets = 0;
    size_t lo, hi, i, pass, fail, gap;
    uint64_t t;
    int any;
    int rv = 0;
    json_t *names, *sub, *anomaly;
    size_t failing = TKV_HNONE;

    c.sel = tkv_malloc((m ? m : 1) * sizeof *c.sel);
    c.rets = tkv_malloc((m ? m : 1) * sizeof *c.rets);
    w.sel = tkv_malloc((m ? m : 1) * sizeof *w.sel);
    w.rets = tkv_malloc((m ? m : 1) * sizeof *w.rets);
    scratch.sel = tkv_malloc((m ? m : 1) * sizeof *scratch.sel);
    scratch.rets = tkv_malloc((m ? m : 1) * sizeof *scratch.rets);
    if (rets == NULL || c.sel == NULL || c.rets == NULL || w.sel == NULL ||
        w.rets == NULL || scratch.sel == NULL || scratch.rets == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < m; i++) {
        if (ops[i].ret != TKV_WGL_NEVER) {
            rets[nrets++] = ops[i].ret;
        }
    }
    if (nrets == 0) {
        goto out; /* cannot happen: nothing would have to take effect */
    }
    qsort(rets, nrets, sizeof *rets, cmp_u64);
    /* 1. the shortest failing prefix; the whole history fails */
    lo = 0;
    hi = nrets - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        cut_at(ops, m, rets[mid], &scratch);
        if (fails(&scratch, init, lim, &rv)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
        if (rv != 0) {
            goto out;
        }
    }
    t = rets[lo];
    for (i = 0; i < m; i++) {
        if (ops[i].ret == t) {
            failing = ops[i].hop;
        }
    }
    /* 2. the latest closed window that still fails: the windows after
     * the returns before t, growing from the smallest with a doubling
     * step until one fails, then bisected. Small windows are cheap to
     * search; s = 0 (the whole prefix, from the initial value) fails. */
    cut_at(ops, m, t, &c);
    pass = lo; /* the window after t itself holds only info ops */
    fail = SIZE_MAX;
    for (gap = 1; fail == SIZE_MAX; gap *= 2) {
        size_t j = pass >= gap ? pass - gap : SIZE_MAX;
        if (j == SIZE_MAX) {
            break;
        }
        window(&c, rets[j], &scratch);
        if (fails(&scratch, STATE_ANY, lim, &rv)) {
            fail = j;
        } else {
            pass = j;
        }
        if (rv != 0) {
            goto out;
        }
    }
    if (fail != SIZE_MAX) {
        while (fail + 1 < pass) {
            size_t mid = fail + (pass - fail) / 2;
            window(&c, rets[mid], &scratch);
            if (fails(&scratch, STATE_ANY, lim, &rv)) {
                fail = mid;
            } else {
                pass = mid;
            }
            if (rv != 0) {
                goto out;
            }
        }
        window(&c, rets[fail], &w);
    } else {
        window(&c, 0, &w); /* everything, from the initial value */
    }
    any = fail != SIZE_MAX;
    {
        size_t dropped = 0;
        rv = prune(&w, &dropped);
        if (rv != 0) {
            goto out;
        }
    }

    names = json_array();
    sub = json_array();
    for (i = 0; i < w.n; i++) {
        json_array_append_new(names,
                              json_integer(tkv_hop_name(h, w.sel[i]->hop)));
        json_array_append_new(sub, tkv_hop_describe(h, w.sel[i]->hop));
    }
    anomaly = json_pack("{s:o, s:O, s:I, s:s, s:o}", "ops", names, "key", key,
                        "op", (json_int_t)tkv_hop_name(h, failing), "start",
                        any ? "any value" : "initial value", "subhistory", sub);
    tkv_result_add(res, "nonlinearizable", anomaly);
out:
    tkv_free(rets);
    tkv_free(c.sel);
    tkv_free(c.rets);
    tkv_free(w.sel);
    tkv_free(w.rets);
    tkv_free(scratch.sel);
    tkv_free(scratch.rets);
    return rv;
}

static int cmp_key_call(const void *a, const void *b)
{
    const struct reg_op *x = a;
    const struct reg_op *y = b;

    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return x->call < y->call ? -1 : x->call > y->call;
}

/* Intern a value; ids are >= 0 and null is 0 (interned first). */
static int value_id(struct tkv_strmap *vals,
                    struct tkv_buf *tmp,
                    const json_t *v,
                    int64_t *id)
{
    tkv_buf_reset(tmp);
    if (tkv_hvalue_canon(v != NULL ? v : json_null(), tmp) != 0) {
        return TKV_ENOMEM;
    }
    *id = tkv_strmap_intern(vals, tmp->data, tmp->len);
    return *id < 0 ? TKV_ENOMEM : 0;
}

static int bad_op(const struct tkv_history *h,
                  size_t i,
                  const char *why,
                  struct tkv_err *err)
{
    return tkv_err_set(err, TKV_EINVALID, "register op at index %lld: %s",
                       (long long)h->events[h->ops[i].invoke].index, why);
}

int tkv_check_register(const struct tkv_history *h,
                       const json_t *opts,
                       struct tkv_result *res,
                       struct tkv_err *err)
{
    struct tkv_strmap keys, vals;
    struct tkv_buf tmp;
    struct reg_op *ops = NULL;
    const struct reg_op **sel = NULL;
    uint64_t *rets = NULL;
    const json_t **key_json = NULL;
    size_t nops = 0, nkeys = 0;
    size_t i, start;
    int64_t max_steps, max_mb, init;
    struct tkv_wgl_limits lim;
    int64_t bad_keys = 0, unknown_keys = 0;
    size_t dropped = 0;
    struct cutset keyset;
    uint64_t steps_max = 0;
    int rv = 0;

    tkv_strmap_init(&keys);
    tkv_strmap_init(&vals);
    tkv_buf_init(&tmp);
    if ((rv = tkv_opt_int(opts, "max_steps", 20000000, &max_steps, err)) ||
        (rv = tkv_opt_int(opts, "max_cache_mb", 512, &max_mb, err))) {
        goto out;
    }
    lim.max_steps = max_steps > 0 ? (uint64_t)max_steps : 0;
    lim.max_cache_bytes = max_mb > 0 ? (uint64_t)max_mb << 20 : 0;
    if ((rv = value_id(&vals, &tmp, json_null(), &init)) != 0 ||
        (rv = value_id(&vals, &tmp,
                       opts != NULL ? json_object_get(opts, "initial") : NULL,
                       &init)) != 0) {
        goto out;
    }

    ops = tkv_malloc((h->nops ? h->nops : 1) * sizeof *ops);
    key_json = tkv_malloc((h->nops ? h->nops : 1) * sizeof *key_json);
    if (ops == NULL || key_json == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        struct reg_op *r = &ops[nops];
        json_t *k = json_object_get(o->value, "k");
        json_t *v = json_object_get(o->value, "v");
        int64_t kid;

        if (!json_is_object(o->value) || k == NULL) {
            rv = bad_op(h, i, "value must be {\"k\": key, ...}", err);
            goto out;
        }
        if (strcmp(o->f, "read") == 0) {
            r->kind = REG_READ;
        } else if (strcmp(o->f, "write") == 0) {
            r->kind = REG_WRITE;
        } else if (strcmp(o->f, "cas") == 0) {
            r->kind = REG_CAS;
            if (!json_is_array(v) || json_array_size(v) != 2) {
                rv = bad_op(h, i, "cas value must be [expected, new]", err);
                goto out;
            }
        } else {
            rv = bad_op(h, i, "f must be read, write or cas", err);
            goto out;
        }
        tkv_buf_reset(&tmp);
        if (tkv_hvalue_canon(k, &tmp) != 0 ||
            (kid = tkv_strmap_intern(&keys, tmp.data, tmp.len)) < 0) {
            rv = TKV_ENOMEM;
            goto out;
        }
        if ((size_t)kid == nkeys) {
            key_json[nkeys++] = k;
        }
        if (o->type == TKV_HFAIL ||
            (o->type == TKV_HINFO && r->kind == REG_READ)) {
            continue;
        }
        r->hop = i;
        r->key = (size_t)kid;
        r->call = o->invoke;
        r->ret = o->type == TKV_HOK ? o->complete : TKV_WGL_NEVER;
        switch (r->kind) {
            case REG_READ:
                if (!json_is_object(o->result)) {
                    rv = bad_op(h, i, "ok read result must be {\"k\", \"v\"}",
                                err);
                    goto out;
                }
                rv = value_id(&vals, &tmp, json_object_get(o->result, "v"),
                              &r->a);
                break;
            case REG_WRITE:
                rv = value_id(&vals, &tmp, v, &r->a);
                break;
            case REG_CAS:
                if ((rv = value_id(&vals, &tmp, json_array_get(v, 0), &r->a)) ==
                    0) {
                    rv = value_id(&vals, &tmp, json_array_get(v, 1), &r->b);
                }
                break;
        }
        if (rv != 0) {
            goto out;
        }
        nops++;
    }
    qsort(ops, nops, sizeof *ops, cmp_key_call);
    sel = tkv_malloc((nops ? nops : 1) * sizeof *sel);
    rets = tkv_malloc((nops ? nops : 1) * sizeof *rets);
    if (sel == NULL || rets == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    keyset.sel = sel;
    keyset.rets = rets;
    for (start = 0; start < nops;) {
        size_t end = start;
        size_t m;
        enum tkv_wgl_verdict verdict;
        uint64_t steps;

        while (end < nops && ops[end].key == ops[start].key) {
            end++;
        }
        m = end - start;
        keyset.n = m;
        for (i = 0; i < m; i++) {
            sel[i] = &ops[start + i];
            rets[i] = ops[start + i].ret;
        }
        rv = prune(&keyset, &dropped);
        if (rv == 0) {
            rv = search(sel, rets, keyset.n, init, &lim, &verdict, &steps);
        }
        if (rv != 0) {
            goto out;
        }
        if (steps > steps_max) {
            steps_max = steps;
        }
        if (verdict == TKV_WGL_ILLEGAL) {
            bad_keys++;
            rv = report(h, &ops[start], m, init, key_json[ops[start].key], &lim,
                        res);
            if (rv != 0) {
                goto out;
            }
        } else if (verdict == TKV_WGL_UNKNOWN) {
            char *ktext = json_dumps(key_json[ops[start].key],
                                     JSON_COMPACT | JSON_ENCODE_ANY);
            unknown_keys++;
            tkv_result_unknown(res,
                               "key %.100s: search limit reached after %llu "
                               "steps (%zu ops)",
                               ktext != NULL ? ktext : "?",
                               (unsigned long long)steps, m);
            free(ktext);
        }
        start = end;
    }
    tkv_result_stat_int(res, "keys", (int64_t)nkeys);
    tkv_result_stat_int(res, "ops_checked", (int64_t)nops);
    tkv_result_stat_int(res, "info_ops_dropped", (int64_t)dropped);
    tkv_result_stat_int(res, "nonlinearizable_keys", bad_keys);
    tkv_result_stat_int(res, "unknown_keys", unknown_keys);
    tkv_result_stat_int(res, "max_steps_per_key", (int64_t)steps_max);
out:
    tkv_free(ops);
    tkv_free(sel);
    tkv_free(rets);
    tkv_free(key_json);
    tkv_buf_close(&tmp);
    tkv_strmap_close(&keys);
    tkv_strmap_close(&vals);
    return rv;
}
