/* Partition shapes ("grudges", as Jepsen calls them): who drops packets
 * from whom. Pure functions, no I/O, so they are tested alone
 * (tests/jepsen_runner).
 *
 * g[i][j] != 0 means node i drops every packet from node j (both 1-based).
 * `order` is a random permutation of the nodes 1..n; each shape takes its
 * roles from it:
 *   ISOLATE  order[0] alone | the rest (isolate-one, isolate-leader when
 *            order[0] is the leader)
 *   HALVES   the first n/2 | the rest (a minority and a majority)
 *   RING     Jepsen's majorities ring: along the ring `order`, each window
 *            of a majority m = n/2+1 nodes gives its middle node a view of
 *            exactly that window; every node sees a majority, no two nodes
 *            see the same one (for n >= 3), and drops are one-way
 *   BRIDGE   the first (n-1)/2 | order[(n-1)/2] | the rest: the middle node
 *            talks to both sides, the sides not to each other */
#ifndef TKVJ_PARTITION_H
#define TKVJ_PARTITION_H

#define TKVJ_PART_MAX 9

enum tkvj_part_kind {
    TKVJ_PART_ISOLATE,
    TKVJ_PART_HALVES,
    TKVJ_PART_RING,
    TKVJ_PART_BRIDGE,
};

typedef unsigned char tkvj_grudge_t[TKVJ_PART_MAX + 1][TKVJ_PART_MAX + 1];

/* Fill g (cleared first) with the shape for nodes order[0..n-1]. */
void tkvj_grudge(enum tkvj_part_kind kind, const int *order, int n,
                 tkvj_grudge_t g);

#endif /* TKVJ_PARTITION_H */
