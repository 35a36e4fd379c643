/* Partition shapes (see partition.h). */
#include "partition.h"

#include <string.h>

/* Every node of a drops from every node of b and back. */
static void cut(tkvj_grudge_t g, const int *a, int na, const int *b, int nb)
{
    int i, j;
    for (i = 0; i < na; i++) {
        for (j = 0; j < nb; j++) {
            g[a[i]][b[j]] = 1;
            g[b[j]][a[i]] = 1;
        }
    }
}

void tkvj_grudge(enum tkvj_part_kind kind, const int *order, int n,
                 tkvj_grudge_t g)
{
    int i, j, k;

    memset(g, 0, sizeof(tkvj_grudge_t));
    switch (kind) {
    case TKVJ_PART_ISOLATE:
        cut(g, order, 1, order + 1, n - 1);
        break;
    case TKVJ_PART_HALVES:
        cut(g, order, n / 2, order + n / 2, n - n / 2);
        break;
    case TKVJ_PART_RING: {
        int m = n / 2 + 1;
        for (i = 0; i < n; i++) {
            int self = order[(i + m / 2) % n];
            for (j = 1; j <= n; j++) {
                int inside = 0;
                for (k = 0; k < m; k++) {
                    inside |= order[(i + k) % n] == j;
                }
                if (!inside) {
                    g[self][j] = 1;
                }
            }
        }
        break;
    }
    case TKVJ_PART_BRIDGE: {
        int half = (n - 1) / 2;
        cut(g, order, half, order + half + 1, n - half - 1);
        break;
    }
    }
}
