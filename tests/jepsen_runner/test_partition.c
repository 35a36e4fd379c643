/* Partition shapes: each one's promise, for every cluster size and many
 * node orders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "jepsen/runner/partition.h"

#define ROUNDS 200

static void shuffle(int *a, int n, unsigned *seed)
{
    int i;
    for (i = 0; i < n; i++) {
        a[i] = i + 1;
    }
    for (i = n - 1; i > 0; i--) {
        int j = (int)(rand_r(seed) % (unsigned)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Nodes i hears from, itself included. */
static int sees(tkvj_grudge_t g, int n, int i)
{
    int j, c = 0;
    for (j = 1; j <= n; j++) {
        c += !g[i][j];
    }
    return c;
}

static void test_isolate(void **state)
{
    unsigned seed = 1;
    int order[TKVJ_PART_MAX];
    tkvj_grudge_t g;
    int n, r, i, j;
    (void)state;
    for (n = 2; n <= TKVJ_PART_MAX; n++) {
        for (r = 0; r < ROUNDS; r++) {
            shuffle(order, n, &seed);
            tkvj_grudge(TKVJ_PART_ISOLATE, order, n, g);
            for (i = 1; i <= n; i++) {
                for (j = 1; j <= n; j++) {
                    int cut = i != j && (i == order[0] || j == order[0]);
                    assert_int_equal(g[i][j] != 0, cut);
                }
            }
        }
    }
}

static void test_halves(void **state)
{
    unsigned seed = 2;
    int order[TKVJ_PART_MAX];
    tkvj_grudge_t g;
    int n, r, i, j;
    (void)state;
    for (n = 2; n <= TKVJ_PART_MAX; n++) {
        for (r = 0; r < ROUNDS; r++) {
            int side[TKVJ_PART_MAX + 1];
            int big = 0;
            shuffle(order, n, &seed);
            tkvj_grudge(TKVJ_PART_HALVES, order, n, g);
            for (i = 0; i < n; i++) {
                side[order[i]] = i < n / 2;
            }
            for (i = 1; i <= n; i++) {
                for (j = 1; j <= n; j++) {
                    /* symmetric, and exactly the pairs across the cut */
                    assert_int_equal(g[i][j] != 0, side[i] != side[j]);
                }
                big += sees(g, n, i) > n / 2;
            }
            /* odd n: one side is a majority; even n: two equal halves */
            assert_int_equal(big, n % 2 ? n - n / 2 : 0);
        }
    }
}

static void test_ring(void **state)
{
    unsigned seed = 3;
    int order[TKVJ_PART_MAX];
    tkvj_grudge_t g;
    int n, r, i, k, j;
    (void)state;
    for (n = 3; n <= TKVJ_PART_MAX; n++) {
        for (r = 0; r < ROUNDS; r++) {
            shuffle(order, n, &seed);
            tkvj_grudge(TKVJ_PART_RING, order, n, g);
            for (i = 1; i <= n; i++) {
                assert_int_equal(g[i][i], 0);
                /* every node sees exactly a majority */
                assert_int_equal(sees(g, n, i), n / 2 + 1);
                /* no two nodes see the same majority */
                for (k = i + 1; k <= n; k++) {
                    int same = 1;
                    for (j = 1; j <= n; j++) {
                        same &= g[i][j] == g[k][j];
                    }
                    assert_false(same);
                }
            }
        }
    }
}

static void test_bridge(void **state)
{
    unsigned seed = 4;
    int order[TKVJ_PART_MAX];
    tkvj_grudge_t g;
    int n, r, i, j;
    (void)state;
    for (n = 3; n <= TKVJ_PART_MAX; n++) {
        for (r = 0; r < ROUNDS; r++) {
            int half = (n - 1) / 2;
            int bridge;
            int side[TKVJ_PART_MAX + 1];
            shuffle(order, n, &seed);
            tkvj_grudge(TKVJ_PART_BRIDGE, order, n, g);
            bridge = order[half];
            for (i = 0; i < n; i++) {
                side[order[i]] = i < half ? -1 : i == half ? 0 : 1;
            }
            for (i = 1; i <= n; i++) {
                for (j = 1; j <= n; j++) {
                    int cut = side[i] * side[j] == -1;
                    assert_int_equal(g[i][j] != 0, cut);
                }
            }
            /* the bridge hears everyone and everyone hears it */
            assert_int_equal(sees(g, n, bridge), n);
            for (i = 1; i <= n; i++) {
                assert_int_equal(g[i][bridge], 0);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolate),
        cmocka_unit_test(test_halves),
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_bridge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
