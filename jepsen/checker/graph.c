/* Typed digraphs: CSR build, iterative Tarjan, BFS paths (see graph.h).
 *
 * Tarjan is written with an explicit stack: histories have tens of
 * thousands of transactions and real-time edges chain them, so recursion
 * would overflow the C stack. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/error.h"

int tkv_graph_init(struct tkv_graph *g, size_t n)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    g->start = tkv_calloc(n + 1, sizeof *g->start);
    return g->start == NULL ? TKV_ENOMEM : 0;
}

void tkv_graph_close(struct tkv_graph *g)
{
    tkv_free(g->start);
    tkv_free(g->to);
    tkv_free(g->mask);
    tkv_free(g->pending);
    memset(g, 0, sizeof *g);
}

int tkv_graph_add(struct tkv_graph *g, size_t from, size_t to, unsigned mask)
{
    if (from == to) {
        return 0;
    }
    if (g->npending == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        struct tkv_graph_edge *p = tkv_realloc(g->pending, cap * sizeof *p);
        if (p == NULL) {
            return TKV_ENOMEM;
        }
        g->pending = p;
        g->cap = cap;
    }
    g->pending[g->npending].from = (uint32_t)from;
    g->pending[g->npending].to = (uint32_t)to;
    g->pending[g->npending].mask = mask;
    g->npending++;
    return 0;
}

static int cmp_edge(const void *a, const void *b)
{
    const struct tkv_graph_edge *x = a;
    const struct tkv_graph_edge *y = b;

    if (x->from != y->from) {
        return x->from < y->from ? -1 : 1;
    }
    if (x->to != y->to) {
        return x->to < y->to ? -1 : 1;
    }
    return 0;
}

int tkv_graph_build(struct tkv_graph *g)
{
    size_t i;
    size_t k = 0;

    if (g->npending > 0) {
        qsort(g->pending, g->npending, sizeof *g->pending, cmp_edge);
    }
    /* merge repeats of (from, to) */
    for (i = 0; i < g->npending; i++) {
        if (k > 0 && g->pending[k - 1].from == g->pending[i].from &&
            g->pending[k - 1].to == g->pending[i].to) {
            g->pending[k - 1].mask |= g->pending[i].mask;
        } else {
            g->pending[k++] = g->pending[i];
        }
    }
    g->to = tkv_malloc((k ? k : 1) * sizeof *g->to);
    g->mask = tkv_malloc(k ? k : 1);
    if (g->to == NULL || g->mask == NULL) {
        return TKV_ENOMEM;
    }
    memset(g->start, 0, (g->n + 1) * sizeof *g->start);
    for (i = 0; i < k; i++) {
        g->start[g->pending[i].from + 1]++;
        g->to[i] = g->pending[i].to;
        g->mask[i] = (uint8_t)g->pending[i].mask;
    }
    for (i = 0; i < g->n; i++) {
        g->start[i + 1] += g->start[i];
    }
    g->nedges = k;
    tkv_free(g->pending);
    g->pending = NULL;
    g->npending = g->cap = 0;
    return 0;
}

unsigned tkv_graph_edge_mask(const struct tkv_graph *g, size_t from, size_t to)
{
    size_t lo = g->start[from];
    size_t hi = g->start[from + 1];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->to[mid] < to) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < g->start[from + 1] && g->to[lo] == to ? g->mask[lo] : 0;
}

#define UNVISITED SIZE_MAX

int tkv_graph_scc(const struct tkv_graph *g,
                  unsigned allowed,
                  size_t *comp,
                  size_t *ncomp)
{
    size_t n = g->n;
    size_t *index = tkv_malloc((n ? n : 1) * sizeof *index);
    size_t *low = tkv_malloc((n ? n : 1) * sizeof *low);
    size_t *stack = tkv_malloc((n ? n : 1) * sizeof *stack);
    size_t *call = tkv_malloc((n ? n : 1) * sizeof *call); /* nodes */
    size_t *edge = tkv_malloc((n ? n : 1) * sizeof *edge); /* next edge */
    unsigned char *onstack = tkv_calloc(n ? n : 1, 1);
    size_t next_index = 0;
    size_t sp = 0;
    size_t nc = 0;
    size_t root;
    int rv = 0;

    if (index == NULL || low == NULL || stack == NULL || call == NULL ||
        edge == NULL || onstack == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (root = 0; root < n; root++) {
        index[root] = UNVISITED;
    }
    for (root = 0; root < n; root++) {
        size_t depth = 0;

        if (index[root] != UNVISITED) {
            continue;
        }
        call[depth] = root;
        edge[depth] = g->start[root];
        depth = 1;
        index[root] = low[root] = next_index++;
        stack[sp++] = root;
        onstack[root] = 1;
        while (depth > 0) {
            size_t v = call[depth - 1];
            size_t e = edge[depth - 1];

            if (e < g->start[v + 1]) {
                size_t w = g->to[e];
                edge[depth - 1] = e + 1;
                if (!(g->mask[e] & allowed)) {
                    continue;
                }
                if (index[w] == UNVISITED) {
                    index[w] = low[w] = next_index++;
                    stack[sp++] = w;
                    onstack[w] = 1;
                    call[depth] = w;
                    edge[depth] = g->start[w];
                    depth++;
                } else if (onstack[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            /* v is done */
            if (low[v] == index[v]) {
                size_t w;
                do {
                    w = stack[--sp];
                    onstack[w] = 0;
                    comp[w] = nc;
                } while (w != v);
                nc++;
            }
            depth--;
            if (depth > 0) {
                size_t u = call[depth - 1];
                if (low[v] < low[u]) {
                    low[u] = low[v];
                }
            }
        }
    }
    *ncomp = nc;
out:
    tkv_free(index);
    tkv_free(low);
    tkv_free(stack);
    tkv_free(call);
    tkv_free(edge);
    tkv_free(onstack);
    return rv;
}

int tkv_graph_induced(const struct tkv_graph *g,
                      const size_t *nodes,
                      size_t k,
                      unsigned allowed,
                      size_t *scratch,
                      struct tkv_graph *out)
{
    size_t i;
    int rv;

    rv = tkv_graph_init(out, k);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < k; i++) {
        scratch[nodes[i]] = i;
    }
    for (i = 0; i < k && rv == 0; i++) {
        size_t e;
        for (e = g->start[nodes[i]]; e < g->start[nodes[i] + 1]; e++) {
            size_t w = scratch[g->to[e]];
            unsigned m = g->mask[e] & allowed;
            if (w != SIZE_MAX && m != 0) {
                rv = tkv_graph_add(out, i, w, m);
                if (rv != 0) {
                    break;
                }
            }
        }
    }
    for (i = 0; i < k; i++) {
        scratch[nodes[i]] = SIZE_MAX;
    }
    if (rv == 0) {
        rv = tkv_graph_build(out);
    }
    if (rv != 0) {
        tkv_graph_close(out);
    }
    return rv;
}

int tkv_graph_path(const struct tkv_graph *g,
                   size_t src,
                   size_t dst,
                   unsigned allowed,
                   uint64_t *budget,
                   size_t **path,
                   size_t *len)
{
    size_t n = g->n;
    size_t *parent = tkv_malloc((n ? n : 1) * sizeof *parent);
    size_t *queue = tkv_malloc((n ? n : 1) * sizeof *queue);
    size_t head = 0;
    size_t tail = 0;
    size_t found = 0;
    size_t i;
    int rv = 0;

    *path = NULL;
    *len = 0;
    if (parent == NULL || queue == NULL) {
        rv = TKV_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        parent[i] = UNVISITED;
    }
    /* src is the root; dst counts as reached only through an edge, so a
     * cycle (src == dst) is found too */
    queue[tail++] = src;
    while (head < tail && !found) {
        size_t v = queue[head++];
        size_t e;
        for (e = g->start[v]; e < g->start[v + 1]; e++) {
            size_t w = g->to[e];
            if (*budget == 0) {
                goto out;
            }
            (*budget)--;
            if (!(g->mask[e] & allowed)) {
                continue;
            }
            if (w == dst) {
                parent[w] = v; /* for src == dst this overwrites nothing */
                found = 1;
                break;
            }
            if (parent[w] == UNVISITED && w != src) {
                parent[w] = v;
                queue[tail++] = w;
            }
        }
    }
    if (found) {
        size_t count = 1;
        size_t v = dst;
        /* walk back from dst to src; dst's parent chain ends at src */
        do {
            v = parent[v];
            count++;
        } while (v != src);
        *path = tkv_malloc(count * sizeof **path);
        if (*path == NULL) {
            rv = TKV_ENOMEM;
            goto out;
        }
        *len = count;
        v = dst;
        for (i = count; i-- > 0;) {
            (*path)[i] = v;
            if (i > 0) {
                v = parent[v];
            }
        }
        rv = 1;
    }
out:
    tkv_free(parent);
    tkv_free(queue);
    return rv;
}
