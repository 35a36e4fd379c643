/* WGL linearizability search (see wgl.h).
 *
 * Entries: node 0 is the head sentinel, then 2n entries sorted by time (a
 * call at its call position, a return at its return position; returns at
 * TKV_WGL_NEVER go last). The loop walks the list from the head:
 *   - at a call, try the op in the current state; if the model allows it
 *     and (linearized + op, new state) is new to the cache, push (op, old
 *     state), lift the op's two entries and restart from the head;
 *     otherwise move to the next entry;
 *   - at a return of an op with a real return, that op should already have
 *     been linearized: backtrack (pop, unlift, continue after the popped
 *     call), or fail when nothing is left to pop;
 *   - at a NEVER return (or the end), every op that had to take effect
 *     has: success.
 * The cache key is the linearized set as a bitset plus the state, hashed
 * incrementally (Zobrist: a random word per op, xored in and out). */
#include "wgl.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/error.h"

#define NIL UINT32_MAX

struct node {
    uint32_t prev;
    uint32_t next;
    uint32_t op;
    uint32_t match; /* for a call: its return node; NIL for a return */
};

struct sort_entry {
    uint64_t time;
    uint32_t op;
    uint32_t is_return;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct sort_entry *x = a;
    const struct sort_entry *y = b;

    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    /* only NEVER returns share a time; keep them in op order */
    if (x->op != y->op) {
        return x->op < y->op ? -1 : 1;
    }
    return (int)x->is_return - (int)y->is_return;
}

/* The cache: a hash set of (bitset, state) records. */
struct cache {
    uint64_t *pool; /* owned: records of (words + 1) uint64 */
    size_t nrec;
    size_t cap_rec;
    size_t words;
    uint32_t *table;  /* owned: record index + 1, 0 = empty */
    uint64_t *hashes; /* owned: hash per table slot */
    size_t tcap;
};

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t *record(struct cache *c, size_t i)
{
    return c->pool + i * (c->words + 1);
}

static int cache_grow_table(struct cache *c)
{
    size_t cap = c->tcap ? c->tcap * 2 : 1024;
    uint32_t *t = tkv_calloc(cap, sizeof *t);
    uint64_t *hs = tkv_malloc(cap * sizeof *hs);
    size_t i;

    if (t == NULL || hs == NULL) {
        tkv_free(t);
        tkv_free(hs);
        return TKV_ENOMEM;
    }
    for (i = 0; i < c->tcap; i++) {
        if (c->table[i] != 0) {
            size_t j = (size_t)c->hashes[i] & (cap - 1);
            while (t[j] != 0) {
                j = (j + 1) & (cap - 1);
            }
            t[j] = c->table[i];
            hs[j] = c->hashes[i];
        }
    }
    tkv_free(c->table);
    tkv_free(c->hashes);
    c->table = t;
    c->hashes = hs;
    c->tcap = cap;
    return 0;
}

/* Insert (bits, state) unless present: 1 inserted, 0 present, or
 * TKV_ENOMEM. */
static int cache_insert(struct cache *c,
                        const uint64_t *bits,
                        int64_t state,
                        uint64_t hash)
{
    size_t j;
    uint64_t *r;

    if ((c->nrec + 1) * 2 > c->tcap && cache_grow_table(c) != 0) {
        return TKV_ENOMEM;
    }
    j = (size_t)hash & (c->tcap - 1);
    while (c->table[j] != 0) {
        if (c->hashes[j] == hash) {
            r = record(c, c->table[j] - 1);
            if ((int64_t)r[c->words] == state &&
                memcmp(r, bits, c->words * sizeof *bits) == 0) {
                return 0;
            }
        }
        j = (j + 1) & (c->tcap - 1);
    }
    if (c->nrec == c->cap_rec) {
        size_t cap = c->cap_rec ? c->cap_rec * 2 : 256;
        uint64_t *p = tkv_realloc(c->pool, cap * (c->words + 1) * sizeof *p);
        if (p == NULL) {
            return TKV_ENOMEM;
        }
        c->pool = p;
        c->cap_rec = cap;
    }
    r = record(c, c->nrec);
    memcpy(r, bits, c->words * sizeof *bits);
    r[c->words] = (uint64_t)state;
    c->table[j] = (uint32_t)(c->nrec + 1);
    c->hashes[j] = hash;
    c->nrec++;
    return 1;
}

static uint64_t cache_bytes(const struct cache *c)
{
    return (uint64_t)c->cap_rec * (c->words + 1) * 8 + (uint64_t)c->tcap * 12;
}

static void lift(struct node *nodes, uint32_t call)
{
    struct node *c = &nodes[call];
    struct node *r = &nodes[c->match];

    nodes[c->prev].next = c->next;
    nodes[c->next].prev = c->prev; /* a call is always followed */
    nodes[r->prev].next = r->next;
    if (r->next != NIL) {
        nodes[r->next].prev = r->prev;
    }
}

static void unlift(struct node *nodes, uint32_t call)
{
    struct node *c = &nodes[call];
    uint32_t ret = c->match;
    struct node *r = &nodes[ret];

    nodes[r->prev].next = ret;
    if (r->next != NIL) {
        nodes[r->next].prev = ret;
    }
    nodes[c->prev].next = call;
    nodes[c->next].prev = call;
}

struct frame {
    uint32_t call;
    int64_t state;
};

int tkv_wgl_check(const struct tkv_wgl_op *ops,
                  size_t n,
                  int64_t init,
                  tkv_wgl_step_fn step,
                  void *ctx,
                  const struct tkv_wgl_limits *limits,
                  enum tkv_wgl_verdict *verdict,
                  uint64_t *steps)
{
    struct sort_entry *sorted = NULL;
    struct node *nodes = NULL;
    uint32_t *node_of_call = NULL;
    uint64_t *zob = NULL;
    uint64_t *bits = NULL;
    struct frame *stack = NULL;
    struct cache c;
    size_t sp = 0;
    size_t i;
    uint64_t nsteps = 0;
    uint64_t hash = 0;
    int64_t state = init;
    uint32_t cur;
    int rv = 0;

    memset(&c, 0, sizeof c);
    *verdict = TKV_WGL_LINEARIZABLE;
    if (n == 0) {
        goto out;
    }
    if (n >= NIL / 2) {
        *verdict = TKV_WGL_UNKNOWN;
        goto out;
    }
    sorted = tkv_malloc(2 * n * sizeof *sorted);
    nodes = tkv_malloc((2 * n + 1) * sizeof *nodes);
    node_of_call = tkv_malloc(n * sizeof *node_of_call);
    zob = tkv_malloc(n * sizeof *zob);
    c.words = (n + 63) / 64;
    bits = tkv_calloc(c.words, sizeof *bits);
    stack = tkv_malloc(n * sizeof *stack);
    if (sorted == NULL || nodes == NULL || node_of_call == NULL ||
        zob == NULL || bits == NULL || stack == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        sorted[2 * i].time = ops[i].call;
        sorted[2 * i].op = (uint32_t)i;
        sorted[2 * i].is_return = 0;
        sorted[2 * i + 1].time = ops[i].ret;
        sorted[2 * i + 1].op = (uint32_t)i;
        sorted[2 * i + 1].is_return = 1;
        zob[i] = mix64(i * 0x2545F4914F6CDD1Dull + 1);
    }
    qsort(sorted, 2 * n, sizeof *sorted, cmp_entry);
    /* node 0 is the head; node k + 1 is sorted[k] */
    nodes[0].prev = NIL;
    nodes[0].next = 1;
    nodes[0].op = NIL;
    nodes[0].match = NIL;
    for (i = 0; i < 2 * n; i++) {
        struct node *nd = &nodes[i + 1];
        nd->prev = (uint32_t)i;
        nd->next = i + 1 < 2 * n ? (uint32_t)(i + 2) : NIL;
        nd->op = sorted[i].op;
        nd->match = NIL;
        if (!sorted[i].is_return) {
            node_of_call[sorted[i].op] = (uint32_t)(i + 1);
        } else {
            nodes[node_of_call[sorted[i].op]].match = (uint32_t)(i + 1);
        }
    }

    cur = nodes[0].next;
    while (cur != NIL) {
        struct node *nd = &nodes[cur];

        nsteps++;
        if (limits != NULL &&
            ((limits->max_steps && nsteps > limits->max_steps) ||
             (limits->max_cache_bytes &&
              cache_bytes(&c) > limits->max_cache_bytes))) {
            *verdict = TKV_WGL_UNKNOWN;
            goto out;
        }
        if (nd->match != NIL) {
            /* a call: try to linearize it here */
            int64_t next;
            if (step(ctx, nd->op, state, &next)) {
                uint64_t h2 = hash ^ zob[nd->op];
                int ins;
                bits[nd->op / 64] |= 1ull << (nd->op % 64);
                ins = cache_insert(&c, bits, next, h2 ^ mix64((uint64_t)next));
                if (ins < 0) {
                    rv = ins;
                    goto out;
                }
                if (ins) {
                    stack[sp].call = cur;
                    stack[sp].state = state;
                    sp++;
                    state = next;
                    hash = h2;
                    lift(nodes, cur);
                    cur = nodes[0].next;
                    continue;
                }
                bits[nd->op / 64] &= ~(1ull << (nd->op % 64));
            }
            cur = nd->next;
            continue;
        }
        /* a return */
        if (ops[nd->op].ret == TKV_WGL_NEVER) {
            break; /* only ops that may never happen are left */
        }
        if (sp == 0) {
            *verdict = TKV_WGL_ILLEGAL;
            goto out;
        }
        sp--;
        cur = stack[sp].call;
        state = stack[sp].state;
        hash ^= zob[nodes[cur].op];
        bits[nodes[cur].op / 64] &= ~(1ull << (nodes[cur].op % 64));
        unlift(nodes, cur);
        cur = nodes[cur].next;
    }
out:
    if (steps != NULL) {
        *steps = nsteps;
    }
    tkv_free(sorted);
    tkv_free(nodes);
    tkv_free(node_of_call);
    tkv_free(zob);
    tkv_free(bits);
    tkv_free(stack);
    tkv_free(c.pool);
    tkv_free(c.table);
    tkv_free(c.hashes);
    return rv;
}
