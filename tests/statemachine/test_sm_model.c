/* Model-based test of the state machine.
 *
 * 100,000 random steps (set, delete, atomic, tick, list, retried session
 * writes, several commands per entry) run against the real state machine and
 * against a plain sorted array that implements the same semantics in the most
 * obvious way. Every step's results must be equal; every 1,000 steps the
 * whole contents, versions, expiries and ranks are compared and both
 * skiplists' invariant checkers run; a snapshot round trip is checked too.
 *
 * The seed is printed; TKV_SEED=<n> replays a run, TKV_STEPS=<n> changes its
 * length. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/buf.h"
#include "statemachine/sm.h"
#include "statemachine/value.h"

#define NKEYS 300
#define MAXCMDS 5

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t rndn(uint64_t n)
{
    return rnd() % n;
}

struct mkey {
    uint8_t b[TKV_KEY_MAX];
    size_t len;
};

struct mentry {
    struct mkey k;
    int64_t value; /* values are JSON integers */
    uint64_t version;
    int64_t expires_at;
};

struct model {
    struct mentry e[NKEYS];
    size_t n;
    int64_t now;
};

static struct mkey pool[NKEYS];
static struct mkey prefixes[64];
static size_t nprefixes;

static int kcmp(const struct mkey *a, const uint8_t *b, size_t blen)
{
    return tkv_key_cmp(a->b, a->len, b, blen);
}

static json_t *rand_part(void)
{
    static const char *strs[] = {"", "a", "ab", "b", "notes", "a\xc3\xa9",
                                 "z"};
    switch (rndn(4)) {
        case 0:
        case 1:
            return json_string(strs[rndn(7)]);
        case 2: {
            static const double nums[] = {-2.5, -1, 0, 1, 2, 10, 1e9};
            return json_real(nums[rndn(7)]);
        }
        default:
            return json_boolean(rndn(2));
    }
}

static void make_pool(void)
{
    size_t n = 0;
    while (n < NKEYS) {
        json_t *k = json_array();
        size_t parts = 1 + rndn(3), len, i;
        uint8_t buf[TKV_KEY_MAX];
        int dup = 0;
        for (i = 0; i < parts; i++) {
            json_array_append_new(k, rand_part());
        }
        assert_int_equal(tkv_key_from_json(k, 0, buf, &len, NULL), 0);
        for (i = 0; i < n; i++) {
            if (kcmp(&pool[i], buf, len) == 0) {
                dup = 1;
            }
        }
        if (!dup) {
            memcpy(pool[n].b, buf, len);
            pool[n].len = len;
            n++;
        }
        /* Every proper prefix of a key is a useful list prefix too. */
        if (nprefixes < 63 && parts > 1) {
            json_array_remove(k, parts - 1);
            assert_int_equal(tkv_key_from_json(k, 1, buf, &len, NULL), 0);
            memcpy(prefixes[nprefixes].b, buf, len);
            prefixes[nprefixes].len = len;
            nprefixes++;
        }
        json_decref(k);
    }
    prefixes[nprefixes++].len = 0; /* [] : every key */
}

/* --- the model ----------------------------------------------------- */

static size_t m_lower(const struct model *m, const uint8_t *k, size_t klen)
{
    size_t i = 0;
    while (i < m->n && kcmp(&m->e[i].k, k, klen) < 0) {
        i++;
    }
    return i;
}

static struct mentry *m_find(struct model *m, const struct mkey *k)
{
    size_t i = m_lower(m, k->b, k->len);
    return i < m->n && kcmp(&m->e[i].k, k->b, k->len) == 0 ? &m->e[i] : NULL;
}

static void m_put(struct model *m, const struct mkey *k, int64_t value,
                  uint64_t version, uint64_t ttl)
{
    size_t i = m_lower(m, k->b, k->len);
    if (!(i < m->n && kcmp(&m->e[i].k, k->b, k->len) == 0)) {
        memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof m->e[0]);
        m->n++;
        m->e[i].k = *k;
    }
    m->e[i].value = value;
    m->e[i].version = version;
    m->e[i].expires_at = ttl ? m->now + (int64_t)ttl : 0;
}

static void m_del(struct model *m, const struct mkey *k)
{
    size_t i = m_lower(m, k->b, k->len);
    if (i < m->n && kcmp(&m->e[i].k, k->b, k->len) == 0) {
        memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof m->e[0]);
        m->n--;
    }
}

static void m_advance(struct model *m, int64_t ts)
{
    size_t i = 0;
    if (ts > m->now) {
        m->now = ts;
    }
    while (i < m->n) {
        if (m->e[i].expires_at != 0 && m->e[i].expires_at <= m->now) {
            memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof m->e[0]);
            m->n--;
        } else {
            i++;
        }
    }
}

/* --- one random command -------------------------------------------- */

struct gen {
    struct tkv_cmd c;
    struct tkv_check checks[3];
    struct tkv_mutation muts[3];
    int64_t values[4];
    uint8_t vbytes[4][16];
};

static size_t pack_int(int64_t v, uint8_t *out)
{
    struct tkv_buf b;
    json_t *j = json_integer(v);
    size_t n;
    tkv_buf_init(&b);
    assert_int_equal(tkv_value_from_json(j, &b, NULL), 0);
    json_decref(j);
    n = b.len;
    assert_true(n <= 16);
    memcpy(out, b.data, n);
    tkv_buf_close(&b);
    return n;
}

static void gen_mut(struct gen *g, struct tkv_mutation *mu, int slot,
                    uint8_t type)
{
    const struct mkey *k = &pool[rndn(NKEYS)];
    memset(mu, 0, sizeof *mu);
    mu->type = type;
    mu->key = k->b;
    mu->klen = (uint16_t)k->len;
    if (type == TKV_CMD_SET) {
        g->values[slot] = (int64_t)rndn(1000000) - 500;
        mu->vlen = (uint32_t)pack_int(g->values[slot], g->vbytes[slot]);
        mu->value = g->vbytes[slot];
        mu->ttl_ms = rndn(5) == 0 ? 1 + rndn(5000) : 0;
    }
}

static void gen_cmd(struct gen *g, struct model *m)
{
    uint64_t r = rndn(100);
    memset(&g->c, 0, sizeof g->c);
    if (r < 50) {
        g->c.type = TKV_CMD_SET;
        gen_mut(g, &g->c.mut, 3, TKV_CMD_SET);
    } else if (r < 70) {
        g->c.type = TKV_CMD_DELETE;
        gen_mut(g, &g->c.mut, 3, TKV_CMD_DELETE);
    } else if (r < 95) {
        uint32_t i;
        g->c.type = TKV_CMD_ATOMIC;
        g->c.nchecks = (uint32_t)rndn(4);
        for (i = 0; i < g->c.nchecks; i++) {
            const struct mkey *k = &pool[rndn(NKEYS)];
            struct mentry *e = m_find(m, k);
            g->checks[i].key = k->b;
            g->checks[i].klen = (uint16_t)k->len;
            /* mostly right, sometimes stale */
            g->checks[i].version = rndn(5) == 0 ? rndn(3) << 16
                                   : e != NULL  ? e->version
                                                : 0;
        }
        g->c.nmuts = 1 + (uint32_t)rndn(3);
        for (i = 0; i < g->c.nmuts; i++) {
            gen_mut(g, &g->muts[i], (int)i,
                    rndn(4) == 0 ? TKV_CMD_DELETE : TKV_CMD_SET);
        }
        g->c.checks = g->checks;
        g->c.muts = g->muts;
    } else {
        g->c.type = TKV_CMD_TICK;
    }
}

/* What the model says a command does (and does it). */
static struct tkv_result m_apply(struct model *m, const struct gen *g,
                                 uint64_t version)
{
    struct tkv_result r = {0};
    uint32_t i;
    switch (g->c.type) {
        case TKV_CMD_TICK:
            return r;
        case TKV_CMD_SET:
        case TKV_CMD_DELETE: {
            struct mkey k;
            memcpy(k.b, g->c.mut.key, g->c.mut.klen);
            k.len = g->c.mut.klen;
            if (g->c.type == TKV_CMD_SET) {
                m_put(m, &k, g->values[3], version, g->c.mut.ttl_ms);
            } else {
                m_del(m, &k);
            }
            r.version = version;
            return r;
        }
    }
    for (i = 0; i < g->c.nchecks; i++) {
        struct mkey k;
        struct mentry *e;
        memcpy(k.b, g->checks[i].key, g->checks[i].klen);
        k.len = g->checks[i].klen;
        e = m_find(m, &k);
        if ((e != NULL ? e->version : 0) != g->checks[i].version) {
            r.code = TKV_ECONFLICT;
            r.conflict = i;
            return r;
        }
    }
    for (i = 0; i < g->c.nmuts; i++) {
        struct mkey k;
        memcpy(k.b, g->muts[i].key, g->muts[i].klen);
        k.len = g->muts[i].klen;
        if (g->muts[i].type == TKV_CMD_SET) {
            m_put(m, &k, g->values[i], version, g->muts[i].ttl_ms);
        } else {
            m_del(m, &k);
        }
    }
    r.version = version;
    return r;
}

/* --- comparisons ----------------------------------------------------- */

static int64_t node_int(const struct tkv_sl_node *n)
{
    msgpack_unpacked u;
    size_t off = 0;
    int64_t v;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)tkv_sl_value(n),
                                         n->vlen, &off),
                     MSGPACK_UNPACK_SUCCESS);
    v = u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? u.data.via.i64
                                                       : (int64_t)u.data.via.u64;
    msgpack_unpacked_destroy(&u);
    return v;
}

static void compare_all(const struct tkv_sm *sm, const struct model *m)
{
    const struct tkv_sl_node *n = tkv_sl_first(&sm->data);
    struct tkv_err err;
    size_t i;
    if (tkv_sl_check(&sm->data, &err) != 0 ||
        tkv_sl_check(&sm->expiry, &err) != 0) {
        fail_msg("skiplist invariant broken: %s", err.msg);
    }
    assert_int_equal(sm->data.length, m->n);
    assert_int_equal(sm->now, m->now);
    for (i = 0; i < m->n; i++, n = tkv_sl_next(n)) {
        assert_non_null(n);
        assert_int_equal(kcmp(&m->e[i].k, tkv_sl_key(n), n->klen), 0);
        assert_int_equal(node_int(n), m->e[i].value);
        assert_int_equal(n->version, m->e[i].version);
        assert_int_equal(tkv_sl_expires(n), m->e[i].expires_at);
        assert_true(tkv_sl_at(&sm->data, i) == n);
    }
    assert_null(n);
    for (i = 0; i < NKEYS; i += 7) {
        assert_int_equal(tkv_sl_rank(&sm->data, pool[i].b, pool[i].len),
                         m_lower(m, pool[i].b, pool[i].len));
    }
}

static int in_sel(const struct mkey *k, const struct tkv_list_query *q)
{
    if (q->prefix != NULL &&
        !(k->len > q->prefix_len && memcmp(k->b, q->prefix, q->prefix_len) == 0)) {
        return 0;
    }
    if (q->start != NULL && kcmp(k, q->start, q->start_len) < 0) {
        return 0;
    }
    if (q->end != NULL && kcmp(k, q->end, q->end_len) >= 0) {
        return 0;
    }
    return 1;
}

/* List through every page of a random selector, comparing each page with
 * the model's answer. */
static void check_list(const struct tkv_sm *sm, const struct model *m,
                       struct tkv_list_result *res)
{
    struct tkv_list_query q;
    char cursor[TKV_CURSOR_MAX];
    size_t matching[NKEYS], nmatch = 0, pos = 0, i;
    memset(&q, 0, sizeof q);
    if (rndn(2) == 0) {
        const struct mkey *p = &prefixes[rndn(nprefixes)];
        q.prefix = p->b;
        q.prefix_len = p->len;
    }
    if (q.prefix == NULL || rndn(3) == 0) {
        const struct mkey *s = &pool[rndn(NKEYS)];
        q.start = s->b;
        q.start_len = s->len;
    }
    if (rndn(2) == 0) {
        const struct mkey *e = &pool[rndn(NKEYS)];
        q.end = e->b;
        q.end_len = e->len;
    }
    q.limit = 1 + (int64_t)rndn(12);
    q.reverse = (int)rndn(2);
    for (i = 0; i < m->n; i++) {
        if (in_sel(&m->e[i].k, &q)) {
            matching[nmatch++] = i;
        }
    }
    for (;;) {
        struct tkv_err err;
        int rv = tkv_sm_list(sm, &q, res, &err);
        if (rv != 0) {
            fail_msg("list failed: %s", err.msg);
        }
        assert_int_equal(res->total, nmatch);
        for (i = 0; i < res->n; i++, pos++) {
            size_t want = q.reverse ? matching[nmatch - 1 - pos] : matching[pos];
            assert_true(pos < nmatch);
            assert_int_equal(kcmp(&m->e[want].k, tkv_sl_key(res->items[i]),
                                  res->items[i]->klen),
                             0);
        }
        if (res->cursor[0] == '\0') {
            break;
        }
        assert_true(pos < nmatch); /* a cursor promises more */
        strcpy(cursor, res->cursor);
        q.cursor = cursor;
        q.cursor_len = strlen(cursor);
    }
    assert_int_equal(pos, nmatch);
}

static void check_snapshot(const struct tkv_sm *sm)
{
    struct tkv_buf b;
    msgpack_packer pk;
    struct tkv_sm copy;
    tkv_buf_init(&b);
    msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
    assert_int_equal(tkv_sm_snapshot(sm, &pk), 0);
    assert_int_equal(tkv_sm_init(&copy, &sm->cfg), 0);
    assert_int_equal(tkv_sm_restore(&copy, b.data, b.len, NULL), 0);
    assert_int_equal(tkv_sm_hash(&copy), tkv_sm_hash(sm));
    tkv_sm_close(&copy);
    tkv_buf_close(&b);
}

static void model_run(void **state)
{
    const char *env = getenv("TKV_SEED");
    const char *steps_env = getenv("TKV_STEPS");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    long steps = steps_env ? atol(steps_env) : 100000;
    struct tkv_sm sm;
    struct model *m = calloc(1, sizeof *m);
    struct tkv_list_result *res = malloc(sizeof *res);
    struct gen g[MAXCMDS];
    uint64_t index = 0, seq[4] = {0};
    int64_t ts = 1000;
    long step = 0;
    (void)state;

    printf("model test seed: %" PRIu64 " (replay with TKV_SEED=%" PRIu64
           ")\n", seed, seed);
    rng = seed * 2654435761u + 1;
    make_pool();
    assert_int_equal(tkv_sm_init(&sm, NULL), 0);
    m->now = 0;

    while (step < steps) {
        uint64_t r = rndn(100);
        if (r < 25) {
            check_list(&sm, m, res);
            step++;
        } else {
            /* one entry of 1..MAXCMDS commands */
            size_t ncmds = rndn(4) == 0 ? 1 + rndn(MAXCMDS) : 1, i;
            struct tkv_buf body, entry;
            const struct tkv_result *got;
            size_t ngot;
            struct tkv_result want[MAXCMDS];
            uint64_t session = 0;
            int retry = 0;

            ts += (int64_t)rndn(400) - 50; /* sometimes backwards */
            tkv_buf_init(&body);
            tkv_buf_init(&entry);
            for (i = 0; i < ncmds; i++) {
                gen_cmd(&g[i], m);
            }
            /* a session write, sometimes sent twice */
            if (ncmds == 1 && g[0].c.type != TKV_CMD_TICK && rndn(5) == 0) {
                session = 1 + rndn(3);
                g[0].c.session = session;
                g[0].c.seq = ++seq[session];
                g[0].c.ack = seq[session];
                retry = rndn(2) == 0;
            }
            for (i = 0; i < ncmds; i++) {
                assert_int_equal(tkv_cmd_encode(&g[i].c, &body), 0);
            }
            assert_int_equal(
                tkv_entry_encode(ts, ncmds, body.data, body.len, &entry), 0);
            index++;
            m_advance(m, ts);
            for (i = 0; i < ncmds; i++) {
                want[i] = m_apply(m, &g[i], index << 16 | i);
            }
            assert_int_equal(tkv_sm_apply(&sm, index, entry.data, entry.len,
                                          &got, &ngot, NULL),
                             0);
            assert_int_equal(ngot, ncmds);
            for (i = 0; i < ncmds; i++) {
                assert_int_equal(got[i].code, want[i].code);
                assert_int_equal(got[i].version, want[i].version);
                if (want[i].code == TKV_ECONFLICT) {
                    assert_int_equal(got[i].conflict, want[i].conflict);
                }
            }
            if (retry) {
                /* the same write again in a later entry: same answer, and
                 * the data must not change */
                struct tkv_result first = got[0];
                index++;
                m_advance(m, ts);
                assert_int_equal(tkv_sm_apply(&sm, index, entry.data,
                                              entry.len, &got, &ngot, NULL),
                                 0);
                assert_int_equal(got[0].code, first.code);
                assert_int_equal(got[0].version, first.version);
                step++;
            }
            tkv_buf_close(&body);
            tkv_buf_close(&entry);
            step++;
        }
        if (step % 1000 == 0 || step >= steps) {
            compare_all(&sm, m);
        }
        if (step % 20000 == 0) {
            check_snapshot(&sm);
        }
    }
    compare_all(&sm, m);
    check_snapshot(&sm);
    tkv_sm_close(&sm);
    free(res);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
