/* raft_fixture traces every raft event to stderr: the raft/ tests keep
 * their output readable unless TKV_SIM_TRACE is set. */
#ifndef TKV_TEST_RAFT_QUIET_H
#define TKV_TEST_RAFT_QUIET_H

#include <raft.h>
#include <stdlib.h>

static void tkv_quiet_emit(struct raft_tracer *t, int type, const void *info)
{
    (void)t;
    (void)type;
    (void)info;
}

static struct raft_tracer tkv_quiet_tracer = {NULL, 2, tkv_quiet_emit};

static inline void tkv_fixture_quiet(struct raft *r)
{
    if (getenv("TKV_SIM_TRACE") == NULL) {
        r->tracer = &tkv_quiet_tracer;
    }
}

#endif /* TKV_TEST_RAFT_QUIET_H */
