/* Directed graphs of transactions with typed edges, for the append checker:
 * strongly connected components (Tarjan, iterative) and shortest paths
 * restricted to some edge types.
 *
 * Build with tkv_graph_add() (edges may repeat; their types are merged),
 * then tkv_graph_build() freezes it into CSR arrays. Self-loops are
 * dropped: a transaction depending on itself is not a cycle between
 * transactions. Nodes are 0..n-1. */
#ifndef TKV_JEPSEN_GRAPH_H
#define TKV_JEPSEN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

/* Edge types, as bits. */
enum {
    TKV_EDGE_WW = 1, /* b appended right after a's append to a key */
    TKV_EDGE_WR = 2, /* b read a's append */
    TKV_EDGE_RW = 4, /* b appended right after the state a read */
    TKV_EDGE_RT = 8, /* a completed before b was invoked */
};
#define TKV_EDGE_ALL 15u

struct tkv_graph_edge {
    uint32_t from;
    uint32_t to;
    uint32_t mask;
};

struct tkv_graph {
    size_t n;
    size_t *start; /* owned after build: n + 1 offsets into to/mask */
    uint32_t *to;  /* owned after build */
    uint8_t *mask; /* owned after build */
    size_t nedges; /* after build: distinct (from, to) pairs */
    struct tkv_graph_edge *pending; /* owned before build */
    size_t npending;
    size_t cap;
};

/* 0 or TKV_ENOMEM. */
int tkv_graph_init(struct tkv_graph *g, size_t n);
void tkv_graph_close(struct tkv_graph *g);
int tkv_graph_add(struct tkv_graph *g, size_t from, size_t to, unsigned mask);
int tkv_graph_build(struct tkv_graph *g);

/* The merged type bits of edge from -> to, 0 if none (binary search). */
unsigned tkv_graph_edge_mask(const struct tkv_graph *g, size_t from, size_t to);

/* Strongly connected components over the edges whose type is in `allowed`.
 * comp[v] (n entries, caller-allocated) gets v's component id, ids in
 * 0..*ncomp-1. 0 or TKV_ENOMEM. */
int tkv_graph_scc(const struct tkv_graph *g,
                  unsigned allowed,
                  size_t *comp /* OUT */,
                  size_t *ncomp /* OUT */);

/* The subgraph induced by nodes[0..k-1] with edge types restricted to
 * `allowed`: node i of out is nodes[i] of g. `scratch` has g->n entries all
 * SIZE_MAX, and is left that way. 0 or TKV_ENOMEM. */
int tkv_graph_induced(const struct tkv_graph *g,
                      const size_t *nodes,
                      size_t k,
                      unsigned allowed,
                      size_t *scratch,
                      struct tkv_graph *out /* OUT */);

/* Shortest path from src to dst over edges typed in `allowed`, with at
 * least one edge (so src == dst finds a shortest cycle through src).
 * On success *path (owned by the caller, tkv_free) holds the nodes src ...
 * dst and *len their number; 1 found, 0 none, TKV_ENOMEM. *budget is
 * decreased by the edges looked at; the search gives up (returns 0) when it
 * reaches zero. */
int tkv_graph_path(const struct tkv_graph *g,
                   size_t src,
                   size_t dst,
                   unsigned allowed,
                   uint64_t *budget,
                   size_t **path /* OUT */,
                   size_t *len /* OUT */);

#endif /* TKV_JEPSEN_GRAPH_H */
