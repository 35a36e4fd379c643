/* The ttl checker: keys expire on the state machine's clock, exactly.
 *
 * tuplekv's state machine time (sm time) is carried in the log: each entry
 * has the leader's monotonic timestamp, applying it sets sm.now, a set with
 * a TTL stores expires_at = its entry's timestamp + ttl, and a key is gone
 * once expires_at <= sm.now. Two rules follow (DESIGN.md, "Time and TTL"):
 *
 *   A. no read returns a key after sm time passed its expiry;
 *   B. no key vanishes before its TTL, minus one tick of slack, measured in
 *      real time, when no clock fault is active (a leader clock jumped
 *      forward makes sm time run ahead of real time, legitimately).
 *
 * What the history gives (history.h, "ttl"): the sm time a set was applied
 * at, a, and the one a read was served at, r: exactly ("sm_time"), between
 * bounds ("sm_lo", "sm_hi"), or not at all. The checker narrows both with
 * what the other ops say, because sm time only grows along the log: an
 * op's time is at least the lower bound of any op that completed before it
 * was invoked, and at most the upper bound of any op invoked after it
 * completed (an info set has no upper bound: it may apply at any time). So
 * every set S has a in [lo, hi] and every read r in [rlo, rhi]. The same
 * fact gives a third check for free: an op whose upper bound is below the
 * lower bound of an op that completed before it began went back in time
 * ("sm-time-regression").
 *
 * Rule A, per ok read of key k with found = true, taking r as early as it
 * can be (rlo): some set S of k (ok or info, invoked before the read
 * completed) must be able to be the visible version: applied by then (some
 * a in [lo, hi] with a <= rlo), not expired (taking a as late as possible:
 * min(hi, rlo) + ttl > rlo), and not overwritten for sure (no ok set S'
 * surely applied after S and before the read, hi' < rlo). None:
 * "read-after-expiry", or "unexpected-found" when no set of k could have
 * been applied at all.
 *
 * Rule B has two forms, one per clock:
 *   B1 (sm time, always): an ok read of k with found = false, while an ok
 *      set S was surely applied before it (hi < rlo), is surely still alive
 *      however late the read was served (lo + ttl > rhi), and no other set
 *      of k could have been applied in between and expired by then:
 *      "vanish-early" (basis sm_time). A state machine bug whatever the
 *      clocks did.
 *   B2 (real time, only without clock faults): an ok read of k with
 *      found = false completed at real time c, after some ok set of k had
 *      completed. Every set S that may be the latest one applied before the
 *      read (not followed, in real time, by another acknowledged set that
 *      completed before the read began) applied at or after its invoke
 *      time, so with sm time never ahead of real time it lives until at
 *      least invoke + ttl. Flag when c < min over those S of (invoke + ttl)
 *      - tick_ms: "vanish-early" (basis real_time). Applies only when the
 *      read and all those sets say "nemesis_clock": false and no nemesis
 *      line with "clock" in its f lies between them.
 */
#include <stdlib.h>
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/buf.h"
#include "checker.h"
#include "strmap.h"

#define NONE TKV_HNONE
#define NO_TTL INT64_MAX
#define NEG_INF INT64_MIN
#define POS_INF INT64_MAX

struct tset {
    size_t hop;
    size_t key;
    int ok;      /* ok (1) or info (0); failed sets are dropped */
    int64_t ttl; /* ms, NO_TTL for none */
    int64_t lo, hi;
    int clock_ok;
};

struct tread {
    size_t hop;
    size_t key;
    int found;
    int64_t rlo, rhi; /* it was served at an sm time in [rlo, rhi] */
    int clock_ok;
};

/* An integer field of an ok op's result value, or of its completion line.
 * 1 when present. */
static int sm_field(const struct tkv_history *h,
                    const struct tkv_hop *o,
                    const char *name,
                    int64_t *out)
{
    json_t *v = json_object_get(o->result, name);

    if (v == NULL || json_is_null(v)) {
        v = o->complete != NONE
                ? json_object_get(h->events[o->complete].line, name)
                : NULL;
    }
    return v != NULL && tkv_hvalue_int(v, out);
}

/* An ok op's own sm time bounds: exact, bounded, or unknown. */
static void own_bounds(const struct tkv_history *h,
                       const struct tkv_hop *o,
                       int64_t *lo,
                       int64_t *hi)
{
    int64_t v;

    *lo = NEG_INF;
    *hi = POS_INF;
    if (o->type != TKV_HOK) {
        return;
    }
    if (sm_field(h, o, "sm_time", &v)) {
        *lo = *hi = v;
        return;
    }
    if (sm_field(h, o, "sm_lo", &v)) {
        *lo = v;
    }
    if (sm_field(h, o, "sm_hi", &v)) {
        *hi = v;
    }
}

/* nemesis_clock explicitly false on the op's lines, true on none. */
static int clock_ok_of(const struct tkv_history *h, const struct tkv_hop *o)
{
    json_t *a = json_object_get(h->events[o->invoke].line, "nemesis_clock");
    json_t *b =
        o->complete != NONE
            ? json_object_get(h->events[o->complete].line, "nemesis_clock")
            : NULL;

    if (json_is_true(a) || json_is_true(b)) {
        return 0;
    }
    return json_is_false(a) || json_is_false(b);
}

static int cmp_set(const void *x, const void *y)
{
    const struct tset *a = x;
    const struct tset *b = y;

    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->hop < b->hop ? -1 : a->hop > b->hop;
}

/* a + b on the extended line: no TTL or an infinite a give +inf, an
 * unknown lower bound stays unknown. */
static int64_t add_sat(int64_t a, int64_t b)
{
    if (b == NO_TTL || a == POS_INF) {
        return POS_INF;
    }
    if (a == NEG_INF) {
        return NEG_INF;
    }
    if (b > 0 && a > POS_INF - b) {
        return POS_INF;
    }
    return a + b;
}

static json_t *bound_json(int64_t v)
{
    return v == NEG_INF || v == POS_INF ? json_null() : json_integer(v);
}

struct ttl_ctx {
    const struct tkv_history *h;
    struct tkv_result *res;
    struct tset *sets; /* owned */
    size_t nsets;
    size_t *kstart; /* owned: sets of key k are kstart[k] .. kstart[k+1] */
    const json_t **key_json; /* owned array of borrowed keys */
    size_t *clock_prefix;    /* owned: clock nemesis lines before each pos */
    int64_t tick_ms;
};

static const struct tkv_hop *hop(const struct ttl_ctx *c, size_t i)
{
    return &c->h->ops[i];
}

/* s surely applied after t: its lower bound is above t's upper one, or t
 * completed before s was invoked. */
static int surely_after(const struct ttl_ctx *c,
                        const struct tset *s,
                        const struct tset *t)
{
    const struct tkv_hop *ot = hop(c, t->hop);

    return s->lo > t->hi ||
           (ot->complete != NONE && ot->complete < hop(c, s->hop)->invoke);
}

static json_t *set_json(const struct ttl_ctx *c, const struct tset *s)
{
    return json_pack(
        "{s:I, s:s, s:o, s:o, s:o}", "op",
        (json_int_t)tkv_hop_name(c->h, s->hop), "type", s->ok ? "ok" : "info",
        "ttl_ms", s->ttl == NO_TTL ? json_null() : json_integer(s->ttl),
        "applied_min", bound_json(s->lo), "applied_max", bound_json(s->hi));
}

/* Rule A for read rd (rd->rlo is finite). */
static void rule_a(struct ttl_ctx *c, const struct tread *rd)
{
    const struct tkv_hop *ro = hop(c, rd->hop);
    const struct tset *latest = NULL;
    int64_t latest_a = NEG_INF;
    int any_applied = 0;
    size_t i, j;
    json_t *a;

    for (i = c->kstart[rd->key]; i < c->kstart[rd->key + 1]; i++) {
        const struct tset *s = &c->sets[i];
        int64_t at = s->hi < rd->rlo ? s->hi : rd->rlo;
        int overwritten = 0;

        if (hop(c, s->hop)->invoke > ro->complete || at < s->lo) {
            continue; /* cannot have been applied by then */
        }
        any_applied = 1;
        if (latest == NULL || at > latest_a) {
            latest = s;
            latest_a = at;
        }
        if (add_sat(at, s->ttl) <= rd->rlo) {
            continue; /* expired by then however late it applied */
        }
        for (j = c->kstart[rd->key]; j < c->kstart[rd->key + 1]; j++) {
            const struct tset *s2 = &c->sets[j];
            if (j != i && s2->ok && s2->hi < rd->rlo &&
                surely_after(c, s2, s)) {
                overwritten = 1;
                break;
            }
        }
        if (!overwritten) {
            return; /* s explains the read */
        }
    }
    a = json_pack("{s:[I], s:O, s:I}", "ops",
                  (json_int_t)tkv_hop_name(c->h, rd->hop), "key",
                  c->key_json[rd->key], "sm_time_min", (json_int_t)rd->rlo);
    if (a != NULL && latest != NULL) {
        json_array_insert_new(json_object_get(a, "ops"), 0,
                              json_integer(tkv_hop_name(c->h, latest->hop)));
        json_object_set_new(a, "set", set_json(c, latest));
        json_object_set_new(a, "expires_at_max",
                            latest->ttl == NO_TTL
                                ? json_null()
                                : json_integer(add_sat(latest_a, latest->ttl)));
    }
    tkv_result_add(c->res,
                   any_applied ? "read-after-expiry" : "unexpected-found", a);
}

/* Rule B1 for read rd: 1 when it reported. */
static int rule_b1(struct ttl_ctx *c, const struct tread *rd)
{
    const struct tkv_hop *ro = hop(c, rd->hop);
    size_t i, j;

    for (i = c->kstart[rd->key]; i < c->kstart[rd->key + 1]; i++) {
        const struct tset *s = &c->sets[i];
        int explained = 0;

        if (!s->ok || !(s->hi < rd->rlo)) {
            continue; /* not surely applied before the read */
        }
        if (s->ttl != NO_TTL &&
            (rd->rhi == POS_INF || add_sat(s->lo, s->ttl) <= rd->rhi)) {
            continue; /* not surely alive when the read was served */
        }
        for (j = c->kstart[rd->key]; j < c->kstart[rd->key + 1]; j++) {
            const struct tset *s2 = &c->sets[j];
            int64_t at;
            if (j == i || hop(c, s2->hop)->invoke > ro->complete ||
                surely_after(c, s, s2)) {
                continue;
            }
            /* s2 may follow s; might it have expired by the read? */
            at = s2->lo > s->lo ? s2->lo : s->lo;
            if (s2->ttl != NO_TTL &&
                (rd->rhi == POS_INF ||
                 (at < rd->rhi && add_sat(at, s2->ttl) <= rd->rhi))) {
                explained = 1;
                break;
            }
        }
        if (explained) {
            continue;
        }
        tkv_result_add(
            c->res, "vanish-early",
            json_pack("{s:[I,I], s:O, s:s, s:o, s:o, s:o}", "ops",
                      (json_int_t)tkv_hop_name(c->h, s->hop),
                      (json_int_t)tkv_hop_name(c->h, rd->hop), "key",
                      c->key_json[rd->key], "basis", "sm_time", "sm_time_max",
                      bound_json(rd->rhi), "set", set_json(c, s),
                      "expires_at_min",
                      s->ttl == NO_TTL ? json_null()
                                       : bound_json(add_sat(s->lo, s->ttl))));
        return 1;
    }
    return 0;
}

/* Rule B2 for read rd: 1 when it reported. */
static int rule_b2(struct ttl_ctx *c, const struct tread *rd)
{
    const struct tkv_history *h = c->h;
    const struct tkv_hop *ro = hop(c, rd->hop);
    const struct tset *earliest = NULL;
    int64_t deadline = POS_INF;
    int64_t done = h->events[ro->complete].time;
    size_t first = NONE;
    int any_done = 0;
    size_t i, j;

    if (!rd->clock_ok || done == TKV_HTIME_NONE) {
        return 0;
    }
    for (i = c->kstart[rd->key]; i < c->kstart[rd->key + 1]; i++) {
        const struct tset *s = &c->sets[i];
        const struct tkv_hop *so = hop(c, s->hop);
        int superseded = 0;
        int64_t t0, end;

        if (s->ok && so->complete < ro->invoke) {
            any_done = 1;
        }
        if (so->invoke > ro->complete) {
            continue;
        }
        /* followed by an acknowledged set that completed before the read
         * began: not the latest */
        for (j = c->kstart[rd->key]; j < c->kstart[rd->key + 1]; j++) {
            const struct tkv_hop *o2 = hop(c, c->sets[j].hop);
            if (j != i && c->sets[j].ok && o2->complete < ro->invoke &&
                so->complete != NONE && so->complete < o2->invoke) {
                superseded = 1;
                break;
            }
        }
        if (superseded) {
            continue;
        }
        t0 = h->events[so->invoke].time;
        if (!s->clock_ok || t0 == TKV_HTIME_NONE) {
            return 0; /* cannot bound this one */
        }
        if (first == NONE || so->invoke < first) {
            first = so->invoke;
        }
        end = s->ttl == NO_TTL
                  ? POS_INF
                  : add_sat(t0, s->ttl > POS_INF / 1000000 ? POS_INF
                                                           : s->ttl * 1000000);
        if (earliest == NULL || end < deadline) {
            deadline = end;
            earliest = s;
        }
    }
    if (!any_done || earliest == NULL) {
        return 0;
    }
    if (c->clock_prefix[ro->complete] != c->clock_prefix[first]) {
        return 0; /* a clock fault in between */
    }
    /* a key without TTL never vanishes; otherwise allow a tick */
    if (deadline != POS_INF && done >= deadline - c->tick_ms * 1000000) {
        return 0;
    }
    tkv_result_add(
        c->res, "vanish-early",
        json_pack("{s:[I,I], s:O, s:s, s:I, s:o, s:o}", "ops",
                  (json_int_t)tkv_hop_name(h, earliest->hop),
                  (json_int_t)tkv_hop_name(h, rd->hop), "key",
                  c->key_json[rd->key], "basis", "real_time",
                  "read_completed_ns", (json_int_t)done, "alive_until_ns",
                  bound_json(deadline), "set", set_json(c, earliest)));
    return 1;
}

static int bad_op(const struct tkv_history *h,
                  size_t i,
                  const char *why,
                  struct tkv_err *err)
{
    return tkv_err_set(err, TKV_EINVALID, "ttl op at index %lld: %s",
                       (long long)h->events[h->ops[i].invoke].index, why);
}

int tkv_check_ttl(const struct tkv_history *h,
                  const json_t *opts,
                  struct tkv_result *res,
                  struct tkv_err *err)
{
    struct ttl_ctx c;
    struct tkv_strmap keys;
    struct tkv_buf tmp;
    struct tread *reads = NULL;
    size_t nreads = 0, nkeys = 0;
    size_t n = h->nevents;
    int64_t *own_lo = NULL, *own_hi = NULL; /* per op */
    int64_t *pmax = NULL; /* max lower bound completed before position p */
    int64_t *smin = NULL; /* min upper bound invoked at or after p */
    int64_t checked_a = 0, checked_b1 = 0, checked_b2 = 0;
    size_t i;
    int rv = 0;

    memset(&c, 0, sizeof c);
    c.h = h;
    c.res = res;
    tkv_strmap_init(&keys);
    tkv_buf_init(&tmp);
    if ((rv = tkv_opt_int(opts, "tick_ms", 500, &c.tick_ms, err)) != 0) {
        goto out;
    }
    c.sets = tkv_malloc((h->nops ? h->nops : 1) * sizeof *c.sets);
    reads = tkv_malloc((h->nops ? h->nops : 1) * sizeof *reads);
    c.key_json = tkv_malloc((h->nops ? h->nops : 1) * sizeof *c.key_json);
    own_lo = tkv_malloc((h->nops ? h->nops : 1) * sizeof *own_lo);
    own_hi = tkv_malloc((h->nops ? h->nops : 1) * sizeof *own_hi);
    pmax = tkv_malloc((n + 1) * sizeof *pmax);
    smin = tkv_malloc((n + 2) * sizeof *smin);
    c.clock_prefix = tkv_malloc((n + 1) * sizeof *c.clock_prefix);
    if (c.sets == NULL || reads == NULL || c.key_json == NULL ||
        own_lo == NULL || own_hi == NULL || pmax == NULL || smin == NULL ||
        c.clock_prefix == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }

    /* the ops */
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        json_t *k = json_object_get(o->value, "k");
        int64_t kid;

        if (k == NULL) {
            rv = bad_op(h, i, "value must be {\"k\": key, ...}", err);
            goto out;
        }
        tkv_buf_reset(&tmp);
        if (tkv_hvalue_canon(k, &tmp) != 0 ||
            (kid = tkv_strmap_intern(&keys, tmp.data, tmp.len)) < 0) {
            rv = TKV_ENOMEM;
            goto out;
        }
        if ((size_t)kid == nkeys) {
            c.key_json[nkeys++] = k;
        }
        own_bounds(h, o, &own_lo[i], &own_hi[i]);
        if (strcmp(o->f, "set") == 0) {
            struct tset *s = &c.sets[c.nsets];
            json_t *t = json_object_get(o->value, "ttl_ms");
            if (o->type == TKV_HFAIL) {
                continue;
            }
            s->hop = i;
            s->key = (size_t)kid;
            s->ok = o->type == TKV_HOK;
            if (t == NULL || json_is_null(t)) {
                s->ttl = NO_TTL;
            } else if (!tkv_hvalue_int(t, &s->ttl)) {
                rv = bad_op(h, i, "ttl_ms must be an integer or null", err);
                goto out;
            } else if (s->ttl <= 0) {
                s->ttl = NO_TTL;
            }
            s->clock_ok = clock_ok_of(h, o);
            c.nsets++;
        } else if (strcmp(o->f, "read") == 0) {
            struct tread *r = &reads[nreads];
            json_t *found = json_object_get(o->result, "found");
            if (o->type != TKV_HOK) {
                continue;
            }
            if (!json_is_boolean(found)) {
                rv = bad_op(h, i, "ok read needs \"found\": true|false", err);
                goto out;
            }
            r->hop = i;
            r->key = (size_t)kid;
            r->found = json_is_true(found);
            r->clock_ok = clock_ok_of(h, o);
            nreads++;
        } else {
            rv = bad_op(h, i, "f must be set or read", err);
            goto out;
        }
    }

    /* what the other ops say, by position */
    pmax[0] = NEG_INF;
    c.clock_prefix[0] = 0;
    for (i = 0; i < n; i++) {
        const struct tkv_hevent *ev = &h->events[i];
        int64_t v = NEG_INF;
        if (ev->op != NONE && ev->type != TKV_HINVOKE) {
            v = own_lo[ev->op];
        }
        pmax[i + 1] = v > pmax[i] ? v : pmax[i];
        c.clock_prefix[i + 1] =
            c.clock_prefix[i] +
            (ev->op == NONE && strstr(ev->f, "clock") != NULL);
    }
    smin[n] = smin[n + 1] = POS_INF;
    for (i = n; i-- > 0;) {
        const struct tkv_hevent *ev = &h->events[i];
        int64_t v = POS_INF;
        if (ev->op != NONE && ev->type == TKV_HINVOKE) {
            v = own_hi[ev->op];
        }
        smin[i] = v < smin[i + 1] ? v : smin[i + 1];
    }
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        if (own_hi[i] != POS_INF && own_hi[i] < pmax[o->invoke]) {
            tkv_result_add(
                res, "sm-time-regression",
                json_pack("{s:[I], s:I, s:I}", "ops",
                          (json_int_t)tkv_hop_name(h, i), "sm_time_max",
                          (json_int_t)own_hi[i], "earlier_min",
                          (json_int_t)pmax[o->invoke]));
        }
    }
    for (i = 0; i < c.nsets; i++) {
        struct tset *s = &c.sets[i];
        const struct tkv_hop *o = &h->ops[s->hop];
        int64_t lo = pmax[o->invoke];
        int64_t hi = s->ok ? smin[o->complete + 1] : POS_INF;
        s->lo = own_lo[s->hop] > lo ? own_lo[s->hop] : lo;
        s->hi = own_hi[s->hop] < hi ? own_hi[s->hop] : hi;
    }
    for (i = 0; i < nreads; i++) {
        struct tread *r = &reads[i];
        const struct tkv_hop *o = &h->ops[r->hop];
        int64_t lo = pmax[o->invoke];
        int64_t hi = smin[o->complete + 1];
        r->rlo = own_lo[r->hop] > lo ? own_lo[r->hop] : lo;
        r->rhi = own_hi[r->hop] < hi ? own_hi[r->hop] : hi;
    }

    /* sets grouped by key */
    qsort(c.sets, c.nsets, sizeof *c.sets, cmp_set);
    c.kstart = tkv_calloc(nkeys + 1, sizeof *c.kstart);
    if (c.kstart == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < c.nsets; i++) {
        c.kstart[c.sets[i].key + 1]++;
    }
    for (i = 0; i < nkeys; i++) {
        c.kstart[i + 1] += c.kstart[i];
    }

    for (i = 0; i < nreads; i++) {
        const struct tread *rd = &reads[i];
        if (rd->found) {
            if (rd->rlo != NEG_INF) {
                checked_a++;
                rule_a(&c, rd);
            }
            continue;
        }
        if (rd->rlo != NEG_INF) {
            checked_b1++;
            if (rule_b1(&c, rd)) {
                continue;
            }
        }
        checked_b2 += rd->clock_ok;
        rule_b2(&c, rd);
    }
    tkv_result_stat_int(res, "sets", (int64_t)c.nsets);
    tkv_result_stat_int(res, "reads", (int64_t)nreads);
    tkv_result_stat_int(res, "found_reads_checked", checked_a);
    tkv_result_stat_int(res, "missing_reads_checked_sm", checked_b1);
    tkv_result_stat_int(res, "missing_reads_clock_ok", checked_b2);
    tkv_result_stat_int(res, "tick_ms", c.tick_ms);
    if (nreads > 0 && checked_a + checked_b1 == 0) {
        tkv_result_note(res,
                        "no read had a bound on its sm time: only the "
                        "wall-clock rule was checked");
    }
out:
    tkv_free(c.sets);
    tkv_free(c.kstart);
    tkv_free(c.key_json);
    tkv_free(c.clock_prefix);
    tkv_free(reads);
    tkv_free(own_lo);
    tkv_free(own_hi);
    tkv_free(pmax);
    tkv_free(smin);
    tkv_buf_close(&tmp);
    tkv_strmap_close(&keys);
    return rv;
}
