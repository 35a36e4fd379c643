/* Linearizability search for one object: the Wing & Gong algorithm with
 * Lowe's memoization, in the form Porcupine uses (a doubly linked list of
 * call and return entries; linearizing an op lifts both of its entries out
 * of the list; a set of (linearized ops, state) pairs already explored
 * prunes the search).
 *
 * The model is a step function over int64 states. An op whose outcome is
 * unknown (info) has no return: it may take effect at any time after its
 * call, or never. The search therefore succeeds as soon as every op with a
 * return has been linearized.
 *
 * Effort is bounded (steps and cache memory); hitting a bound gives
 * TKV_WGL_UNKNOWN, never a guess. */
#ifndef TKV_JEPSEN_WGL_H
#define TKV_JEPSEN_WGL_H

#include <stddef.h>
#include <stdint.h>

#define TKV_WGL_NEVER UINT64_MAX

struct tkv_wgl_op {
    uint64_t call; /* position of the call on a clock shared by all ops */
    uint64_t ret;  /* position of the return (> call), or TKV_WGL_NEVER */
};

/* Apply op in state: 1 and *next when the op's recorded outcome is
 * possible in that state, else 0. */
typedef int (*tkv_wgl_step_fn)(void *ctx,
                               size_t op,
                               int64_t state,
                               int64_t *next /* OUT */);

struct tkv_wgl_limits {
    uint64_t max_steps;       /* 0: no bound */
    uint64_t max_cache_bytes; /* 0: no bound */
};

enum tkv_wgl_verdict {
    TKV_WGL_LINEARIZABLE,
    TKV_WGL_ILLEGAL,
    TKV_WGL_UNKNOWN,
};

/* Decide whether ops[0..n-1] (any order) are linearizable from `init`.
 * *verdict gets the answer, *steps (if not NULL) the search steps taken.
 * 0 or TKV_ENOMEM. */
int tkv_wgl_check(const struct tkv_wgl_op *ops,
                  size_t n,
                  int64_t init,
                  tkv_wgl_step_fn step,
                  void *ctx,
                  const struct tkv_wgl_limits *limits,
                  enum tkv_wgl_verdict *verdict /* OUT */,
                  uint64_t *steps /* OUT */);

#endif /* TKV_JEPSEN_WGL_H */
