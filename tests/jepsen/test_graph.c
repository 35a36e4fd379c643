/* Tests of jepsen/checker/graph.c: edge merging and self-loops, strongly
 * connected components with and without an edge-type filter, induced
 * subgraphs, shortest paths and cycles, the search budget, and a chain
 * long enough that a recursive Tarjan would overflow the stack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "jepsen/checker/graph.h"

#define WW TKV_EDGE_WW
#define WR TKV_EDGE_WR
#define RW TKV_EDGE_RW
#define RT TKV_EDGE_RT

/* 0 -ww-> 1 -wr-> 2 -rw-> 0, 2 -ww-> 3, 3 -rt-> 4 -ww-> 3, 5 alone,
 * 0 -ww-> 1 again as rw, 4 -> 4 self-loop. */
static void example(struct tkv_graph *g)
{
    assert_int_equal(tkv_graph_init(g, 6), 0);
    assert_int_equal(tkv_graph_add(g, 0, 1, WW), 0);
    assert_int_equal(tkv_graph_add(g, 1, 2, WR), 0);
    assert_int_equal(tkv_graph_add(g, 2, 0, RW), 0);
    assert_int_equal(tkv_graph_add(g, 2, 3, WW), 0);
    assert_int_equal(tkv_graph_add(g, 3, 4, RT), 0);
    assert_int_equal(tkv_graph_add(g, 4, 3, WW), 0);
    assert_int_equal(tkv_graph_add(g, 0, 1, RW), 0);
    assert_int_equal(tkv_graph_add(g, 4, 4, WW), 0);
    assert_int_equal(tkv_graph_build(g), 0);
}

static void test_build(void **state)
{
    struct tkv_graph g;

    example(&g);
    assert_int_equal(g.nedges, 6);
    assert_int_equal(tkv_graph_edge_mask(&g, 0, 1), WW | RW);
    assert_int_equal(tkv_graph_edge_mask(&g, 1, 0), 0);
    assert_int_equal(tkv_graph_edge_mask(&g, 4, 4), 0);
    assert_int_equal(tkv_graph_edge_mask(&g, 3, 4), RT);
    tkv_graph_close(&g);
}

static void test_scc(void **state)
{
    struct tkv_graph g;
    size_t comp[6], n;

    example(&g);
    assert_int_equal(tkv_graph_scc(&g, TKV_EDGE_ALL, comp, &n), 0);
    assert_int_equal(n, 3);
    assert_true(comp[0] == comp[1] && comp[1] == comp[2]);
    assert_true(comp[3] == comp[4] && comp[3] != comp[0]);
    assert_true(comp[5] != comp[0] && comp[5] != comp[3]);
    /* without rt, 3 and 4 fall apart; without rw, so do 0..2 */
    assert_int_equal(tkv_graph_scc(&g, WW | WR | RW, comp, &n), 0);
    assert_int_equal(n, 4);
    assert_true(comp[3] != comp[4]);
    assert_int_equal(tkv_graph_scc(&g, WW | WR, comp, &n), 0);
    assert_int_equal(n, 6);
    tkv_graph_close(&g);
}

static void test_induced(void **state)
{
    struct tkv_graph g, sub;
    size_t scratch[6] = {SIZE_MAX, SIZE_MAX, SIZE_MAX,
                         SIZE_MAX, SIZE_MAX, SIZE_MAX};
    size_t nodes[3] = {2, 0, 1};
    size_t i;

    example(&g);
    assert_int_equal(tkv_graph_induced(&g, nodes, 3, WW | RW, scratch, &sub),
                     0);
    for (i = 0; i < 6; i++) {
        assert_int_equal(scratch[i], SIZE_MAX);
    }
    assert_int_equal(sub.n, 3);
    assert_int_equal(sub.nedges, 2);
    assert_int_equal(tkv_graph_edge_mask(&sub, 0, 1), RW);      /* 2 -> 0 */
    assert_int_equal(tkv_graph_edge_mask(&sub, 1, 2), WW | RW); /* 0 -> 1 */
    assert_int_equal(tkv_graph_edge_mask(&sub, 2, 0), 0);       /* wr dropped */
    tkv_graph_close(&sub);
    tkv_graph_close(&g);
}

static void test_path(void **state)
{
    struct tkv_graph g;
    size_t *p, len;
    uint64_t budget = UINT64_MAX;

    example(&g);
    assert_int_equal(tkv_graph_path(&g, 0, 0, TKV_EDGE_ALL, &budget, &p, &len),
                     1);
    assert_int_equal(len, 4);
    assert_int_equal(p[0], 0);
    assert_int_equal(p[1], 1);
    assert_int_equal(p[2], 2);
    assert_int_equal(p[3], 0);
    tkv_free(p);
    assert_int_equal(tkv_graph_path(&g, 0, 4, TKV_EDGE_ALL, &budget, &p, &len),
                     1);
    assert_int_equal(len, 5);
    assert_int_equal(p[4], 4);
    tkv_free(p);
    /* no cycle through 0 without rw; no way to 5; no rt: 4 unreachable */
    assert_int_equal(tkv_graph_path(&g, 0, 0, WW | WR, &budget, &p, &len), 0);
    assert_null(p);
    assert_int_equal(tkv_graph_path(&g, 0, 5, TKV_EDGE_ALL, &budget, &p, &len),
                     0);
    assert_int_equal(tkv_graph_path(&g, 0, 4, WW | WR | RW, &budget, &p, &len),
                     0);
    /* a spent budget finds nothing */
    budget = 2;
    assert_int_equal(tkv_graph_path(&g, 0, 4, TKV_EDGE_ALL, &budget, &p, &len),
                     0);
    assert_int_equal(budget, 0);
    tkv_graph_close(&g);
}

static void test_long_chain(void **state)
{
    enum { N = 300000 };
    struct tkv_graph g;
    size_t *comp = tkv_malloc(N * sizeof *comp);
    size_t n, i, *p, len;
    uint64_t budget = UINT64_MAX;

    assert_non_null(comp);
    assert_int_equal(tkv_graph_init(&g, N), 0);
    for (i = 0; i + 1 < N; i++) {
        assert_int_equal(tkv_graph_add(&g, i, i + 1, RT), 0);
    }
    assert_int_equal(tkv_graph_build(&g), 0);
    assert_int_equal(tkv_graph_scc(&g, TKV_EDGE_ALL, comp, &n), 0);
    assert_int_equal(n, N);
    tkv_graph_close(&g);

    assert_int_equal(tkv_graph_init(&g, N), 0);
    for (i = 0; i < N; i++) {
        assert_int_equal(tkv_graph_add(&g, i, (i + 1) % N, RT), 0);
    }
    assert_int_equal(tkv_graph_build(&g), 0);
    assert_int_equal(tkv_graph_scc(&g, TKV_EDGE_ALL, comp, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(tkv_graph_path(&g, 7, 7, RT, &budget, &p, &len), 1);
    assert_int_equal(len, N + 1);
    tkv_free(p);
    tkv_graph_close(&g);
    tkv_free(comp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),      cmocka_unit_test(test_scc),
        cmocka_unit_test(test_induced),    cmocka_unit_test(test_path),
        cmocka_unit_test(test_long_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
