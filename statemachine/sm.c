/* The deterministic state machine: apply, queries, sessions, snapshots.
 *
 * State:
 *   data      skiplist: encoded key -> value (msgpack), version, expires_at
 *   expiry    skiplist: 8-byte big-endian expires_at ++ key -> (empty), so
 *             its first node is always the next key to expire
 *   now       the state machine clock: max of every entry's timestamp
 *   sessions  id -> the results of the client's recent writes, in an
 *             open-addressing table for lookup and an LRU list ordered by
 *             last use (so idle sessions are found from the head, and
 *             snapshots and digests walk them in a deterministic order)
 *   members   id -> client address, sorted by id
 *
 * Apply of one entry (tkv_sm_apply):
 *   1. decode the whole entry; a corrupt entry changes nothing;
 *   2. now = max(now, entry timestamp);
 *   3. purge keys with expires_at <= now and sessions idle too long;
 *   4. for each command: deduplicate by (session, seq), then apply it;
 *      its versionstamp is index << 16 | position.
 * An atomic command validates every check before its first mutation, so it
 * applies all of its mutations or none.
 *
 * Nothing here reads a clock, draws a random number or iterates in hash
 * order: the skiplists draw levels from fixed seeds, and the session table and
 * the data list's hash index are only ever probed for one id or key, never
 * walked (snapshot, digest and list walk the skiplist in key order). */
#include "sm.h"

#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/hash.h"
#include "../common/mpread.h"
#include "cursor.h"
#include "value.h"

#define DATA_SEED 0x74757065646b7631ull   /* fixed: determinism */
#define EXPIRY_SEED 0x6578706972793031ull
#define SNAPSHOT_MAGIC "tuplekv-snapshot"
#define SNAPSHOT_FORMAT 1
#define EXPIRY_KEY_MAX (8 + TKV_KEY_MAX)

struct tkv_sess_result {
    uint64_t seq;
    struct tkv_result r;
};

struct tkv_session {
    uint64_t id;
    int64_t last_used;
    uint64_t floor;                   /* results below were forgotten */
    struct tkv_session *lru_prev;
    struct tkv_session *lru_next;
    /* The remembered results, sorted by seq: results[0..nresults) lies
     * inside buf, starting where the acknowledged ones were dropped (a
     * pointer bump, not a move); the gap is reclaimed when the end of buf
     * is reached. */
    struct tkv_sess_result *results;
    size_t nresults;
    struct tkv_sess_result *buf; /* owned, cap entries */
    size_t cap;
};

void tkv_sm_config_default(struct tkv_sm_config *cfg)
{
    cfg->session_idle_ms = 10 * 60 * 1000;
    cfg->max_sessions = 100000;
    cfg->session_window = 1024;
}

/* ------------------------------------------------------------------ */
/* Sessions                                                            */

static uint64_t sess_slot(uint64_t id, size_t cap)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return h & (cap - 1);
}

static struct tkv_session **sess_find_slot(const struct tkv_sm *sm,
                                           uint64_t id)
{
    size_t mask = sm->sess_cap - 1;
    size_t i = sess_slot(id, sm->sess_cap);
    while (sm->sess_table[i] != NULL) {
        if (sm->sess_table[i]->id == id) {
            return &sm->sess_table[i];
        }
        i = (i + 1) & mask;
    }
    return &sm->sess_table[i]; /* the empty slot where id would go */
}

static int sess_grow(struct tkv_sm *sm)
{
    size_t cap = sm->sess_cap * 2, i;
    struct tkv_session **old = sm->sess_table, **table;
    table = tkv_calloc(cap, sizeof *table);
    if (table == NULL) {
        return TKV_ENOMEM;
    }
    sm->sess_table = table;
    for (i = 0; i < sm->sess_cap; i++) {
        if (old[i] != NULL) {
            size_t j = sess_slot(old[i]->id, cap);
            while (table[j] != NULL) {
                j = (j + 1) & (cap - 1);
            }
            table[j] = old[i];
        }
    }
    sm->sess_cap = cap;
    tkv_free(old);
    return 0;
}

static void lru_unlink(struct tkv_sm *sm, struct tkv_session *s)
{
    if (s->lru_prev != NULL) {
        s->lru_prev->lru_next = s->lru_next;
    } else {
        sm->lru_head = s->lru_next;
    }
    if (s->lru_next != NULL) {
        s->lru_next->lru_prev = s->lru_prev;
    } else {
        sm->lru_tail = s->lru_prev;
    }
    s->lru_prev = s->lru_next = NULL;
}

static void lru_append(struct tkv_sm *sm, struct tkv_session *s)
{
    s->lru_prev = sm->lru_tail;
    s->lru_next = NULL;
    if (sm->lru_tail != NULL) {
        sm->lru_tail->lru_next = s;
    } else {
        sm->lru_head = s;
    }
    sm->lru_tail = s;
}

/* Remove from the table with backward-shift deletion (linear probing), so
 * lookups never need tombstones. */
static void sess_remove(struct tkv_sm *sm, struct tkv_session *s)
{
    size_t mask = sm->sess_cap - 1;
    struct tkv_session **slot = sess_find_slot(sm, s->id);
    size_t i = (size_t)(slot - sm->sess_table), j = i;
    assert(*slot == s);
    sm->sess_table[i] = NULL;
    for (;;) {
        size_t k;
        j = (j + 1) & mask;
        if (sm->sess_table[j] == NULL) {
            break;
        }
        k = sess_slot(sm->sess_table[j]->id, sm->sess_cap);
        /* Move j back to i unless its ideal slot k lies cyclically in
         * (i, j]. */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            sm->sess_table[i] = sm->sess_table[j];
            sm->sess_table[j] = NULL;
            i = j;
        }
    }
    lru_unlink(sm, s);
    sm->sess_count--;
    tkv_free(s->buf);
    tkv_free(s);
}

/* Insert a new, empty session at the LRU tail. */
static struct tkv_session *sess_create(struct tkv_sm *sm, uint64_t id,
                                       int64_t now)
{
    struct tkv_session *s, **slot;
    if (sm->sess_count >= sm->cfg.max_sessions && sm->lru_head != NULL) {
        sess_remove(sm, sm->lru_head);
    }
    if ((sm->sess_count + 1) * 2 > sm->sess_cap && sess_grow(sm) != 0) {
        return NULL;
    }
    s = tkv_calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->id = id;
    s->last_used = now;
    slot = sess_find_slot(sm, id);
    assert(*slot == NULL);
    *slot = s;
    sm->sess_count++;
    lru_append(sm, s);
    return s;
}

static struct tkv_session *sess_get(const struct tkv_sm *sm, uint64_t id)
{
    return *sess_find_slot(sm, id);
}

/* Forget results the client has acknowledged (seq < ack). */
static void sess_ack(struct tkv_session *s, uint64_t ack)
{
    size_t drop = 0;
    if (ack <= s->floor) {
        return;
    }
    s->floor = ack;
    while (drop < s->nresults && s->results[drop].seq < ack) {
        drop++;
    }
    if (drop > 0) { /* a new session has no results yet: results is NULL */
        s->results += drop;
        s->nresults -= drop;
    }
}

static const struct tkv_result *sess_lookup(const struct tkv_session *s,
                                            uint64_t seq)
{
    size_t lo = 0, hi = s->nresults;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->results[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < s->nresults && s->results[lo].seq == seq) {
        return &s->results[lo].r;
    }
    return NULL;
}

static int sess_store(struct tkv_sm *sm, struct tkv_session *s, uint64_t seq,
                      const struct tkv_result *r)
{
    size_t pos;
    size_t gap = (size_t)(s->results - s->buf);
    if (gap + s->nresults == s->cap) {
        /* Room for twice the window: reclaiming the gap then moves at most
         * one entry per store, on average. */
        size_t most = 2 * (sm->cfg.session_window + 1);
        if (gap > 0 && (s->cap == most || gap >= s->nresults)) {
            memmove(s->buf, s->results, s->nresults * sizeof *s->results);
            s->results = s->buf;
        } else {
            size_t cap = s->cap == 0 ? 4 : s->cap * 2;
            struct tkv_sess_result *p;
            if (cap > most) {
                cap = most;
            }
            p = tkv_realloc(s->buf, cap * sizeof *p);
            if (p == NULL) {
                return TKV_ENOMEM;
            }
            s->buf = p;
            s->results = p + gap;
            s->cap = cap;
        }
    }
    /* Usually seq is the largest so far: insertion at the end. */
    pos = s->nresults;
    while (pos > 0 && s->results[pos - 1].seq > seq) {
        pos--;
    }
    memmove(s->results + pos + 1, s->results + pos,
            (s->nresults - pos) * sizeof *s->results);
    s->results[pos].seq = seq;
    s->results[pos].r = *r;
    s->nresults++;
    if (s->nresults > sm->cfg.session_window) {
        /* Window full: forget the oldest; its seq is now below the floor. */
        s->floor = s->results[0].seq + 1;
        s->results++;
        s->nresults--;
    }
    return 0;
}

static void purge_sessions(struct tkv_sm *sm)
{
    while (sm->lru_head != NULL &&
           sm->lru_head->last_used <= sm->now - sm->cfg.session_idle_ms) {
        sess_remove(sm, sm->lru_head);
    }
}

/* ------------------------------------------------------------------ */
/* Members                                                             */

static size_t member_pos(const struct tkv_sm *sm, uint64_t id)
{
    size_t lo = 0, hi = sm->nmembers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sm->members[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int member_set(struct tkv_sm *sm, uint64_t id, const char *addr,
                      size_t len)
{
    size_t pos = member_pos(sm, id);
    if (pos == sm->nmembers || sm->members[pos].id != id) {
        struct tkv_member_addr *p =
            tkv_realloc(sm->members, (sm->nmembers + 1) * sizeof *p);
        if (p == NULL) {
            return TKV_ENOMEM;
        }
        sm->members = p;
        memmove(p + pos + 1, p + pos, (sm->nmembers - pos) * sizeof *p);
        sm->nmembers++;
        p[pos].id = id;
    }
    assert(len <= TKV_ADDR_MAX);
    memcpy(sm->members[pos].addr, addr, len);
    sm->members[pos].addr[len] = '\0';
    return 0;
}

static void member_del(struct tkv_sm *sm, uint64_t id)
{
    size_t pos = member_pos(sm, id);
    if (pos < sm->nmembers && sm->members[pos].id == id) {
        memmove(sm->members + pos, sm->members + pos + 1,
                (sm->nmembers - pos - 1) * sizeof *sm->members);
        sm->nmembers--;
    }
}

const char *tkv_sm_member_addr(const struct tkv_sm *sm, uint64_t id)
{
    size_t pos = member_pos(sm, id);
    if (pos < sm->nmembers && sm->members[pos].id == id) {
        return sm->members[pos].addr;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

int tkv_sm_init(struct tkv_sm *sm, const struct tkv_sm_config *cfg)
{
    memset(sm, 0, sizeof *sm);
    if (cfg != NULL) {
        sm->cfg = *cfg;
    } else {
        tkv_sm_config_default(&sm->cfg);
    }
    if (sm->cfg.max_sessions == 0) {
        sm->cfg.max_sessions = 1;
    }
    if (sm->cfg.session_window == 0) {
        sm->cfg.session_window = 1;
    }
    /* Point reads and writes go by key: the data list gets a hash index.
     * The expiry list is only read from its first node. */
    if (tkv_sl_init(&sm->data, DATA_SEED, 1) != 0) {
        goto err;
    }
    if (tkv_sl_init(&sm->expiry, EXPIRY_SEED, 0) != 0) {
        goto err_after_data_init;
    }
    sm->sess_cap = 64;
    sm->sess_table = tkv_calloc(sm->sess_cap, sizeof *sm->sess_table);
    if (sm->sess_table == NULL) {
        goto err_after_expiry_init;
    }
    return 0;

err_after_expiry_init:
    tkv_sl_close(&sm->expiry);
err_after_data_init:
    tkv_sl_close(&sm->data);
err:
    return TKV_ENOMEM;
}

void tkv_sm_close(struct tkv_sm *sm)
{
    while (sm->lru_head != NULL) {
        sess_remove(sm, sm->lru_head);
    }
    tkv_free(sm->sess_table);
    tkv_free(sm->members);
    tkv_free(sm->results);
    tkv_sm_snap_abort(sm);
    tkv_sl_close(&sm->expiry);
    tkv_sl_close(&sm->data);
    memset(sm, 0, sizeof *sm);
}

/* ------------------------------------------------------------------ */
/* Data and expiry                                                     */

static void snap_keep(struct tkv_sm *sm, const uint8_t *key, size_t klen);

static size_t expiry_key(int64_t expires_at, const uint8_t *key, size_t klen,
                         uint8_t out[EXPIRY_KEY_MAX])
{
    uint64_t v = (uint64_t)expires_at;
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(v >> (56 - 8 * i));
    }
    memcpy(out + 8, key, klen);
    return 8 + klen;
}

static int64_t expiry_time(const uint8_t *ekey)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | ekey[i];
    }
    return (int64_t)v;
}

/* Drop key's expiry index entry, if it has one. */
static void expiry_forget(struct tkv_sm *sm, const struct tkv_sl_node *n)
{
    uint8_t ek[EXPIRY_KEY_MAX];
    size_t eklen;
    int64_t expires_at = n != NULL ? tkv_sl_expires(n) : 0;
    if (expires_at == 0) {
        return;
    }
    eklen = expiry_key(expires_at, tkv_sl_key(n), n->klen, ek);
    tkv_sl_delete(&sm->expiry, ek, eklen);
}

static int64_t expires_from_ttl(int64_t now, uint64_t ttl_ms)
{
    if (ttl_ms == 0) {
        return 0;
    }
    if (ttl_ms > (uint64_t)(INT64_MAX - now)) {
        return INT64_MAX;
    }
    return now + (int64_t)ttl_ms;
}

/* path: what the prefetch walked for this key, or NULL. */
static int data_put(struct tkv_sm *sm, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen, uint64_t version,
                    uint64_t ttl_ms, const struct tkv_sl_path *path)
{
    int64_t expires_at = expires_from_ttl(sm->now, ttl_ms);
    int rv;
    /* Only keys with a TTL have index entries; skip the extra lookup when
     * there are none at all. */
    if (sm->expiry.length > 0) {
        expiry_forget(sm, tkv_sl_get(&sm->data, key, klen));
    }
    snap_keep(sm, key, klen);
    rv = tkv_sl_put_path(&sm->data, key, klen, val, vlen, version,
                         expires_at, path, NULL);
    if (rv != 0) {
        return rv;
    }
    if (expires_at != 0) {
        uint8_t ek[EXPIRY_KEY_MAX];
        size_t eklen = expiry_key(expires_at, key, klen, ek);
        rv = tkv_sl_put(&sm->expiry, ek, eklen, NULL, 0, 0, 0, NULL);
    }
    return rv;
}

static void data_delete(struct tkv_sm *sm, const uint8_t *key, size_t klen)
{
    if (sm->expiry.length > 0) {
        expiry_forget(sm, tkv_sl_get(&sm->data, key, klen));
    }
    snap_keep(sm, key, klen);
    tkv_sl_delete(&sm->data, key, klen);
}

static void purge_expired(struct tkv_sm *sm)
{
    struct tkv_sl_node *n;
    while ((n = tkv_sl_first(&sm->expiry)) != NULL &&
           expiry_time(tkv_sl_key(n)) <= sm->now) {
        uint8_t ek[EXPIRY_KEY_MAX];
        size_t eklen = n->klen;
        memcpy(ek, tkv_sl_key(n), eklen);
        snap_keep(sm, ek + 8, eklen - 8);
        tkv_sl_delete(&sm->data, ek + 8, eklen - 8);
        tkv_sl_delete(&sm->expiry, ek, eklen);
    }
}

/* ------------------------------------------------------------------ */
/* Apply                                                               */

static int apply_mutation(struct tkv_sm *sm, const struct tkv_mutation *m,
                          uint64_t version, const struct tkv_sl_path *path)
{
    if (m->type == TKV_CMD_SET) {
        return data_put(sm, m->key, m->klen, m->value, m->vlen, version,
                        m->ttl_ms, path);
    }
    data_delete(sm, m->key, m->klen);
    return 0;
}

static int apply_atomic(struct tkv_sm *sm, const struct tkv_cmd *c,
                        uint64_t version, struct tkv_result *r)
{
    uint32_t i;
    for (i = 0; i < c->nchecks; i++) {
        const struct tkv_check *chk = &c->checks[i];
        const struct tkv_sl_node *n = tkv_sl_get(&sm->data, chk->key,
                                                 chk->klen);
        uint64_t cur = n != NULL ? n->version : 0;
        if (cur != chk->version) {
            r->code = TKV_ECONFLICT;
            r->conflict = i;
            return 0;
        }
    }
    for (i = 0; i < c->nmuts; i++) {
        int rv = apply_mutation(sm, &c->muts[i], version, NULL);
        if (rv != 0) {
            return rv;
        }
    }
    r->version = version;
    return 0;
}

static int apply_write(struct tkv_sm *sm, const struct tkv_cmd *c,
                       uint64_t version, const struct tkv_sl_path *path,
                       struct tkv_result *r)
{
    switch (c->type) {
        case TKV_CMD_SET:
        case TKV_CMD_DELETE:
            r->version = version;
            return apply_mutation(sm, &c->mut, version, path);
        case TKV_CMD_ATOMIC:
            return apply_atomic(sm, c, version, r);
    }
    r->code = TKV_EINVALID;
    return 0;
}

static int apply_cmd(struct tkv_sm *sm, const struct tkv_cmd *c,
                     uint64_t version, const struct tkv_sl_path *path,
                     struct tkv_result *r)
{
    struct tkv_session *s = NULL;
    const struct tkv_result *prev;
    int rv;

    memset(r, 0, sizeof *r);
    switch (c->type) {
        case TKV_CMD_TICK:
            return 0;
        case TKV_CMD_MEMBER_SET:
            return member_set(sm, c->member_id, c->addr, c->addrlen);
        case TKV_CMD_MEMBER_DEL:
            member_del(sm, c->member_id);
            return 0;
    }

    if (c->session != 0) {
        s = sess_get(sm, c->session);
        if (s == NULL) {
            s = sess_create(sm, c->session, sm->now);
            if (s == NULL) {
                return TKV_ENOMEM;
            }
        } else {
            s->last_used = sm->now;
            lru_unlink(sm, s);
            lru_append(sm, s);
        }
        sess_ack(s, c->ack);
        if (c->seq < s->floor) {
            r->code = TKV_ESTALE;
            return 0;
        }
        prev = sess_lookup(s, c->seq);
        if (prev != NULL) {
            *r = *prev; /* a retry: answer as the first time */
            return 0;
        }
    }
    rv = apply_write(sm, c, version, path, r);
    if (rv != 0) {
        return rv;
    }
    return s != NULL ? sess_store(sm, s, c->seq, r) : 0;
}

/* Commands whose keys are fetched into the cache together before they are
 * applied (tkv_sl_prefetch): at a million keys, most of an apply's time is
 * cache misses along the skiplist searches, and a batch of searches walked
 * side by side overlaps them. The paths walked are kept, paths[i] for
 * cmds[i], so that a set need not search again (tkv_sl_put_path). */
#define APPLY_PREFETCH 32

static void data_prefetch(const struct tkv_sm *sm, const struct tkv_cmd *cmds,
                          size_t n, struct tkv_sl_path *paths /* OUT */)
{
    struct tkv_sl_intent ops[APPLY_PREFETCH];
    size_t i, nops = 0;

    for (i = 0; i < n && i < APPLY_PREFETCH; i++) {
        const struct tkv_mutation *m = &cmds[i].mut;
        paths[i].sl = NULL;
        if (cmds[i].type != TKV_CMD_SET && cmds[i].type != TKV_CMD_DELETE) {
            continue;
        }
        ops[nops].path = &paths[i];
        ops[nops].key = m->key;
        ops[nops].klen = m->klen;
        ops[nops].op = m->type == TKV_CMD_SET ? TKV_SL_PUT : TKV_SL_DELETE;
        ops[nops].vlen = m->vlen;
        ops[nops].expires_at = expires_from_ttl(sm->now, m->ttl_ms);
        nops++;
    }
    if (nops > 1) { /* one search has nothing to overlap with */
        tkv_sl_prefetch(&sm->data, ops, nops);
    }
}

int tkv_sm_apply(struct tkv_sm *sm, uint64_t index, const uint8_t *buf,
                 size_t len, const struct tkv_result **results,
                 size_t *nresults, struct tkv_err *err)
{
    struct tkv_sl_path paths[APPLY_PREFETCH];
    struct tkv_entry e;
    size_t i;
    int rv;

    *results = sm->results;
    *nresults = 0;
    rv = tkv_entry_decode(buf, len, &e, err);
    if (rv != 0) {
        if (rv == TKV_ECORRUPT) {
            sm->applied_index = index;
        }
        return rv;
    }
    if (e.ncmds > sm->results_cap) {
        struct tkv_result *p = tkv_realloc(sm->results, e.ncmds * sizeof *p);
        if (p == NULL) {
            tkv_entry_close(&e);
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        sm->results = p;
        sm->results_cap = e.ncmds;
    }
    sm->applied_index = index;
    if (e.timestamp_ms > sm->now) {
        sm->now = e.timestamp_ms;
    }
    purge_expired(sm);
    purge_sessions(sm);
    for (i = 0; i < e.ncmds; i++) {
        uint64_t version = index << 16 | i;
        if (i % APPLY_PREFETCH == 0) {
            data_prefetch(sm, &e.cmds[i], e.ncmds - i, paths);
        }
        rv = apply_cmd(sm, &e.cmds[i], version, &paths[i % APPLY_PREFETCH],
                       &sm->results[i]);
        if (rv != 0) {
            tkv_entry_close(&e);
            return tkv_err_set(err, rv, "out of memory while applying "
                               "entry %" PRIu64, index);
        }
    }
    tkv_entry_close(&e);
    *results = sm->results;
    *nresults = i;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */

const struct tkv_sl_node *tkv_sm_get(const struct tkv_sm *sm,
                                     const uint8_t *key, size_t klen)
{
    return tkv_sl_get(&sm->data, key, klen);
}

/* A bound of a key range: absent (unbounded) or a byte string. */
struct bound {
    int set;
    size_t len;
    uint8_t bytes[TKV_KEY_MAX + 1];
};

static void bound_set(struct bound *b, const uint8_t *p, size_t n)
{
    b->set = 1;
    b->len = n;
    memcpy(b->bytes, p, n);
}

static int bound_cmp(const struct bound *a, const struct bound *b)
{
    return tkv_key_cmp(a->bytes, a->len, b->bytes, b->len);
}

/* Tighten lo to max(lo, x) / hi to min(hi, x). */
static void lo_raise(struct bound *lo, const struct bound *x)
{
    if (x->set && (!lo->set || bound_cmp(x, lo) > 0)) {
        *lo = *x;
    }
}

static void hi_lower(struct bound *hi, const struct bound *x)
{
    if (x->set && (!hi->set || bound_cmp(x, hi) < 0)) {
        *hi = *x;
    }
}

static int in_range(const struct bound *lo, const struct bound *hi,
                    const uint8_t *k, size_t klen)
{
    if (lo->set && tkv_key_cmp(k, klen, lo->bytes, lo->len) < 0) {
        return 0;
    }
    if (hi->set && tkv_key_cmp(k, klen, hi->bytes, hi->len) >= 0) {
        return 0;
    }
    return 1;
}

static size_t bound_rank(const struct tkv_sm *sm, const struct bound *b,
                         size_t unset)
{
    return b->set ? tkv_sl_rank(&sm->data, b->bytes, b->len) : unset;
}

int tkv_sm_list(const struct tkv_sm *sm, const struct tkv_list_query *q,
                struct tkv_list_result *out, struct tkv_err *err)
{
    struct bound lo = {0}, hi = {0}, x;
    int64_t limit = q->limit == 0 ? TKV_LIST_DEFAULT_LIMIT : q->limit;
    size_t rlo, rhi, remaining, want, n_got, i;

    out->n = 0;
    out->total = 0;
    out->cursor[0] = '\0';
    if (limit < 1 || limit > TKV_LIST_MAX_LIMIT) {
        return tkv_err_set(err, TKV_EINVALID,
                           "limit must be an integer between 1 and %d",
                           TKV_LIST_MAX_LIMIT);
    }
    if (q->prefix == NULL && q->start == NULL && q->end == NULL) {
        return tkv_err_set(err, TKV_EINVALID,
                           "list selector needs a prefix, a start or an end");
    }
    if ((q->prefix != NULL && q->prefix_len > TKV_KEY_MAX) ||
        (q->start != NULL && q->start_len > TKV_KEY_MAX) ||
        (q->end != NULL && q->end_len > TKV_KEY_MAX)) {
        return tkv_err_set(err, TKV_EINVALID, "selector key is too large");
    }

    /* prefix P: keys P ++ part, i.e. [P ++ 0x00, P ++ 0xFF): a part's tag
     * is never 0x00 or 0xFF, and P itself sorts before P ++ 0x00. */
    if (q->prefix != NULL) {
        bound_set(&lo, q->prefix, q->prefix_len);
        lo.bytes[lo.len++] = 0x00;
        bound_set(&hi, q->prefix, q->prefix_len);
        hi.bytes[hi.len++] = 0xFF;
    }
    if (q->start != NULL) {
        bound_set(&x, q->start, q->start_len);
        lo_raise(&lo, &x);
    }
    if (q->end != NULL) {
        bound_set(&x, q->end, q->end_len);
        hi_lower(&hi, &x);
    }

    /* Everything below is rank arithmetic: one search per bound, then a
     * walk of exactly the items wanted, with no per-item comparisons. */
    rlo = bound_rank(sm, &lo, 0);
    rhi = bound_rank(sm, &hi, sm->data.length);
    out->total = rhi > rlo ? rhi - rlo : 0;

    if (q->cursor != NULL) {
        uint8_t k[TKV_KEY_MAX];
        size_t klen;
        int rv = tkv_cursor_decode(q->cursor, q->cursor_len,
                                   tkv_cursor_selector_hash(q), q->reverse,
                                   k, &klen, err);
        if (rv != 0) {
            return rv;
        }
        if (out->total == 0 || !in_range(&lo, &hi, k, klen)) {
            return tkv_err_set(err, TKV_EBAD_CURSOR,
                               "invalid cursor: it lies outside the selector");
        }
        if (q->reverse) {
            bound_set(&hi, k, klen); /* continue below the last key */
            rhi = tkv_sl_rank(&sm->data, k, klen);
        } else {
            /* k ++ 0x00 is the least key greater than k. */
            bound_set(&lo, k, klen);
            lo.bytes[lo.len++] = 0x00;
            rlo = tkv_sl_rank(&sm->data, lo.bytes, lo.len);
        }
    }
    if (rhi <= rlo) {
        return 0;
    }
    remaining = rhi - rlo;
    want = remaining < (size_t)limit ? remaining : (size_t)limit;
    /* Both directions fetch the window of ranks they return in key order
     * (the list has no backward links: they would cost 8 bytes a node). */
    n_got = tkv_sl_range(&sm->data, q->reverse ? rhi - want : rlo, want,
                         out->items);
    assert(n_got == want);
    (void)n_got;
    if (q->reverse) {
        for (i = 0; i < want / 2; i++) {
            const struct tkv_sl_node *tmp = out->items[i];
            out->items[i] = out->items[want - 1 - i];
            out->items[want - 1 - i] = tmp;
        }
    }
    out->n = want;
    /* A byte budget ends a page early (at least one item), so a page of
     * big values still fits in one reply; the cursor takes it from there. */
    if (q->max_bytes > 0) {
        size_t bytes = 0;
        for (i = 0; i < want; i++) {
            bytes += out->items[i]->klen + out->items[i]->vlen +
                     TKV_LIST_ITEM_OVERHEAD;
            if (bytes > q->max_bytes && i > 0) {
                out->n = i;
                break;
            }
        }
    }
    want = out->n;
    if (remaining > want) {
        const struct tkv_sl_node *last = out->items[out->n - 1];
        tkv_cursor_encode(tkv_cursor_selector_hash(q), q->reverse,
                          tkv_sl_key(last), last->klen, out->cursor);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Versions                                                            */

void tkv_version_format(uint64_t version, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(version >> (60 - 4 * i)) & 15];
    }
    out[16] = '\0';
}

int tkv_version_parse(const char *s, size_t len, uint64_t *version)
{
    uint64_t v = 0;
    if (len != 16) {
        return TKV_EINVALID;
    }
    for (size_t i = 0; i < 16; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return TKV_EINVALID;
        }
        v = v << 4 | (uint64_t)d;
    }
    *version = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Digest                                                              */

/* Every data entry in key order (the skiplist, never a hash table), a page
 * at a time: tkv_sl_range fetches a page's nodes along many chains at once
 * where tkv_sl_next would miss the cache once per node, one after the
 * other. */
#define WALK_PAGE 256

struct data_walk {
    const struct tkv_sl_node *page[WALK_PAGE];
    size_t n;    /* nodes in page */
    size_t i;    /* next to return */
    size_t rank; /* of the node after the page */
};

static const struct tkv_sl_node *walk_next(const struct tkv_sm *sm,
                                           struct data_walk *w)
{
    if (w->i == w->n) {
        w->n = tkv_sl_range(&sm->data, w->rank, WALK_PAGE, w->page);
        w->rank += w->n;
        w->i = 0;
        if (w->n == 0) {
            return NULL;
        }
    }
    return w->page[w->i++];
}

uint64_t tkv_sm_hash(const struct tkv_sm *sm)
{
    struct tkv_hash h;
    struct data_walk walk = {.n = 0}; /* all zero: before the first page */
    const struct tkv_sl_node *n;
    const struct tkv_session *s;
    size_t i;

    tkv_hash_init(&h, 0x736d2d6861736821ull);
    tkv_hash_u64(&h, (uint64_t)sm->now);
    tkv_hash_u64(&h, sm->data.length);
    while ((n = walk_next(sm, &walk)) != NULL) {
        tkv_hash_u64(&h, n->klen);
        tkv_hash_update(&h, tkv_sl_key(n), n->klen);
        tkv_hash_u64(&h, n->vlen);
        tkv_hash_update(&h, tkv_sl_value(n), n->vlen);
        tkv_hash_u64(&h, n->version);
        tkv_hash_u64(&h, (uint64_t)tkv_sl_expires(n));
    }
    tkv_hash_u64(&h, sm->sess_count);
    for (s = sm->lru_head; s != NULL; s = s->lru_next) {
        tkv_hash_u64(&h, s->id);
        tkv_hash_u64(&h, (uint64_t)s->last_used);
        tkv_hash_u64(&h, s->floor);
        tkv_hash_u64(&h, s->nresults);
        for (i = 0; i < s->nresults; i++) {
            tkv_hash_u64(&h, s->results[i].seq);
            tkv_hash_u64(&h, (uint64_t)(int64_t)s->results[i].r.code);
            tkv_hash_u64(&h, s->results[i].r.conflict);
            tkv_hash_u64(&h, s->results[i].r.version);
        }
    }
    tkv_hash_u64(&h, sm->nmembers);
    for (i = 0; i < sm->nmembers; i++) {
        tkv_hash_u64(&h, sm->members[i].id);
        tkv_hash_update(&h, sm->members[i].addr, strlen(sm->members[i].addr));
    }
    return tkv_hash_final(&h);
}

/* ------------------------------------------------------------------ */
/* Snapshot                                                            */
/*
 * A stream of msgpack objects:
 *   ["tuplekv-snapshot", 1, now, applied_index, nkeys, nsessions, nmembers]
 *   nkeys     x [key bin, value bin, version, expires_at]   (key order)
 *   nsessions x [id, last_used, floor, [[seq, code, conflict, version]...]]
 *                                                      (LRU order)
 *   nmembers  x [id, address]                           (id order)
 *   ["end", checksum of every byte before this object]
 */

struct snap_writer {
    msgpack_packer *out;
    struct tkv_hash h;
};

static int snap_write_cb(void *data, const char *p, size_t n)
{
    struct snap_writer *w = data;
    tkv_hash_update(&w->h, p, n);
    return w->out->callback(w->out->data, p, n);
}

#define PACK(call)              \
    do {                        \
        if ((call) != 0) {      \
            return TKV_ENOMEM;  \
        }                       \
    } while (0)

static int pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    PACK(msgpack_pack_bin(pk, n));
    PACK(msgpack_pack_bin_body(pk, p, n));
    return 0;
}

static int snap_pack_header(msgpack_packer *pk, const struct tkv_sm *sm)
{
    PACK(msgpack_pack_array(pk, 7));
    PACK(msgpack_pack_str_with_body(pk, SNAPSHOT_MAGIC,
                                    sizeof SNAPSHOT_MAGIC - 1));
    PACK(msgpack_pack_uint64(pk, SNAPSHOT_FORMAT));
    PACK(msgpack_pack_int64(pk, sm->now));
    PACK(msgpack_pack_uint64(pk, sm->applied_index));
    PACK(msgpack_pack_uint64(pk, sm->data.length));
    PACK(msgpack_pack_uint64(pk, sm->sess_count));
    PACK(msgpack_pack_uint64(pk, sm->nmembers));
    return 0;
}

static int snap_pack_entry(msgpack_packer *pk, const struct tkv_sl_node *n)
{
    PACK(msgpack_pack_array(pk, 4));
    PACK(pack_bin(pk, tkv_sl_key(n), n->klen));
    PACK(pack_bin(pk, tkv_sl_value(n), n->vlen));
    PACK(msgpack_pack_uint64(pk, n->version));
    PACK(msgpack_pack_int64(pk, tkv_sl_expires(n)));
    return 0;
}

/* Sessions and members: what follows the entries. */
static int snap_pack_rest(msgpack_packer *pk, const struct tkv_sm *sm)
{
    const struct tkv_session *s;
    size_t i;

    for (s = sm->lru_head; s != NULL; s = s->lru_next) {
        PACK(msgpack_pack_array(pk, 4));
        PACK(msgpack_pack_uint64(pk, s->id));
        PACK(msgpack_pack_int64(pk, s->last_used));
        PACK(msgpack_pack_uint64(pk, s->floor));
        PACK(msgpack_pack_array(pk, (uint32_t)s->nresults));
        for (i = 0; i < s->nresults; i++) {
            const struct tkv_sess_result *r = &s->results[i];
            PACK(msgpack_pack_array(pk, 4));
            PACK(msgpack_pack_uint64(pk, r->seq));
            PACK(msgpack_pack_int(pk, r->r.code));
            PACK(msgpack_pack_uint32(pk, r->r.conflict));
            PACK(msgpack_pack_uint64(pk, r->r.version));
        }
    }
    for (i = 0; i < sm->nmembers; i++) {
        PACK(msgpack_pack_array(pk, 2));
        PACK(msgpack_pack_uint64(pk, sm->members[i].id));
        PACK(msgpack_pack_str_with_body(pk, sm->members[i].addr,
                                        strlen(sm->members[i].addr)));
    }
    return 0;
}

/* The trailer goes straight to the caller: it is not part of the
 * checksummed bytes. */
static int snap_pack_trailer(msgpack_packer *out, struct tkv_hash *h)
{
    PACK(msgpack_pack_array(out, 2));
    PACK(msgpack_pack_str_with_body(out, "end", 3));
    PACK(msgpack_pack_uint64(out, tkv_hash_final(h)));
    return 0;
}

int tkv_sm_snapshot(const struct tkv_sm *sm, msgpack_packer *out)
{
    struct snap_writer w;
    msgpack_packer pk;
    struct data_walk walk = {.n = 0}; /* all zero: before the first page */
    const struct tkv_sl_node *n;
    int rv;

    w.out = out;
    tkv_hash_init(&w.h, 0);
    msgpack_packer_init(&pk, &w, snap_write_cb);

    rv = snap_pack_header(&pk, sm);
    while (rv == 0 && (n = walk_next(sm, &walk)) != NULL) {
        rv = snap_pack_entry(&pk, n);
    }
    if (rv == 0) {
        rv = snap_pack_rest(&pk, sm);
    }
    return rv != 0 ? rv : snap_pack_trailer(out, &w.h);
}

/* ---- the stepped snapshot ------------------------------------------------
 *
 * The same stream as tkv_sm_snapshot's, of the state at tkv_sm_snap_begin,
 * written a few keys at a time while entries go on being applied. The
 * header, sessions and members are taken whole at the start; the entries
 * come in key order from a cursor (the last key written). An entry that is
 * about to change or go while it is still ahead of the cursor, and that is
 * as it was at the start (its version is not newer), is copied first into
 * a list of its own (`pre`); each step merges that list with the live one,
 * skipping live entries newer than the start. Versions are index << 16 |
 * position, so "newer" is a comparison with the start's applied index.
 * Copying happens inside apply, but changes nothing apply decides: same
 * answers, same state, on every replica. */
#define PRE_SEED 0x7072652d696d6731ull

struct tkv_sm_snap {
    struct snap_writer w;  /* out and the running checksum */
    uint64_t newer;        /* versions above this came after the start */
    uint64_t nkeys;        /* entries at the start */
    uint64_t written;      /* entries written so far */
    int failed;            /* a copy ran out of memory: the stream is lost */
    int cursor_set;        /* a key has been written */
    struct tkv_skiplist pre; /* entries as at the start, copied before a
                              * change; owned */
    struct tkv_buf rest;   /* sessions and members at the start; owned */
    size_t clen;
    uint8_t cursor[TKV_KEY_MAX]; /* the last key written */
};

static void snap_keep(struct tkv_sm *sm, const uint8_t *key, size_t klen)
{
    struct tkv_sm_snap *s = sm->snap;
    const struct tkv_sl_node *n;

    if (s == NULL || s->failed ||
        (s->cursor_set && tkv_key_cmp(key, klen, s->cursor, s->clen) <= 0)) {
        return; /* none running, lost, or the key is written already */
    }
    n = tkv_sl_get(&sm->data, key, klen);
    if (n == NULL || n->version > s->newer) {
        return; /* not in the start's state, or copied when it first changed */
    }
    if (tkv_sl_put(&s->pre, key, klen, tkv_sl_value(n), n->vlen, n->version,
                   tkv_sl_expires(n), NULL) != 0) {
        s->failed = 1;
    }
}

int tkv_sm_snap_begin(struct tkv_sm *sm, msgpack_packer *out)
{
    struct tkv_sm_snap *s;
    msgpack_packer pk;
    int rv;

    tkv_sm_snap_abort(sm);
    s = tkv_malloc(sizeof *s);
    if (s == NULL) {
        return TKV_ENOMEM;
    }
    memset(s, 0, offsetof(struct tkv_sm_snap, cursor));
    if (tkv_sl_init(&s->pre, PRE_SEED, 0) != 0) {
        tkv_free(s);
        return TKV_ENOMEM;
    }
    tkv_buf_init(&s->rest);
    s->newer = sm->applied_index << 16 | 0xffffu;
    s->nkeys = sm->data.length;
    s->w.out = out;
    tkv_hash_init(&s->w.h, 0);
    sm->snap = s;

    msgpack_packer_init(&pk, &s->rest, tkv_buf_msgpack_write);
    rv = snap_pack_rest(&pk, sm);
    if (rv == 0 && s->rest.failed) {
        rv = TKV_ENOMEM;
    }
    if (rv == 0) {
        msgpack_packer_init(&pk, &s->w, snap_write_cb);
        rv = snap_pack_header(&pk, sm);
    }
    if (rv != 0) {
        tkv_sm_snap_abort(sm);
    }
    return rv;
}

/* Rank in sl of the first key after the cursor (0 before the first). */
static size_t snap_rank_after(const struct tkv_sm_snap *s,
                              const struct tkv_skiplist *sl)
{
    const struct tkv_sl_node *n;
    size_t rank;

    if (!s->cursor_set) {
        return 0;
    }
    n = tkv_sl_seek(sl, s->cursor, s->clen, &rank);
    if (n != NULL && n->klen == s->clen &&
        memcmp(tkv_sl_key(n), s->cursor, s->clen) == 0) {
        rank++;
    }
    return rank;
}

/* Next live entry as it was at the start: not newer than it. */
static const struct tkv_sl_node *snap_live_next(const struct tkv_sm *sm,
                                                struct data_walk *walk)
{
    const struct tkv_sl_node *n;

    do {
        n = walk_next(sm, walk);
    } while (n != NULL && n->version > sm->snap->newer);
    return n;
}

int tkv_sm_snap_step(struct tkv_sm *sm, msgpack_packer *out, size_t max,
                     int *done)
{
    struct tkv_sm_snap *s = sm->snap;
    struct data_walk walk = {.n = 0};
    const struct tkv_sl_node *live, *old, *n;
    msgpack_packer pk;
    size_t k;
    int rv;

    *done = 0;
    if (s == NULL) {
        return TKV_EINVALID;
    }
    if (s->failed) {
        return TKV_ENOMEM;
    }
    s->w.out = out;
    msgpack_packer_init(&pk, &s->w, snap_write_cb);
    /* the live list a page at a time, as tkv_sm_snapshot walks it; the
     * kept entries are few, one by one */
    walk.rank = snap_rank_after(s, &sm->data);
    live = snap_live_next(sm, &walk);
    old = tkv_sl_at(&s->pre, snap_rank_after(s, &s->pre));
    for (k = 0; k < max; k++) {
        if (live == NULL && old == NULL) {
            break;
        }
        if (live == NULL ||
            (old != NULL && tkv_key_cmp(tkv_sl_key(old), old->klen,
                                        tkv_sl_key(live), live->klen) <= 0)) {
            n = old;
            old = tkv_sl_next(old);
        } else {
            n = live;
            live = snap_live_next(sm, &walk);
        }
        rv = snap_pack_entry(&pk, n);
        if (rv != 0) {
            return rv;
        }
        memcpy(s->cursor, tkv_sl_key(n), n->klen);
        s->clen = n->klen;
        s->cursor_set = 1;
        s->written++;
    }
    if (k == max) {
        return 0;
    }
    /* every entry written: the count must be the start's */
    if (s->written != s->nkeys) {
        return TKV_EINTERNAL;
    }
    rv = s->rest.len > 0 ? snap_write_cb(&s->w, (const char *)s->rest.data,
                                         s->rest.len)
                         : 0;
    if (rv == 0) {
        rv = snap_pack_trailer(out, &s->w.h);
    }
    if (rv == 0) {
        tkv_sm_snap_abort(sm);
        *done = 1;
    }
    return rv;
}

int tkv_sm_snap_running(const struct tkv_sm *sm)
{
    return sm->snap != NULL;
}

void tkv_sm_snap_abort(struct tkv_sm *sm)
{
    struct tkv_sm_snap *s = sm->snap;

    if (s == NULL) {
        return;
    }
    tkv_sl_close(&s->pre);
    tkv_buf_close(&s->rest);
    tkv_free(s);
    sm->snap = NULL;
}

/* Restore reads the stream with the strict cursor of common/mpread.h (no
 * allocation driven by counts in the data); each reader checks shape and
 * types and fails with a message naming what was wrong. */
struct snap_reader {
    struct tkv_mpr r;
    struct tkv_err *err;
};

static int corrupt(struct snap_reader *r, const char *what)
{
    return tkv_err_set(r->err, TKV_ECORRUPT,
                       "snapshot: malformed or truncated %s at byte %zu",
                       what, r->r.off);
}

static int rd_array(struct snap_reader *r, uint32_t n, const char *what)
{
    uint32_t got;
    if (tkv_mpr_array(&r->r, &got) != 0 || got != n) {
        return corrupt(r, what);
    }
    return 0;
}

static int rd_uint(struct snap_reader *r, uint64_t *v, const char *what)
{
    return tkv_mpr_uint(&r->r, v) == 0 ? 0 : corrupt(r, what);
}

static int rd_int(struct snap_reader *r, int64_t *v, const char *what)
{
    return tkv_mpr_int(&r->r, v) == 0 ? 0 : corrupt(r, what);
}

static int rd_header(struct snap_reader *r, struct tkv_sm *sm,
                     uint64_t counts[3])
{
    const char *magic;
    uint32_t mlen;
    uint64_t format = 0;
    int rv;
    if ((rv = rd_array(r, 7, "header")) != 0) {
        return rv;
    }
    if (tkv_mpr_str(&r->r, &magic, &mlen) != 0 ||
        mlen != sizeof SNAPSHOT_MAGIC - 1 ||
        memcmp(magic, SNAPSHOT_MAGIC, mlen) != 0) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: not a tuplekv snapshot");
    }
    if ((rv = rd_uint(r, &format, "format")) != 0) {
        return rv;
    }
    if (format != SNAPSHOT_FORMAT) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: unsupported format %" PRIu64, format);
    }
    if ((rv = rd_int(r, &sm->now, "clock")) != 0 ||
        (rv = rd_uint(r, &sm->applied_index, "applied index")) != 0 ||
        (rv = rd_uint(r, &counts[0], "key count")) != 0 ||
        (rv = rd_uint(r, &counts[1], "session count")) != 0 ||
        (rv = rd_uint(r, &counts[2], "member count")) != 0) {
        return rv;
    }
    if (sm->now < 0) {
        return corrupt(r, "clock");
    }
    return 0;
}

static int rd_entry(struct snap_reader *r, struct tkv_sm *sm,
                    struct bound *prev)
{
    uint64_t version = 0;
    int64_t expires_at = 0;
    const uint8_t *k, *v;
    uint32_t klen, vlen;
    int rv;

    if ((rv = rd_array(r, 4, "entry")) != 0) {
        return rv;
    }
    if (tkv_mpr_bin(&r->r, &k, &klen) != 0 ||
        tkv_mpr_bin(&r->r, &v, &vlen) != 0) {
        return corrupt(r, "entry key or value");
    }
    if (tkv_key_validate(k, klen, 0, NULL) != 0) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: entry %zu has an invalid key",
                           sm->data.length);
    }
    if (prev->set && tkv_key_cmp(prev->bytes, prev->len, k, klen) >= 0) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: keys out of order at entry %zu",
                           sm->data.length);
    }
    if ((rv = rd_uint(r, &version, "version")) != 0 ||
        (rv = rd_int(r, &expires_at, "expiry")) != 0) {
        return rv;
    }
    if (version == 0 || expires_at < 0 ||
        (expires_at != 0 && expires_at <= sm->now)) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: entry %zu has a bad version or expiry",
                           sm->data.length);
    }
    if (tkv_value_check_bytes(v, vlen, NULL, NULL) != 0) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: entry %zu has an invalid value",
                           sm->data.length);
    }
    bound_set(prev, k, klen);
    /* In key order (checked above): appended, no search. */
    rv = tkv_sl_append(&sm->data, k, klen, v, vlen, version, expires_at);
    if (rv == TKV_EINVALID) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: keys out of order at entry %zu",
                           sm->data.length);
    }
    if (rv == 0 && expires_at != 0) {
        uint8_t ek[EXPIRY_KEY_MAX];
        size_t eklen = expiry_key(expires_at, k, klen, ek);
        rv = tkv_sl_put(&sm->expiry, ek, eklen, NULL, 0, 0, 0, NULL);
    }
    return rv == 0 ? 0 : tkv_err_set(r->err, rv, "out of memory");
}

static int code_known(int64_t code)
{
    return code == 0 ||
           (code < 0 && code >= INT32_MIN &&
            strcmp(tkv_errname((int)code), "ERROR") != 0);
}

static int rd_session(struct snap_reader *r, struct tkv_sm *sm)
{
    struct tkv_session *s;
    uint64_t id = 0, floor = 0, prev_seq = 0;
    int64_t last_used = 0;
    uint32_t i, n;
    int rv;

    if ((rv = rd_array(r, 4, "session")) != 0 ||
        (rv = rd_uint(r, &id, "session id")) != 0 ||
        (rv = rd_int(r, &last_used, "session last use")) != 0 ||
        (rv = rd_uint(r, &floor, "session floor")) != 0) {
        return rv;
    }
    if (tkv_mpr_array(&r->r, &n) != 0 || n > sm->cfg.session_window) {
        return corrupt(r, "session results");
    }
    if (id == 0 || sess_get(sm, id) != NULL || last_used > sm->now ||
        (sm->lru_tail != NULL && last_used < sm->lru_tail->last_used)) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: session %" PRIu64 " is inconsistent",
                           id);
    }
    s = sess_create(sm, id, last_used);
    if (s == NULL) {
        return tkv_err_set(r->err, TKV_ENOMEM, "out of memory");
    }
    s->floor = floor;
    for (i = 0; i < n; i++) {
        struct tkv_result res = {0};
        uint64_t seq = 0, conflict = 0;
        int64_t code = 0;
        if ((rv = rd_array(r, 4, "session result")) != 0 ||
            (rv = rd_uint(r, &seq, "seq")) != 0 ||
            (rv = rd_int(r, &code, "code")) != 0 ||
            (rv = rd_uint(r, &conflict, "conflict")) != 0 ||
            (rv = rd_uint(r, &res.version, "version")) != 0) {
            return rv;
        }
        if (seq < floor || (i > 0 && seq <= prev_seq) || !code_known(code) ||
            conflict > UINT32_MAX) {
            return tkv_err_set(r->err, TKV_ECORRUPT,
                               "snapshot: session %" PRIu64
                               " has a bad result", id);
        }
        res.code = (int)code;
        res.conflict = (uint32_t)conflict;
        if (sess_store(sm, s, seq, &res) != 0) {
            return tkv_err_set(r->err, TKV_ENOMEM, "out of memory");
        }
        prev_seq = seq;
    }
    return 0;
}

static int rd_member(struct snap_reader *r, struct tkv_sm *sm)
{
    uint64_t id = 0;
    const char *addr;
    uint32_t len;
    int rv;
    if ((rv = rd_array(r, 2, "member")) != 0 ||
        (rv = rd_uint(r, &id, "member id")) != 0) {
        return rv;
    }
    if (tkv_mpr_str(&r->r, &addr, &len) != 0 || len == 0 ||
        len > TKV_ADDR_MAX || memchr(addr, '\0', len) != NULL || id == 0 ||
        (sm->nmembers > 0 && sm->members[sm->nmembers - 1].id >= id)) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: member %" PRIu64 " is malformed", id);
    }
    if (member_set(sm, id, addr, len) != 0) {
        return tkv_err_set(r->err, TKV_ENOMEM, "out of memory");
    }
    return 0;
}

static int rd_trailer(struct snap_reader *r)
{
    const char *tag;
    uint32_t len;
    uint64_t sum = 0;
    size_t body = r->r.off;
    int rv;
    if ((rv = rd_array(r, 2, "trailer")) != 0) {
        return rv;
    }
    if (tkv_mpr_str(&r->r, &tag, &len) != 0 || len != 3 ||
        memcmp(tag, "end", 3) != 0 || tkv_mpr_uint(&r->r, &sum) != 0) {
        return tkv_err_set(r->err, TKV_ECORRUPT, "snapshot: bad trailer");
    }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* (fuzz builds skip this so the fuzzer can reach the structure) */
    if (sum != tkv_hash64(0, r->r.p, body)) {
        return tkv_err_set(r->err, TKV_ECORRUPT,
                           "snapshot: checksum mismatch");
    }
#else
    (void)body;
#endif
    if (tkv_mpr_remaining(&r->r) != 0) {
        return tkv_err_set(r->err, TKV_ECORRUPT, "snapshot: %zu trailing bytes",
                           tkv_mpr_remaining(&r->r));
    }
    return 0;
}

int tkv_sm_restore(struct tkv_sm *sm, const uint8_t *buf, size_t len,
                   struct tkv_err *err)
{
    struct snap_reader r = {.err = err};
    struct tkv_sm fresh;
    struct bound *prev;
    uint64_t counts[3] = {0, 0, 0}, i;
    int rv;

    tkv_mpr_init(&r.r, buf, len);
    prev = tkv_malloc(sizeof *prev);
    if (prev == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    prev->set = 0;
    rv = tkv_sm_init(&fresh, &sm->cfg);
    if (rv != 0) {
        tkv_free(prev);
        return tkv_err_set(err, rv, "out of memory");
    }

    rv = rd_header(&r, &fresh, counts);
    /* Counts are bounded by the bytes: every item takes several. */
    if (rv == 0 && (counts[0] > len || counts[1] > len || counts[2] > len)) {
        rv = tkv_err_set(err, TKV_ECORRUPT, "snapshot: impossible counts");
    }
    /* Keys come sorted: appended, and indexed all at once at the end. */
    tkv_sl_index_suspend(&fresh.data);
    for (i = 0; rv == 0 && i < counts[0]; i++) {
        rv = rd_entry(&r, &fresh, prev);
    }
    for (i = 0; rv == 0 && i < counts[1]; i++) {
        rv = rd_session(&r, &fresh);
    }
    for (i = 0; rv == 0 && i < counts[2]; i++) {
        rv = rd_member(&r, &fresh);
    }
    if (rv == 0) {
        rv = rd_trailer(&r);
    }
    if (rv == 0) {
        /* Out of memory here leaves the data unindexed: still correct. */
        (void)tkv_sl_index_resume(&fresh.data);
    }
    tkv_free(prev);
    if (rv != 0) {
        tkv_sm_close(&fresh);
        return rv;
    }
    tkv_sm_close(sm);
    *sm = fresh;
    return 0;
}
