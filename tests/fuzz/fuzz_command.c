/* libFuzzer target for the log entry decoder (statemachine/command.c).
 *
 * Every input is decoded as it is, then again zero-padded to a multiple of
 * 8 (so the fuzzer reaches past the length rule quickly). A decoded entry
 * must point only into its input, encode again, and decode from those bytes
 * to the same entry. Anything else aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "statemachine/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "tests/fuzz/fuzz.h"

static int inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return q >= buf && n <= len && q - buf <= (ptrdiff_t)(len - n);
}

static int mut_equal(const struct tkv_mutation *a, const struct tkv_mutation *b)
{
    return a->type == b->type && a->klen == b->klen &&
           memcmp(a->key, b->key, a->klen) == 0 &&
           (a->type != TKV_CMD_SET ||
            (a->vlen == b->vlen && memcmp(a->value, b->value, a->vlen) == 0 &&
             a->ttl_ms == b->ttl_ms));
}

static void check_mut(const struct tkv_mutation *m,
                      const uint8_t *buf,
                      size_t len)
{
    REQUIRE(m->type == TKV_CMD_SET || m->type == TKV_CMD_DELETE);
    REQUIRE(m->klen > 0 && inside(m->key, m->klen, buf, len));
    if (m->type == TKV_CMD_SET) {
        REQUIRE(m->vlen > 0 && inside(m->value, m->vlen, buf, len));
    }
}

static int cmd_equal(const struct tkv_cmd *a, const struct tkv_cmd *b)
{
    uint32_t i;
    if (a->type != b->type || a->session != b->session || a->seq != b->seq ||
        a->ack != b->ack || a->member_id != b->member_id ||
        a->addrlen != b->addrlen || a->nchecks != b->nchecks ||
        a->nmuts != b->nmuts) {
        return 0;
    }
    if ((a->type == TKV_CMD_SET || a->type == TKV_CMD_DELETE) &&
        !mut_equal(&a->mut, &b->mut)) {
        return 0;
    }
    if (a->addrlen > 0 && memcmp(a->addr, b->addr, a->addrlen) != 0) {
        return 0;
    }
    for (i = 0; i < a->nchecks; i++) {
        if (a->checks[i].klen != b->checks[i].klen ||
            a->checks[i].version != b->checks[i].version ||
            memcmp(a->checks[i].key, b->checks[i].key, a->checks[i].klen)) {
            return 0;
        }
    }
    for (i = 0; i < a->nmuts; i++) {
        if (!mut_equal(&a->muts[i], &b->muts[i])) {
            return 0;
        }
    }
    return 1;
}

static void check_entry(const struct tkv_entry *e,
                        const uint8_t *buf,
                        size_t len)
{
    size_t i;
    uint32_t k;
    REQUIRE(e->format == TKV_ENTRY_FORMAT);
    REQUIRE(e->ncmds <= TKV_ENTRY_MAX_CMDS);
    for (i = 0; i < e->ncmds; i++) {
        const struct tkv_cmd *c = &e->cmds[i];
        switch (c->type) {
            case TKV_CMD_SET:
            case TKV_CMD_DELETE:
                check_mut(&c->mut, buf, len);
                REQUIRE(c->mut.type == c->type);
                break;
            case TKV_CMD_ATOMIC:
                REQUIRE(c->nchecks <= TKV_ATOMIC_MAX_CHECKS);
                REQUIRE(c->nmuts <= TKV_ATOMIC_MAX_MUTATIONS);
                for (k = 0; k < c->nchecks; k++) {
                    REQUIRE(
                        c->checks[k].klen > 0 &&
                        inside(c->checks[k].key, c->checks[k].klen, buf, len));
                }
                for (k = 0; k < c->nmuts; k++) {
                    check_mut(&c->muts[k], buf, len);
                }
                break;
            case TKV_CMD_TICK:
                break;
            case TKV_CMD_MEMBER_SET:
                REQUIRE(c->member_id != 0);
                REQUIRE(c->addrlen > 0 && c->addrlen <= TKV_ADDR_MAX &&
                      inside(c->addr, c->addrlen, buf, len));
                break;
            case TKV_CMD_MEMBER_DEL:
                REQUIRE(c->member_id != 0);
                break;
            default:
                REQUIRE(0);
        }
    }
}

static void run(const uint8_t *buf, size_t len)
{
    struct tkv_entry e;
    struct tkv_entry e2;
    struct tkv_err err;
    struct tkv_buf body;
    struct tkv_buf again;
    size_t i;
    int rv = tkv_entry_decode(buf, len, &e, &err);

    if (rv != 0) {
        REQUIRE(rv == TKV_ECORRUPT && err.code == rv && err.msg[0] != '\0');
        return;
    }
    REQUIRE(len % 8 == 0);
    check_entry(&e, buf, len);

    tkv_buf_init(&body);
    tkv_buf_init(&again);
    for (i = 0; i < e.ncmds; i++) {
        REQUIRE(tkv_cmd_encode(&e.cmds[i], &body) == 0);
    }
    REQUIRE(tkv_entry_encode(e.timestamp_ms, e.ncmds, body.data, body.len,
                           &again) == 0);
    REQUIRE(tkv_entry_decode(again.data, again.len, &e2, &err) == 0);
    REQUIRE(e2.timestamp_ms == e.timestamp_ms && e2.ncmds == e.ncmds);
    for (i = 0; i < e.ncmds; i++) {
        REQUIRE(cmd_equal(&e.cmds[i], &e2.cmds[i]));
    }
    /* canonical bytes are a fixed point */
    REQUIRE(again.len <= len);
    tkv_entry_close(&e2);
    tkv_entry_close(&e);
    tkv_buf_close(&again);
    tkv_buf_close(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t padded = (size + 7) / 8 * 8;
    uint8_t *copy;

    run(data, size);
    if (padded != size) {
        copy = malloc(padded);
        if (copy == NULL) {
            return 0;
        }
        memcpy(copy, data, size);
        memset(copy + size, 0, padded - size);
        run(copy, padded);
        free(copy);
    }
    return 0;
}
