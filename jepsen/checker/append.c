/* The append checker: Elle's list-append analysis, for strict
 * serializability.
 *
 * Each key holds a list; transactions append unique values and read whole
 * lists. Because a read returns every append before it in order, the
 * longest read of a key reveals that key's version order, and every other
 * read must be a prefix of it. From the version orders the checker infers
 * dependencies between transactions (Adya's, as Elle does):
 *   ww  T1 -> T2  T2 appended right after T1's append (in version order);
 *   wr  T1 -> T2  T2 read a list ending in T1's append;
 *   rw  T1 -> T2  T1 read the state right before T2's append;
 *   rt  T1 -> T2  T1 completed before T2 was invoked (real time).
 * An append nobody read came after every element anyone read (else the
 * longest read would hold it), so its predecessor is the key's last
 * observed element. A strictly serializable history has an acyclic graph.
 *
 * Steps:
 *   1. parse the transactions; intern keys and (key, value) elements; a
 *      value appended twice to one key makes the history unusable;
 *   2. per read (ok transactions only): elements nobody appended
 *      ("garbage-read"), the same element twice ("duplicate-elements"),
 *      an element of a failed transaction ("G1a"), a list ending in an
 *      append that its transaction followed with another append to the same
 *      key ("G1b"), a read inconsistent with the transaction's own earlier
 *      reads and appends ("internal");
 *   3. version orders from the longest reads; reads that are not prefixes
 *      of the longest are "incompatible-order", and such keys give no
 *      dependencies (their order is unknown);
 *   4. the graph over ok and info transactions (failed ones did not
 *      happen; an info transaction may have, and only its observed effects
 *      give it outgoing edges); real-time edges come from a frontier of
 *      recently completed transactions, which keeps their number near
 *      (transactions x concurrency) while keeping every precedence
 *      reachable;
 *   5. strongly connected components (Tarjan). Inside each, the cycles
 *      without real-time edges are classified first, by sub-component,
 *      most severe class first: G0 (ww only), G1c (ww and wr), G-single
 *      (exactly one rw), G2 (two or more rw). A component with no such
 *      cycle needs real time, and gets the -realtime class with the same
 *      rules. One cycle is reported per (sub-)component, with the reason
 *      for each edge.
 * Any anomaly makes the history invalid. */
#include <stdlib.h>
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/buf.h"
#include "checker.h"
#include "graph.h"
#include "strmap.h"

#define NONE TKV_HNONE
#define NONRT (TKV_EDGE_WW | TKV_EDGE_WR | TKV_EDGE_RW)
#define SEARCH_BUDGET 50000000ull

enum mop_kind { MOP_APPEND, MOP_READ };

struct mop {
    enum mop_kind kind;
    size_t key;
    size_t elem;        /* append: its element */
    const json_t *list; /* read in an ok txn: what it read (NULL: null) */
    size_t first;       /* read in an ok txn: its elements in relems[] */
    size_t len;
    int known;  /* read in an ok txn */
    size_t txn; /* the txn it belongs to */
};

struct txn {
    size_t hop;
    enum tkv_htype type;
    size_t mop0;
    size_t nmops;
    size_t node; /* graph node, NONE for a failed txn */
};

struct elem {
    size_t key;
    size_t writer; /* txn that appended it, NONE if nobody */
    size_t writer_mop;
    int intermediate; /* its txn appended to the key again afterwards */
    int64_t pos;      /* in the key's version order, -1 if unobserved */
    const json_t *value;
    size_t seen; /* duplicate detection stamp */
};

struct key {
    const json_t *json;
    size_t *order; /* owned: element ids in version order */
    size_t norder;
    int incompatible;
    size_t longest; /* mop of the longest read, NONE if no read */
};

struct ctx {
    const struct tkv_history *h;
    struct tkv_result *res;
    struct txn *txns; /* owned */
    size_t ntxns;
    struct mop *mops; /* owned */
    size_t nmops, cap_mops;
    size_t *relems; /* owned: elements of reads */
    size_t nrelems, cap_relems;
    struct elem *elems; /* owned */
    size_t nelems, cap_elems;
    struct key *keys; /* owned */
    size_t nkeys, cap_keys;
    struct tkv_strmap key_ids;
    struct tkv_strmap elem_ids;
    struct tkv_buf tmp;
    size_t *txn_of_hop; /* owned */
    size_t *node_txn;   /* owned: node -> txn */
    size_t nnodes;
    size_t *rstart; /* owned: readers index, by state */
    size_t *readers;
    struct tkv_graph g;
    struct tkv_err *err;
    int64_t cycles;
};

/* The state a read ended in: its last element, or the key's initial
 * (empty) state, numbered after the elements. */
static size_t init_state(const struct ctx *c, size_t key)
{
    return c->nelems + key;
}

static int64_t name_of_txn(const struct ctx *c, size_t t)
{
    return tkv_hop_name(c->h, c->txns[t].hop);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t n;
    void *q;

    if (need <= *cap) {
        return 0;
    }
    n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    q = tkv_realloc(*p, n * size);
    if (q == NULL) {
        return TKV_ENOMEM;
    }
    *p = q;
    *cap = n;
    return 0;
}

static int intern_key(struct ctx *c, const json_t *k, size_t *out)
{
    int64_t id;

    tkv_buf_reset(&c->tmp);
    if (tkv_hvalue_canon(k, &c->tmp) != 0 ||
        (id = tkv_strmap_intern(&c->key_ids, c->tmp.data, c->tmp.len)) < 0) {
        return TKV_ENOMEM;
    }
    if ((size_t)id == c->nkeys) {
        if (grow((void **)&c->keys, &c->cap_keys, c->nkeys + 1,
                 sizeof *c->keys) != 0) {
            return TKV_ENOMEM;
        }
        c->keys[c->nkeys].json = k;
        c->keys[c->nkeys].order = NULL;
        c->keys[c->nkeys].norder = 0;
        c->keys[c->nkeys].incompatible = 0;
        c->keys[c->nkeys].longest = NONE;
        c->nkeys++;
    }
    *out = (size_t)id;
    return 0;
}

/* The element (key, v); *fresh = 1 when it was not known yet. */
static int intern_elem(struct ctx *c,
                       size_t key,
                       const json_t *v,
                       size_t *out,
                       int *fresh)
{
    uint64_t k64 = key;
    int64_t id;

    tkv_buf_reset(&c->tmp);
    if (tkv_buf_append(&c->tmp, &k64, sizeof k64) != 0 ||
        tkv_hvalue_canon(v, &c->tmp) != 0 ||
        (id = tkv_strmap_intern(&c->elem_ids, c->tmp.data, c->tmp.len)) < 0) {
        return TKV_ENOMEM;
    }
    *fresh = (size_t)id == c->nelems;
    if (*fresh) {
        struct elem *e;
        if (grow((void **)&c->elems, &c->cap_elems, c->nelems + 1,
                 sizeof *c->elems) != 0) {
            return TKV_ENOMEM;
        }
        e = &c->elems[c->nelems++];
        e->key = key;
        e->writer = NONE;
        e->writer_mop = NONE;
        e->intermediate = 0;
        e->pos = -1;
        e->value = v;
        e->seen = 0;
    }
    *out = (size_t)id;
    return 0;
}

static int bad_txn(struct ctx *c, size_t hop, const char *why)
{
    return tkv_err_set(c->err, TKV_EINVALID, "append txn at index %lld: %s",
                       (long long)tkv_hop_name(c->h, hop), why);
}

/* ---- 1. transactions ---- */

static int parse_txns(struct ctx *c)
{
    const struct tkv_history *h = c->h;
    size_t i;
    int rv;

    c->txns = tkv_malloc((h->nops ? h->nops : 1) * sizeof *c->txns);
    c->txn_of_hop = tkv_malloc((h->nops ? h->nops : 1) * sizeof(size_t));
    if (c->txns == NULL || c->txn_of_hop == NULL) {
        return TKV_ENOMEM;
    }
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        struct txn *t = &c->txns[c->ntxns];
        const json_t *src = o->type == TKV_HOK ? o->result : o->value;
        size_t k, j;
        json_t *m;

        c->txn_of_hop[i] = c->ntxns;
        if (strcmp(o->f, "txn") != 0) {
            return bad_txn(c, i, "f must be \"txn\"");
        }
        if (!json_is_array(o->value) || !json_is_array(src)) {
            return bad_txn(c, i,
                           o->type == TKV_HOK && json_is_array(o->value)
                               ? "ok value must be the txn with reads"
                               : "value must be an array of micro-ops");
        }
        t->hop = i;
        t->type = o->type;
        t->mop0 = c->nmops;
        t->nmops = json_array_size(src);
        t->node = NONE;
        if (grow((void **)&c->mops, &c->cap_mops, c->nmops + t->nmops,
                 sizeof *c->mops) != 0) {
            return TKV_ENOMEM;
        }
        json_array_foreach(src, k, m)
        {
            struct mop *mp = &c->mops[c->nmops + k];
            const char *f = json_string_value(json_array_get(m, 0));
            if (!json_is_array(m) || json_array_size(m) != 3 || f == NULL ||
                (strcmp(f, "append") != 0 && strcmp(f, "r") != 0)) {
                return bad_txn(c, i,
                               "micro-ops must be [\"append\"|\"r\", "
                               "key, value]");
            }
            memset(mp, 0, sizeof *mp);
            mp->kind = f[0] == 'a' ? MOP_APPEND : MOP_READ;
            mp->txn = c->ntxns;
            if ((rv = intern_key(c, json_array_get(m, 1), &mp->key)) != 0) {
                return rv;
            }
            if (mp->kind == MOP_APPEND) {
                int fresh;
                struct elem *e;
                rv = intern_elem(c, mp->key, json_array_get(m, 2), &mp->elem,
                                 &fresh);
                if (rv != 0) {
                    return rv;
                }
                e = &c->elems[mp->elem];
                if (e->writer != NONE) {
                    char msg[120];
                    snprintf(msg, sizeof msg,
                             "appends a value already appended to that key "
                             "at index %lld",
                             (long long)name_of_txn(c, e->writer));
                    return bad_txn(c, i, msg);
                }
                e->writer = c->ntxns;
                e->writer_mop = c->nmops + k;
            } else if (o->type == TKV_HOK) {
                const json_t *l = json_array_get(m, 2);
                if (!json_is_null(l) && !json_is_array(l)) {
                    return bad_txn(c, i, "a read must be null or a list");
                }
                mp->known = 1;
                mp->list = json_is_array(l) ? l : NULL;
            }
        }
        /* intermediate appends: followed by another append to the key */
        for (k = 0; k < t->nmops; k++) {
            struct mop *a = &c->mops[c->nmops + k];
            if (a->kind != MOP_APPEND) {
                continue;
            }
            for (j = k + 1; j < t->nmops; j++) {
                struct mop *b = &c->mops[c->nmops + j];
                if (b->kind == MOP_APPEND && b->key == a->key) {
                    c->elems[a->elem].intermediate = 1;
                    break;
                }
            }
        }
        c->nmops += t->nmops;
        c->ntxns++;
    }
    return 0;
}

/* ---- 2. reads ---- */

/* Equal element sequences (n may be 0, with relems still unallocated). */
static int same_elems(const size_t *a, const size_t *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static json_t *ops2(int64_t a, int64_t b)
{
    return json_pack("[I,I]", (json_int_t)a, (json_int_t)b);
}

static int resolve_reads(struct ctx *c)
{
    size_t t, k, stamp = 0;
    int rv;

    /* every element of every read gets an id first (an unknown one is a
     * garbage read), so that stamps can be compared */
    if (grow((void **)&c->relems, &c->cap_relems, 1, sizeof *c->relems)) {
        return TKV_ENOMEM;
    }
    for (t = 0; t < c->ntxns; t++) {
        struct txn *tx = &c->txns[t];
        for (k = tx->mop0; k < tx->mop0 + tx->nmops; k++) {
            struct mop *mp = &c->mops[k];
            size_t i;
            json_t *v;
            if (mp->kind != MOP_READ || !mp->known) {
                continue;
            }
            mp->len = mp->list != NULL ? json_array_size(mp->list) : 0;
            mp->first = c->nrelems;
            if (grow((void **)&c->relems, &c->cap_relems, c->nrelems + mp->len,
                     sizeof *c->relems) != 0) {
                return TKV_ENOMEM;
            }
            json_array_foreach(mp->list, i, v)
            {
                int fresh;
                rv = intern_elem(c, mp->key, v, &c->relems[c->nrelems + i],
                                 &fresh);
                if (rv != 0) {
                    return rv;
                }
            }
            c->nrelems += mp->len;
        }
    }
    for (t = 0; t < c->ntxns; t++) {
        struct txn *tx = &c->txns[t];
        int64_t me = name_of_txn(c, t);
        for (k = tx->mop0; k < tx->mop0 + tx->nmops; k++) {
            struct mop *mp = &c->mops[k];
            const json_t *kj;
            json_t *dups = NULL;
            size_t i;
            if (mp->kind != MOP_READ || !mp->known) {
                continue;
            }
            kj = c->keys[mp->key].json;
            stamp++;
            for (i = 0; i < mp->len; i++) {
                struct elem *e = &c->elems[c->relems[mp->first + i]];
                if (e->seen == stamp) {
                    if (dups == NULL) {
                        dups = json_array();
                    }
                    json_array_append(dups, (json_t *)e->value);
                    continue;
                }
                e->seen = stamp;
                if (e->writer == NONE) {
                    tkv_result_add(
                        c->res, "garbage-read",
                        json_pack("{s:[I], s:O, s:O, s:O}", "ops",
                                  (json_int_t)me, "key", kj, "element",
                                  e->value, "read", mp->list));
                } else if (c->txns[e->writer].type == TKV_HFAIL) {
                    tkv_result_add(
                        c->res, "G1a",
                        json_pack("{s:o, s:O, s:O, s:s}", "ops",
                                  ops2(name_of_txn(c, e->writer), me), "key",
                                  kj, "element", e->value, "explanation",
                                  "the read saw an append of a failed txn"));
                }
            }
            if (dups != NULL) {
                tkv_result_add(
                    c->res, "duplicate-elements",
                    json_pack("{s:[I], s:O, s:o, s:O}", "ops", (json_int_t)me,
                              "key", kj, "duplicates", dups, "read", mp->list));
            }
            if (mp->len > 0) {
                struct elem *last =
                    &c->elems[c->relems[mp->first + mp->len - 1]];
                if (last->writer != NONE && last->writer != t &&
                    last->intermediate) {
                    tkv_result_add(
                        c->res, "G1b",
                        json_pack("{s:o, s:O, s:O, s:s}", "ops",
                                  ops2(name_of_txn(c, last->writer), me), "key",
                                  kj, "element", last->value, "explanation",
                                  "the read ended in an append its txn "
                                  "followed with another append to the key"));
                }
            }
        }
    }
    return 0;
}

/* A read against the txn's own earlier micro-ops on the key: after a read
 * R and appends A, the next read must be R + A; with no earlier read it
 * must end with A. */
static int check_internal(struct ctx *c)
{
    size_t t, i, j;

    for (t = 0; t < c->ntxns; t++) {
        struct txn *tx = &c->txns[t];
        if (tx->type != TKV_HOK) {
            continue;
        }
        for (i = 0; i < tx->nmops; i++) {
            struct mop *r = &c->mops[tx->mop0 + i];
            struct mop *prev = NULL;
            size_t nappends = 0, a, start = 0;
            int ok = 1;
            json_t *expected;

            if (r->kind != MOP_READ) {
                continue;
            }
            for (j = i; j-- > 0;) {
                struct mop *m = &c->mops[tx->mop0 + j];
                if (m->key == r->key && m->kind == MOP_READ) {
                    prev = m;
                    start = j + 1;
                    break;
                }
            }
            for (j = start; j < i; j++) {
                struct mop *m = &c->mops[tx->mop0 + j];
                nappends += m->key == r->key && m->kind == MOP_APPEND;
            }
            if (prev == NULL && nappends == 0) {
                continue;
            }
            if (prev != NULL) {
                ok = r->len == prev->len + nappends &&
                     same_elems(c->relems + r->first, c->relems + prev->first,
                                prev->len);
                a = prev->len;
            } else {
                ok = r->len >= nappends;
                a = r->len - nappends;
            }
            for (j = start; ok && j < i; j++) {
                struct mop *m = &c->mops[tx->mop0 + j];
                if (m->key == r->key && m->kind == MOP_APPEND) {
                    ok = c->relems[r->first + a] == m->elem;
                    a++;
                }
            }
            if (ok) {
                continue;
            }
            expected = json_array();
            if (prev != NULL && prev->list != NULL) {
                json_array_extend(expected, (json_t *)prev->list);
            }
            for (j = start; j < i; j++) {
                struct mop *m = &c->mops[tx->mop0 + j];
                if (m->key == r->key && m->kind == MOP_APPEND) {
                    json_array_append(expected,
                                      (json_t *)c->elems[m->elem].value);
                }
            }
            tkv_result_add(
                c->res, "internal",
                json_pack("{s:[I], s:O, s:I, s:o, s:s, s:O}", "ops",
                          (json_int_t)name_of_txn(c, t), "key",
                          c->keys[r->key].json, "mop", (json_int_t)i,
                          "expected", expected, "expected_is",
                          prev != NULL ? "the whole list" : "a suffix", "read",
                          r->list != NULL ? r->list : json_null()));
        }
    }
    return 0;
}

/* ---- 3. version orders ---- */

static json_t *list_or_empty(const json_t *l)
{
    return l != NULL ? json_incref((json_t *)l) : json_array();
}

static int version_orders(struct ctx *c)
{
    size_t t, k, i;

    /* the longest read of each key (the first of that length) */
    for (t = 0; t < c->ntxns; t++) {
        struct txn *tx = &c->txns[t];
        for (k = tx->mop0; k < tx->mop0 + tx->nmops; k++) {
            struct mop *mp = &c->mops[k];
            struct key *ky = &c->keys[mp->key];
            if (mp->kind == MOP_READ && mp->known &&
                (ky->longest == NONE || mp->len > c->mops[ky->longest].len)) {
                ky->longest = k;
            }
        }
    }
    /* every read is a prefix of it */
    for (t = 0; t < c->ntxns; t++) {
        struct txn *tx = &c->txns[t];
        for (k = tx->mop0; k < tx->mop0 + tx->nmops; k++) {
            struct mop *mp = &c->mops[k];
            struct key *ky = &c->keys[mp->key];
            struct mop *lg;
            if (mp->kind != MOP_READ || !mp->known || k == ky->longest) {
                continue;
            }
            lg = &c->mops[ky->longest];
            if (same_elems(c->relems + mp->first, c->relems + lg->first,
                           mp->len)) {
                continue;
            }
            ky->incompatible = 1;
            tkv_result_add(
                c->res, "incompatible-order",
                json_pack("{s:o, s:O, s:[o,o]}", "ops",
                          ops2(name_of_txn(c, t), name_of_txn(c, lg->txn)),
                          "key", ky->json, "values", list_or_empty(mp->list),
                          list_or_empty(lg->list)));
        }
    }
    /* the order: the longest read's distinct elements */
    for (k = 0; k < c->nkeys; k++) {
        struct key *ky = &c->keys[k];
        struct mop *lg;
        if (ky->longest == NONE) {
            continue;
        }
        lg = &c->mops[ky->longest];
        ky->order = tkv_malloc((lg->len ? lg->len : 1) * sizeof(size_t));
        if (ky->order == NULL) {
            return TKV_ENOMEM;
        }
        for (i = 0; i < lg->len; i++) {
            size_t e = c->relems[lg->first + i];
            if (c->elems[e].pos < 0) {
                c->elems[e].pos = (int64_t)ky->norder;
                ky->order[ky->norder++] = e;
            }
        }
    }
    return 0;
}

/* The state just before an append in version order: the element before
 * it, or the key's initial state; for an append nobody read, the last
 * element anyone read. */
static size_t prev_state(const struct ctx *c, size_t elem)
{
    const struct elem *e = &c->elems[elem];
    const struct key *ky = &c->keys[e->key];

    if (e->pos > 0) {
        return ky->order[e->pos - 1];
    }
    if (e->pos == 0 || ky->norder == 0) {
        return init_state(c, e->key);
    }
    return ky->order[ky->norder - 1];
}

/* The state a read ended in. */
static size_t read_state(const struct ctx *c, const struct mop *mp)
{
    return mp->len > 0 ? c->relems[mp->first + mp->len - 1]
                       : init_state(c, mp->key);
}

/* ---- 4. the graph ---- */

static int build_readers(struct ctx *c)
{
    size_t nstates = c->nelems + c->nkeys;
    size_t t, k;

    c->rstart = tkv_calloc(nstates + 1, sizeof *c->rstart);
    if (c->rstart == NULL) {
        return TKV_ENOMEM;
    }
    for (k = 0; k < c->nmops; k++) {
        const struct mop *mp = &c->mops[k];
        if (mp->kind == MOP_READ && mp->known &&
            !c->keys[mp->key].incompatible) {
            c->rstart[read_state(c, mp) + 1]++;
        }
    }
    for (k = 0; k < nstates; k++) {
        c->rstart[k + 1] += c->rstart[k];
    }
    c->readers = tkv_malloc((c->rstart[nstates] ? c->rstart[nstates] : 1) *
                            sizeof *c->readers);
    if (c->readers == NULL) {
        return TKV_ENOMEM;
    }
    /* fill, using rstart[s] as a cursor, then shift back */
    for (t = 0; t < c->ntxns; t++) {
        const struct txn *tx = &c->txns[t];
        for (k = tx->mop0; k < tx->mop0 + tx->nmops; k++) {
            const struct mop *mp = &c->mops[k];
            if (mp->kind == MOP_READ && mp->known &&
                !c->keys[mp->key].incompatible) {
                c->readers[c->rstart[read_state(c, mp)]++] = t;
            }
        }
    }
    for (k = nstates; k > 0; k--) {
        c->rstart[k] = c->rstart[k - 1];
    }
    c->rstart[0] = 0;
    return 0;
}

static int add_dep_edges(struct ctx *c)
{
    size_t t, k, r;
    int rv;

    for (t = 0; t < c->ntxns; t++) {
        const struct txn *tx = &c->txns[t];
        if (tx->node == NONE) {
            continue;
        }
        for (k = tx->mop0; k < tx->mop0 + tx->nmops; k++) {
            const struct mop *mp = &c->mops[k];
            if (c->keys[mp->key].incompatible) {
                continue;
            }
            if (mp->kind == MOP_READ) {
                size_t w;
                if (!mp->known || mp->len == 0) {
                    continue;
                }
                w = c->elems[read_state(c, mp)].writer;
                if (w != NONE && c->txns[w].node != NONE &&
                    (rv = tkv_graph_add(&c->g, c->txns[w].node, tx->node,
                                        TKV_EDGE_WR)) != 0) {
                    return rv;
                }
            } else {
                size_t p = prev_state(c, mp->elem);
                if (p < c->nelems) {
                    size_t w = c->elems[p].writer;
                    if (w != NONE && c->txns[w].node != NONE &&
                        (rv = tkv_graph_add(&c->g, c->txns[w].node, tx->node,
                                            TKV_EDGE_WW)) != 0) {
                        return rv;
                    }
                }
                for (r = c->rstart[p]; r < c->rstart[p + 1]; r++) {
                    size_t rd = c->readers[r];
                    if ((rv = tkv_graph_add(&c->g, c->txns[rd].node, tx->node,
                                            TKV_EDGE_RW)) != 0) {
                        return rv;
                    }
                }
            }
        }
    }
    return 0;
}

/* Real-time edges through a frontier F of completed txns: an invoke gets
 * an edge from every member of F; a completion removes from F the members
 * that precede it (they stay reachable through it) and joins F. */
static int add_rt_edges(struct ctx *c)
{
    const struct tkv_history *h = c->h;
    size_t *frontier = tkv_malloc((c->nnodes ? c->nnodes : 1) * sizeof(size_t));
    size_t *where = tkv_malloc((c->nnodes ? c->nnodes : 1) * sizeof(size_t));
    size_t *pstart = tkv_malloc((c->nnodes ? c->nnodes : 1) * sizeof(size_t));
    size_t *pcount = tkv_malloc((c->nnodes ? c->nnodes : 1) * sizeof(size_t));
    size_t *preds = NULL;
    size_t npreds = 0, cap_preds = 0, nf = 0;
    size_t i, j;
    int rv = 0;

    if (frontier == NULL || where == NULL || pstart == NULL || pcount == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < c->nnodes; i++) {
        where[i] = NONE;
    }
    for (i = 0; i < h->nevents; i++) {
        const struct tkv_hevent *ev = &h->events[i];
        size_t node;
        if (ev->op == NONE) {
            continue;
        }
        node = c->txns[c->txn_of_hop[ev->op]].node;
        if (node == NONE) {
            continue;
        }
        if (ev->type == TKV_HINVOKE) {
            if (grow((void **)&preds, &cap_preds, npreds + nf, sizeof *preds) !=
                0) {
                rv = TKV_ENOMEM;
                goto out;
            }
            pstart[node] = npreds;
            pcount[node] = nf;
            for (j = 0; j < nf; j++) {
                preds[npreds++] = frontier[j];
                if ((rv = tkv_graph_add(&c->g, frontier[j], node,
                                        TKV_EDGE_RT)) != 0) {
                    goto out;
                }
            }
        } else if (ev->type == TKV_HOK) {
            for (j = 0; j < pcount[node]; j++) {
                size_t p = preds[pstart[node] + j];
                if (where[p] != NONE) {
                    size_t last = frontier[--nf];
                    frontier[where[p]] = last;
                    where[last] = where[p];
                    where[p] = NONE;
                }
            }
            where[node] = nf;
            frontier[nf++] = node;
        }
    }
out:
    tkv_free(frontier);
    tkv_free(where);
    tkv_free(pstart);
    tkv_free(pcount);
    tkv_free(preds);
    return rv;
}

/* ---- 5. cycles ---- */

/* Why a -> b (txns) has an edge of `type`, as JSON. */
static json_t *explain(const struct ctx *c, size_t a, size_t b, unsigned type)
{
    const struct txn *ta = &c->txns[a];
    const struct txn *tb = &c->txns[b];
    size_t k, j;

    for (k = tb->mop0; k < tb->mop0 + tb->nmops; k++) {
        const struct mop *mb = &c->mops[k];
        const json_t *kj = c->keys[mb->key].json;
        if (c->keys[mb->key].incompatible) {
            continue;
        }
        if (type == TKV_EDGE_WR && mb->kind == MOP_READ && mb->known &&
            mb->len > 0) {
            const struct elem *e = &c->elems[read_state(c, mb)];
            if (e->writer == a) {
                return json_pack("{s:s, s:O, s:O}", "type", "wr", "key", kj,
                                 "value", e->value);
            }
        } else if (mb->kind == MOP_APPEND &&
                   (type == TKV_EDGE_WW || type == TKV_EDGE_RW)) {
            size_t p = prev_state(c, mb->elem);
            const json_t *pv = p < c->nelems ? c->elems[p].value : json_null();
            if (type == TKV_EDGE_WW && p < c->nelems &&
                c->elems[p].writer == a) {
                return json_pack("{s:s, s:O, s:O, s:O}", "type", "ww", "key",
                                 kj, "value", pv, "next",
                                 c->elems[mb->elem].value);
            }
            if (type == TKV_EDGE_RW) {
                for (j = ta->mop0; j < ta->mop0 + ta->nmops; j++) {
                    const struct mop *ma = &c->mops[j];
                    if (ma->kind == MOP_READ && ma->known &&
                        ma->key == mb->key && read_state(c, ma) == p) {
                        return json_pack("{s:s, s:O, s:O, s:O}", "type", "rw",
                                         "key", kj, "value", pv, "next",
                                         c->elems[mb->elem].value);
                    }
                }
            }
        }
    }
    if (type == TKV_EDGE_RT) {
        const struct tkv_hop *oa = &c->h->ops[ta->hop];
        const struct tkv_hop *ob = &c->h->ops[tb->hop];
        return json_pack("{s:s, s:I, s:I}", "type", "rt", "completed",
                         (json_int_t)c->h->events[oa->complete].index,
                         "invoked", (json_int_t)c->h->events[ob->invoke].index);
    }
    return json_pack("{s:s}", "type", "?");
}

static unsigned pick_type(unsigned mask)
{
    static const unsigned prefer[] = {TKV_EDGE_WW, TKV_EDGE_WR, TKV_EDGE_RT,
                                      TKV_EDGE_RW};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (mask & prefer[i]) {
            return prefer[i];
        }
    }
    return 0;
}

/* A cycle found in a local graph: path[0..len-1], path[len-1] == path[0],
 * types[i] the type of path[i] -> path[i+1]. */
struct cycle {
    size_t *path; /* owned */
    size_t len;
    unsigned types[64];
    unsigned *more; /* owned, when len > 64 */
};

static unsigned *cycle_types(struct cycle *cy)
{
    return cy->more != NULL ? cy->more : cy->types;
}

static void cycle_free(struct cycle *cy)
{
    tkv_free(cy->path);
    tkv_free(cy->more);
    memset(cy, 0, sizeof *cy);
}

static int cycle_set_types(struct cycle *cy,
                           const struct tkv_graph *g,
                           unsigned allowed,
                           int first_rw)
{
    unsigned *ty;
    size_t i;

    if (cy->len > 64) {
        cy->more = tkv_malloc(cy->len * sizeof *cy->more);
        if (cy->more == NULL) {
            return TKV_ENOMEM;
        }
    }
    ty = cycle_types(cy);
    for (i = 0; i + 1 < cy->len; i++) {
        unsigned m = tkv_graph_edge_mask(g, cy->path[i], cy->path[i + 1]);
        ty[i] = (i == 0 && first_rw) ? TKV_EDGE_RW : pick_type(m & allowed);
    }
    return 0;
}

/* A cycle of lg using only `allowed` edges: 1 found, 0 none, or
 * TKV_ENOMEM. It lies in the smallest non-trivial component; a
 * breadth-first search from each of its nodes, while the budget lasts,
 * keeps the shortest (the first search always completes). */
static int find_cycle(const struct tkv_graph *lg,
                      unsigned allowed,
                      struct cycle *cy)
{
    size_t *comp = tkv_malloc((lg->n ? lg->n : 1) * sizeof *comp);
    size_t *size = NULL;
    size_t ncomp = 0, i, best = NONE;
    uint64_t budget = SEARCH_BUDGET;
    int rv;

    if (comp == NULL) {
        return TKV_ENOMEM;
    }
    rv = tkv_graph_scc(lg, allowed, comp, &ncomp);
    if (rv == 0) {
        size = tkv_calloc(ncomp ? ncomp : 1, sizeof *size);
        if (size == NULL) {
            rv = TKV_ENOMEM;
        }
    }
    if (rv == 0) {
        for (i = 0; i < lg->n; i++) {
            size[comp[i]]++;
        }
        for (i = 0; i < lg->n; i++) {
            if (size[comp[i]] > 1 &&
                (best == NONE || size[comp[i]] < size[best])) {
                best = comp[i];
            }
        }
        for (i = 0; best != NONE && i < lg->n && cy->len != 3; i++) {
            uint64_t unlimited = UINT64_MAX;
            size_t *p, len;
            if (comp[i] != best) {
                continue;
            }
            rv = tkv_graph_path(lg, i, i, allowed,
                                cy->path == NULL ? &unlimited : &budget, &p,
                                &len);
            if (rv < 0) {
                break;
            }
            if (rv == 1 && (cy->path == NULL || len < cy->len)) {
                tkv_free(cy->path);
                cy->path = p;
                cy->len = len;
            } else {
                tkv_free(p);
            }
            rv = 0;
            if (budget == 0) {
                break;
            }
        }
        if (rv == 0 && cy->path != NULL) {
            rv = cycle_set_types(cy, lg, allowed, 0);
            rv = rv == 0 ? 1 : rv;
        }
    }
    tkv_free(comp);
    tkv_free(size);
    return rv;
}

/* A cycle with exactly one rw edge, the rest in `rest`: for each rw edge
 * a -> b, a shortest path b ~> a; the shortest cycle found while the
 * budget lasts. 1, 0, TKV_ENOMEM; *exhausted set when the budget ran out
 * before any was found. */
static int find_single(const struct tkv_graph *lg,
                       unsigned rest,
                       struct cycle *cy,
                       int *exhausted)
{
    uint64_t budget = SEARCH_BUDGET;
    size_t a, e;
    size_t *best = NULL, best_len = 0, best_a = 0;
    int rv = 0;

    *exhausted = 0;
    for (a = 0; a < lg->n && budget > 0 && best_len != 2; a++) {
        for (e = lg->start[a]; e < lg->start[a + 1] && budget > 0; e++) {
            size_t *p, len;
            if (!(lg->mask[e] & TKV_EDGE_RW)) {
                continue;
            }
            rv = tkv_graph_path(lg, lg->to[e], a, rest, &budget, &p, &len);
            if (rv < 0) {
                tkv_free(best);
                return rv;
            }
            if (rv == 1 && (best == NULL || len < best_len)) {
                tkv_free(best);
                best = p;
                best_len = len;
                best_a = a;
            } else if (rv == 1) {
                tkv_free(p);
            }
        }
    }
    if (best == NULL) {
        *exhausted = budget == 0;
        return 0;
    }
    cy->path = tkv_malloc((best_len + 1) * sizeof *cy->path);
    if (cy->path == NULL) {
        tkv_free(best);
        return TKV_ENOMEM;
    }
    cy->path[0] = best_a;
    memcpy(cy->path + 1, best, best_len * sizeof *best);
    cy->len = best_len + 1;
    tkv_free(best);
    rv = cycle_set_types(cy, lg, rest, 1);
    return rv == 0 ? 1 : rv;
}

static const char *edge_name(unsigned t)
{
    switch (t) {
        case TKV_EDGE_WW:
            return "ww";
        case TKV_EDGE_WR:
            return "wr";
        case TKV_EDGE_RW:
            return "rw";
        default:
            return "rt";
    }
}

/* Report cycle cy of a local graph whose node i is global node
 * global[i]. */
static void report_cycle(struct ctx *c,
                         const char *type,
                         const struct cycle *cy,
                         const size_t *global,
                         const char *note)
{
    json_t *ops = json_array();
    json_t *steps = json_array();
    const unsigned *ty = cy->more != NULL ? cy->more : cy->types;
    json_t *a;
    size_t i;

    for (i = 0; i + 1 < cy->len; i++) {
        size_t ta = c->node_txn[global[cy->path[i]]];
        size_t tb = c->node_txn[global[cy->path[i + 1]]];
        json_t *why = explain(c, ta, tb, ty[i]);
        json_t *step = json_pack(
            "{s:I, s:I, s:s}", "from", (json_int_t)name_of_txn(c, ta), "to",
            (json_int_t)name_of_txn(c, tb), "type", edge_name(ty[i]));
        json_array_append_new(ops, json_integer(name_of_txn(c, ta)));
        if (step != NULL && why != NULL) {
            json_object_del(why, "type");
            json_object_update(step, why);
        }
        json_decref(why);
        json_array_append_new(steps, step);
    }
    a = json_pack("{s:o, s:o}", "ops", ops, "cycle", steps);
    if (a != NULL && note != NULL) {
        json_object_set_new(a, "note", json_string(note));
    }
    c->cycles++;
    tkv_result_add(c->res, type, a);
}

static const char *budget_note =
    "search budget exhausted before a cycle with one rw edge was found; "
    "there may be one";

/* Classify the cycles of one non-trivial SCC, given as global nodes. */
static int classify(struct ctx *c,
                    const size_t *nodes,
                    size_t k,
                    size_t *gscratch)
{
    struct tkv_graph lg, dg;
    size_t *comp = tkv_malloc(k * sizeof *comp);
    size_t *lscratch = tkv_malloc(k * sizeof *lscratch);
    size_t *members = tkv_malloc(k * sizeof *members);
    size_t *global = tkv_malloc(k * sizeof *global);
    size_t ncomp = 0, i, j, m, nontrivial = 0;
    struct cycle cy;
    int exhausted = 0;
    int rv;

    memset(&cy, 0, sizeof cy);
    memset(&lg, 0, sizeof lg);
    if (comp == NULL || lscratch == NULL || members == NULL || global == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < k; i++) {
        lscratch[i] = SIZE_MAX;
    }
    rv = tkv_graph_induced(&c->g, nodes, k, TKV_EDGE_ALL, gscratch, &lg);
    if (rv != 0) {
        goto out;
    }
    /* cycles without real time, per sub-component */
    rv = tkv_graph_scc(&lg, NONRT, comp, &ncomp);
    for (j = 0; rv == 0 && j < ncomp; j++) {
        m = 0;
        for (i = 0; i < k; i++) {
            if (comp[i] == j) {
                members[m++] = i;
            }
        }
        if (m < 2) {
            continue;
        }
        nontrivial++;
        rv = tkv_graph_induced(&lg, members, m, NONRT, lscratch, &dg);
        if (rv != 0) {
            break;
        }
        for (i = 0; i < m; i++) {
            global[i] = nodes[members[i]];
        }
        exhausted = 0;
        if ((rv = find_cycle(&dg, TKV_EDGE_WW, &cy)) == 1) {
            report_cycle(c, "G0", &cy, global, NULL);
        } else if (rv == 0 && (rv = find_cycle(&dg, TKV_EDGE_WW | TKV_EDGE_WR,
                                               &cy)) == 1) {
            report_cycle(c, "G1c", &cy, global, NULL);
        } else if (rv == 0 && (rv = find_single(&dg, TKV_EDGE_WW | TKV_EDGE_WR,
                                                &cy, &exhausted)) == 1) {
            report_cycle(c, "G-single", &cy, global, NULL);
        } else if (rv == 0 && (rv = find_cycle(&dg, NONRT, &cy)) == 1) {
            report_cycle(c, "G2", &cy, global, exhausted ? budget_note : NULL);
        }
        cycle_free(&cy);
        tkv_graph_close(&dg);
        rv = rv < 0 ? rv : 0;
    }
    if (rv != 0 || nontrivial > 0) {
        goto out;
    }
    /* only cycles through real-time edges */
    if ((rv = find_cycle(&lg, TKV_EDGE_WW | TKV_EDGE_RT, &cy)) == 1) {
        report_cycle(c, "G0-realtime", &cy, nodes, NULL);
    } else if (rv == 0 &&
               (rv = find_cycle(&lg, TKV_EDGE_WW | TKV_EDGE_WR | TKV_EDGE_RT,
                                &cy)) == 1) {
        report_cycle(c, "G1c-realtime", &cy, nodes, NULL);
    } else if (rv == 0 &&
               (rv = find_single(&lg, TKV_EDGE_WW | TKV_EDGE_WR | TKV_EDGE_RT,
                                 &cy, &exhausted)) == 1) {
        report_cycle(c, "G-single-realtime", &cy, nodes, NULL);
    } else if (rv == 0 && (rv = find_cycle(&lg, TKV_EDGE_ALL, &cy)) == 1) {
        report_cycle(c, "G2-realtime", &cy, nodes,
                     exhausted ? budget_note : NULL);
    }
    cycle_free(&cy);
    rv = rv < 0 ? rv : 0;
out:
    tkv_graph_close(&lg);
    tkv_free(comp);
    tkv_free(lscratch);
    tkv_free(members);
    tkv_free(global);
    return rv;
}

static int find_cycles(struct ctx *c, int64_t *nsccs)
{
    size_t n = c->nnodes;
    size_t *comp = tkv_malloc((n ? n : 1) * sizeof *comp);
    size_t *gscratch = tkv_malloc((n ? n : 1) * sizeof *gscratch);
    size_t *cstart = NULL, *members = NULL;
    size_t ncomp = 0, i;
    int rv;

    *nsccs = 0;
    if (comp == NULL || gscratch == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    rv = tkv_graph_scc(&c->g, TKV_EDGE_ALL, comp, &ncomp);
    if (rv != 0) {
        goto out;
    }
    cstart = tkv_calloc(ncomp + 1, sizeof *cstart);
    members = tkv_malloc((n ? n : 1) * sizeof *members);
    if (cstart == NULL || members == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        gscratch[i] = SIZE_MAX;
        cstart[comp[i] + 1]++;
    }
    for (i = 0; i < ncomp; i++) {
        cstart[i + 1] += cstart[i];
    }
    for (i = 0; i < n; i++) {
        members[cstart[comp[i]]++] = i; /* in node order within each */
    }
    for (i = ncomp; i > 0; i--) {
        cstart[i] = cstart[i - 1];
    }
    cstart[0] = 0;
    /* components in order of their first node, so the report does not
     * depend on Tarjan's numbering */
    for (i = 0; i < n && rv == 0; i++) {
        size_t cid = comp[i];
        size_t size = cstart[cid + 1] - cstart[cid];
        if (size < 2 || members[cstart[cid]] != i) {
            continue;
        }
        (*nsccs)++;
        rv = classify(c, &members[cstart[cid]], size, gscratch);
    }
out:
    tkv_free(comp);
    tkv_free(gscratch);
    tkv_free(cstart);
    tkv_free(members);
    return rv;
}

static void ctx_close(struct ctx *c)
{
    size_t k;

    for (k = 0; k < c->nkeys; k++) {
        tkv_free(c->keys[k].order);
    }
    tkv_free(c->keys);
    tkv_free(c->txns);
    tkv_free(c->mops);
    tkv_free(c->relems);
    tkv_free(c->elems);
    tkv_free(c->txn_of_hop);
    tkv_free(c->node_txn);
    tkv_free(c->rstart);
    tkv_free(c->readers);
    tkv_graph_close(&c->g);
    tkv_strmap_close(&c->key_ids);
    tkv_strmap_close(&c->elem_ids);
    tkv_buf_close(&c->tmp);
}

int tkv_check_append(const struct tkv_history *h,
                     const json_t *opts,
                     struct tkv_result *res,
                     struct tkv_err *err)
{
    struct ctx *c = tkv_calloc(1, sizeof *c);
    int64_t counts[4] = {0, 0, 0, 0};
    int64_t nsccs = 0;
    size_t t;
    int rv;

    if (c == NULL) {
        return TKV_ENOMEM;
    }
    c->h = h;
    c->res = res;
    c->err = err;
    tkv_strmap_init(&c->key_ids);
    tkv_strmap_init(&c->elem_ids);
    tkv_buf_init(&c->tmp);

    if ((rv = parse_txns(c)) != 0 || (rv = resolve_reads(c)) != 0 ||
        (rv = check_internal(c)) != 0 || (rv = version_orders(c)) != 0 ||
        (rv = build_readers(c)) != 0) {
        goto out;
    }
    c->node_txn = tkv_malloc((c->ntxns ? c->ntxns : 1) * sizeof(size_t));
    if (c->node_txn == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (t = 0; t < c->ntxns; t++) {
        counts[c->txns[t].type]++;
        if (c->txns[t].type != TKV_HFAIL) {
            c->txns[t].node = c->nnodes;
            c->node_txn[c->nnodes++] = t;
        }
    }
    if ((rv = tkv_graph_init(&c->g, c->nnodes)) != 0 ||
        (rv = add_dep_edges(c)) != 0 || (rv = add_rt_edges(c)) != 0 ||
        (rv = tkv_graph_build(&c->g)) != 0 ||
        (rv = find_cycles(c, &nsccs)) != 0) {
        goto out;
    }
    tkv_result_stat(
        res, "txns",
        json_pack("{s:I, s:I, s:I}", "ok", (json_int_t)counts[TKV_HOK], "fail",
                  (json_int_t)counts[TKV_HFAIL], "info",
                  (json_int_t)counts[TKV_HINFO]));
    tkv_result_stat_int(res, "keys", (int64_t)c->nkeys);
    tkv_result_stat_int(res, "elements", (int64_t)c->nelems);
    tkv_result_stat_int(res, "graph_nodes", (int64_t)c->nnodes);
    tkv_result_stat_int(res, "graph_edges", (int64_t)c->g.nedges);
    tkv_result_stat_int(res, "cyclic_sccs", nsccs);
    tkv_result_stat_int(res, "cycles_reported", c->cycles);
out:
    ctx_close(c);
    tkv_free(c);
    return rv;
}
