/* Tests of statemachine/command.c: encode/decode round trips of random
 * batches, every decoder error, damaged bytes, limits, and allocation
 * failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "statemachine/command.h"
#include "statemachine/keycodec.h"
#include "statemachine/value.h"

/* ---- helpers ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return rnd() % n;
}

/* Encoded key of string parts (no NUL inside), as keycodec.h lays it out:
 * 0x02, the bytes, 0x00 for each part. */
static size_t key_of(uint8_t *out, int nparts, ...)
{
    va_list ap;
    size_t n = 0;
    int i;
    va_start(ap, nparts);
    for (i = 0; i < nparts; i++) {
        const char *s = va_arg(ap, const char *);
        size_t len = strlen(s);
        out[n++] = TKV_KEY_TAG_STRING;
        memcpy(out + n, s, len);
        n += len;
        out[n++] = 0x00;
    }
    va_end(ap);
    return n;
}

/* Random valid key: string, small integer and boolean parts. */
static size_t rand_key(uint8_t *out)
{
    size_t n = 0;
    uint64_t parts = 1 + rnd_below(3);
    uint64_t p;
    for (p = 0; p < parts; p++) {
        switch (rnd_below(3)) {
            case 0: {
                uint64_t len = rnd_below(20);
                uint64_t i;
                out[n++] = TKV_KEY_TAG_STRING;
                for (i = 0; i < len; i++) {
                    out[n++] = (uint8_t)('a' + rnd_below(26));
                }
                out[n++] = 0x00;
                break;
            }
            case 1: {
                /* positive doubles: sign bit flipped, big-endian */
                union {
                    double d;
                    uint64_t u;
                } v;
                int i;
                v.d = (double)(1 + rnd_below(100000));
                v.u ^= 0x8000000000000000ull;
                out[n++] = TKV_KEY_TAG_NUMBER;
                for (i = 0; i < 8; i++) {
                    out[n++] = (uint8_t)(v.u >> (56 - 8 * i));
                }
                break;
            }
            default:
                out[n++] = (rnd() & 1) ? TKV_KEY_TAG_TRUE : TKV_KEY_TAG_FALSE;
        }
    }
    return n;
}

/* A pool of keys and values the random commands point into. */
#define POOL 64
static uint8_t key_pool[POOL][128];
static uint16_t key_len[POOL];
static struct tkv_buf value_pool[POOL];
static char addr_pool[POOL][TKV_ADDR_MAX];
static uint16_t addr_len[POOL];

static void make_pool(void)
{
    /* clang-format off */
    static const char *const json[] = {
        "null", "true", "1", "-2.5", "\"hello\"", "[1,2,3]",
        "{\"a\":{\"b\":[null,false,\"\\u0000\"]},\"c\":1e300}", "\"é😀\"",
    };
    /* clang-format on */
    int i;
    for (i = 0; i < POOL; i++) {
        struct tkv_err err;
        json_t *v;
        int k;
        key_len[i] = (uint16_t)rand_key(key_pool[i]);
        assert_int_equal(tkv_key_validate(key_pool[i], key_len[i], 0, &err), 0);
        tkv_buf_init(&value_pool[i]);
        v = json_loads(json[i % 8], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(v);
        assert_int_equal(tkv_value_from_json(v, &value_pool[i], &err), 0);
        json_decref(v);
        addr_len[i] = (uint16_t)(1 + rnd_below(i == 0 ? TKV_ADDR_MAX : 30));
        for (k = 0; k < addr_len[i]; k++) {
            addr_pool[i][k] = (char)('0' + rnd_below(10));
        }
    }
}

static void free_pool(void)
{
    int i;
    for (i = 0; i < POOL; i++) {
        tkv_buf_close(&value_pool[i]);
    }
}

static void rand_mutation(struct tkv_mutation *m, uint8_t type)
{
    int k = (int)rnd_below(POOL);
    int v = (int)rnd_below(POOL);
    memset(m, 0, sizeof *m);
    m->type = type;
    m->key = key_pool[k];
    m->klen = key_len[k];
    if (type == TKV_CMD_SET) {
        m->value = value_pool[v].data;
        m->vlen = (uint32_t)value_pool[v].len;
        m->ttl_ms = rnd_below(2) ? 0 : rnd() >> rnd_below(64);
    }
}

static uint64_t rand_u64(void)
{
    return rnd_below(4) == 0 ? rnd() : rnd() >> rnd_below(64);
}

/* Random command; atomic ones use the given arrays for storage. */
static void rand_cmd(struct tkv_cmd *c,
                     struct tkv_check *checks,
                     struct tkv_mutation *muts)
{
    uint32_t i;
    memset(c, 0, sizeof *c);
    c->type = (uint8_t)(1 + rnd_below(6));
    switch (c->type) {
        case TKV_CMD_SET:
        case TKV_CMD_DELETE:
            c->session = rand_u64();
            c->seq = rand_u64();
            c->ack = rand_u64();
            rand_mutation(&c->mut, c->type);
            break;
        case TKV_CMD_ATOMIC:
            c->session = rand_u64();
            c->seq = rand_u64();
            c->ack = rand_u64();
            c->nchecks = (uint32_t)rnd_below(5);
            c->nmuts = (uint32_t)rnd_below(5);
            for (i = 0; i < c->nchecks; i++) {
                int k = (int)rnd_below(POOL);
                checks[i].key = key_pool[k];
                checks[i].klen = key_len[k];
                checks[i].version = rnd_below(3) == 0 ? 0 : rand_u64();
            }
            for (i = 0; i < c->nmuts; i++) {
                rand_mutation(&muts[i], (uint8_t)(1 + rnd_below(2)));
            }
            c->checks = c->nchecks > 0 ? checks : NULL;
            c->muts = c->nmuts > 0 ? muts : NULL;
            break;
        case TKV_CMD_TICK:
            break;
        case TKV_CMD_MEMBER_SET: {
            int a = (int)rnd_below(POOL);
            c->member_id = 1 + rnd_below(1000);
            c->addr = addr_pool[a];
            c->addrlen = addr_len[a];
            break;
        }
        case TKV_CMD_MEMBER_DEL:
            c->member_id = 1 + rand_u64() / 2;
            break;
    }
}

static int mut_equal(const struct tkv_mutation *a, const struct tkv_mutation *b)
{
    if (a->type != b->type || a->klen != b->klen ||
        memcmp(a->key, b->key, a->klen) != 0) {
        return 0;
    }
    if (a->type == TKV_CMD_SET) {
        return a->vlen == b->vlen && memcmp(a->value, b->value, a->vlen) == 0 &&
               a->ttl_ms == b->ttl_ms;
    }
    return 1;
}

static int cmd_equal(const struct tkv_cmd *a, const struct tkv_cmd *b)
{
    uint32_t i;
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
        case TKV_CMD_SET:
        case TKV_CMD_DELETE:
            return a->session == b->session && a->seq == b->seq &&
                   a->ack == b->ack && mut_equal(&a->mut, &b->mut);
        case TKV_CMD_ATOMIC:
            if (a->session != b->session || a->seq != b->seq ||
                a->ack != b->ack || a->nchecks != b->nchecks ||
                a->nmuts != b->nmuts) {
                return 0;
            }
            for (i = 0; i < a->nchecks; i++) {
                if (a->checks[i].klen != b->checks[i].klen ||
                    memcmp(a->checks[i].key, b->checks[i].key,
                           a->checks[i].klen) != 0 ||
                    a->checks[i].version != b->checks[i].version) {
                    return 0;
                }
            }
            for (i = 0; i < a->nmuts; i++) {
                if (!mut_equal(&a->muts[i], &b->muts[i])) {
                    return 0;
                }
            }
            return 1;
        case TKV_CMD_TICK:
            return 1;
        case TKV_CMD_MEMBER_SET:
            return a->member_id == b->member_id && a->addrlen == b->addrlen &&
                   memcmp(a->addr, b->addr, a->addrlen) == 0;
        case TKV_CMD_MEMBER_DEL:
            return a->member_id == b->member_id;
    }
    return 0;
}

static int entry_equal(const struct tkv_entry *a, const struct tkv_entry *b)
{
    size_t i;
    if (a->format != b->format || a->timestamp_ms != b->timestamp_ms ||
        a->ncmds != b->ncmds) {
        return 0;
    }
    for (i = 0; i < a->ncmds; i++) {
        if (!cmd_equal(&a->cmds[i], &b->cmds[i])) {
            return 0;
        }
    }
    return 1;
}

/* Encodes a decoded entry again. */
static void reencode(const struct tkv_entry *e, struct tkv_buf *out)
{
    struct tkv_buf body;
    size_t i;
    tkv_buf_init(&body);
    for (i = 0; i < e->ncmds; i++) {
        assert_int_equal(tkv_cmd_encode(&e->cmds[i], &body), 0);
    }
    assert_int_equal(
        tkv_entry_encode(e->timestamp_ms, e->ncmds, body.data, body.len, out),
        0);
    tkv_buf_close(&body);
}

/* A random entry: its commands (with storage) and its bytes. */
#define MAX_BATCH 40
struct sample {
    int64_t ts;
    size_t n;
    struct tkv_cmd cmds[MAX_BATCH];
    struct tkv_check checks[MAX_BATCH][5];
    struct tkv_mutation muts[MAX_BATCH][5];
    struct tkv_buf bytes;
};

static void make_sample(struct sample *s, size_t n)
{
    struct tkv_buf body;
    size_t i;
    s->ts = (int64_t)(rnd() >> rnd_below(64)) * (rnd_below(8) ? 1 : -1);
    s->n = n;
    tkv_buf_init(&body);
    tkv_buf_init(&s->bytes);
    for (i = 0; i < n; i++) {
        rand_cmd(&s->cmds[i], s->checks[i], s->muts[i]);
        assert_int_equal(tkv_cmd_encode(&s->cmds[i], &body), 0);
    }
    assert_int_equal(tkv_entry_encode(s->ts, n, body.data, body.len, &s->bytes),
                     0);
    tkv_buf_close(&body);
}

static int setup(void **state)
{
    rng_state = 42;
    make_pool();
    return 0;
}

static int teardown(void **state)
{
    free_pool();
    return 0;
}

/* ---- round trip ---- */

static void test_round_trip(void **state)
{
    int iter;
    for (iter = 0; iter < 2000; iter++) {
        struct sample s;
        struct tkv_entry e;
        struct tkv_err err;
        struct tkv_buf again;
        size_t i;
        int rv;

        make_sample(&s, rnd_below(MAX_BATCH + 1));
        assert_int_equal(s.bytes.len % 8, 0);
        rv = tkv_entry_decode(s.bytes.data, s.bytes.len, &e, &err);
        if (rv != 0) {
            fail_msg("decode: %s", err.msg);
        }
        assert_int_equal(e.format, TKV_ENTRY_FORMAT);
        assert_int_equal(e.timestamp_ms, s.ts);
        assert_int_equal(e.ncmds, s.n);
        for (i = 0; i < s.n; i++) {
            const struct tkv_cmd *c = &e.cmds[i];
            assert_true(cmd_equal(&s.cmds[i], c));
            /* zero copy: keys point into the entry bytes */
            if (c->type == TKV_CMD_SET || c->type == TKV_CMD_DELETE) {
                assert_true(c->mut.key > s.bytes.data &&
                            c->mut.key < s.bytes.data + s.bytes.len);
            }
        }
        /* same bytes when encoded again */
        tkv_buf_init(&again);
        reencode(&e, &again);
        assert_int_equal(again.len, s.bytes.len);
        assert_memory_equal(again.data, s.bytes.data, again.len);
        tkv_buf_close(&again);
        tkv_entry_close(&e);
        tkv_buf_close(&s.bytes);
    }
}

/* tkv_entry_encode pads the entry, not the buffer it appends to. */
static void test_encode_appends(void **state)
{
    struct tkv_buf out;
    struct tkv_buf body;
    struct tkv_cmd c;
    struct tkv_entry e;
    struct tkv_err err;

    tkv_buf_init(&out);
    tkv_buf_init(&body);
    tkv_buf_append(&out, "xyz", 3);
    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_TICK;
    assert_int_equal(tkv_cmd_encode(&c, &body), 0);
    assert_int_equal(tkv_entry_encode(7, 1, body.data, body.len, &out), 0);
    assert_int_equal((out.len - 3) % 8, 0);
    assert_int_equal(tkv_entry_decode(out.data + 3, out.len - 3, &e, &err), 0);
    assert_int_equal(e.ncmds, 1);
    assert_int_equal(e.timestamp_ms, 7);
    tkv_entry_close(&e);
    tkv_buf_close(&out);
    tkv_buf_close(&body);
}

static void test_empty_and_full_entries(void **state)
{
    struct tkv_buf out;
    struct tkv_buf body;
    struct tkv_cmd c;
    struct tkv_entry e;
    struct tkv_err err;
    size_t i;

    tkv_buf_init(&out);
    tkv_buf_init(&body);
    assert_int_equal(tkv_entry_encode(0, 0, NULL, 0, &out), 0);
    assert_int_equal(tkv_entry_decode(out.data, out.len, &e, &err), 0);
    assert_int_equal(e.ncmds, 0);
    tkv_entry_close(&e);

    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_TICK;
    for (i = 0; i < TKV_ENTRY_MAX_CMDS; i++) {
        assert_int_equal(tkv_cmd_encode(&c, &body), 0);
    }
    tkv_buf_reset(&out);
    assert_int_equal(
        tkv_entry_encode(-5, TKV_ENTRY_MAX_CMDS, body.data, body.len, &out), 0);
    assert_int_equal(tkv_entry_decode(out.data, out.len, &e, &err), 0);
    assert_int_equal(e.ncmds, TKV_ENTRY_MAX_CMDS);
    assert_int_equal(e.timestamp_ms, -5);
    tkv_entry_close(&e);

    /* one more is refused by the encoder... */
    assert_int_equal(tkv_cmd_encode(&c, &body), 0);
    tkv_buf_reset(&out);
    assert_int_equal(
        tkv_entry_encode(0, TKV_ENTRY_MAX_CMDS + 1, body.data, body.len, &out),
        TKV_EINVALID);
    assert_int_equal(out.len, 0);
    tkv_buf_close(&out);
    tkv_buf_close(&body);
}

/* ---- damaged bytes ---- */

static void test_truncated(void **state)
{
    int iter;
    for (iter = 0; iter < 200; iter++) {
        struct sample s;
        struct tkv_entry e;
        struct tkv_err err;
        size_t n;

        make_sample(&s, 1 + rnd_below(6));
        for (n = 0; n < s.bytes.len; n++) {
            uint8_t *cut = malloc(n + 8);
            size_t padded = (n + 7) / 8 * 8;
            int rv;

            /* the prefix as it is */
            memcpy(cut, s.bytes.data, n);
            rv = tkv_entry_decode(n > 0 ? cut : s.bytes.data, n, &e, &err);
            assert_int_equal(rv, TKV_ECORRUPT);
            /* and padded with zeros: the zeros may complete a cut
             * fixed-width number (a member id cut after its 0xcf byte
             * reads as id 0x4200000000000000), so this may decode; it
             * must then be a well-formed entry */
            memset(cut + n, 0, padded - n);
            if (padded > 0 && tkv_entry_decode(cut, padded, &e, &err) == 0) {
                struct tkv_buf again;
                struct tkv_entry e2;
                tkv_buf_init(&again);
                reencode(&e, &again);
                assert_int_equal(
                    tkv_entry_decode(again.data, again.len, &e2, &err), 0);
                assert_true(entry_equal(&e, &e2));
                tkv_entry_close(&e2);
                tkv_buf_close(&again);
                tkv_entry_close(&e);
            }
            free(cut);
        }
        tkv_buf_close(&s.bytes);
    }
}

/* Any byte changed: an error, or a valid entry that encodes back to
 * something that decodes to the same thing. Never a crash. */
static void test_flipped(void **state)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xFF, 0x10, 0x7F};
    int iter;
    for (iter = 0; iter < 60; iter++) {
        struct sample s;
        size_t pos;
        make_sample(&s, 1 + rnd_below(5));
        for (pos = 0; pos < s.bytes.len; pos++) {
            size_t m;
            for (m = 0; m < sizeof masks; m++) {
                uint8_t *copy = malloc(s.bytes.len);
                struct tkv_entry e;
                struct tkv_err err;
                memcpy(copy, s.bytes.data, s.bytes.len);
                copy[pos] ^= masks[m];
                if (tkv_entry_decode(copy, s.bytes.len, &e, &err) == 0) {
                    struct tkv_buf again;
                    struct tkv_entry e2;
                    tkv_buf_init(&again);
                    reencode(&e, &again);
                    assert_int_equal(
                        tkv_entry_decode(again.data, again.len, &e2, &err), 0);
                    assert_true(entry_equal(&e, &e2));
                    tkv_entry_close(&e2);
                    tkv_buf_close(&again);
                    tkv_entry_close(&e);
                } else {
                    assert_int_equal(err.code, TKV_ECORRUPT);
                }
                free(copy);
            }
        }
        tkv_buf_close(&s.bytes);
    }
}

/* ---- hand-built malformed entries ---- */

/* A tiny builder: a format string of msgpack items.
 *   [N  array of N          {N  map of N
 *   uN  uint N              iN  int N (may be negative)
 *   bK  bin: key K of the key table below
 *   vK  bin: value K of the value table below
 *   s"..."  str             B"..." bin of raw bytes
 *   n   nil                 fD  float64 D
 *   zN  N raw zero bytes (padding) */
static const char *const hex_values[] = {
    "c0",                  /* v0: null */
    "cb 7ff8000000000000", /* v1: NaN */
    "c4 01 00",            /* v2: bin inside the value */
    "c0 c0",               /* v3: trailing bytes */
    "",                    /* v4: empty */
};

static void build(struct tkv_buf *b, int pad, const char *fmt)
{
    msgpack_packer pk;
    const char *p = fmt;
    msgpack_packer_init(&pk, b, tkv_buf_msgpack_write);
    while (*p != '\0') {
        char op = *p++;
        char *end;
        if (op == ' ' || op == ']') { /* ']' only helps the reader */
            continue;
        }
        if (op == 's' || op == 'B') {
            const char *q;
            assert_true(*p == '"');
            q = strchr(p + 1, '"');
            if (op == 's') {
                msgpack_pack_str_with_body(&pk, p + 1, (size_t)(q - p - 1));
            } else {
                msgpack_pack_bin_with_body(&pk, p + 1, (size_t)(q - p - 1));
            }
            p = q + 1;
            continue;
        }
        if (op == 'n') {
            msgpack_pack_nil(&pk);
            continue;
        }
        if (op == 'f') {
            msgpack_pack_double(&pk, strtod(p, &end));
            p = end;
            continue;
        }
        if (op == 'u') {
            msgpack_pack_uint64(&pk, strtoull(p, &end, 10));
            p = end;
            continue;
        }
        if (op == 'i') {
            msgpack_pack_int64(&pk, strtoll(p, &end, 10));
            p = end;
            continue;
        }
        {
            unsigned long n = strtoul(p, &end, 10);
            p = end;
            switch (op) {
                case '[':
                    msgpack_pack_array(&pk, n);
                    break;
                case '{':
                    msgpack_pack_map(&pk, n);
                    break;
                case 'b': {
                    uint8_t key[TKV_KEY_MAX + 8];
                    size_t klen = n == 0 ? key_of(key, 1, "users") : 0;
                    if (n == 1) { /* bad tag */
                        key[0] = 0x07;
                        klen = 1;
                    } else if (n == 2) { /* empty */
                        klen = 0;
                    } else if (n == 3) { /* over TKV_KEY_MAX */
                        memset(key, 'a', TKV_KEY_MAX + 1);
                        key[0] = TKV_KEY_TAG_STRING;
                        key[TKV_KEY_MAX] = 0;
                        klen = TKV_KEY_MAX + 1;
                    }
                    msgpack_pack_bin_with_body(&pk, key, klen);
                    break;
                }
                case 'v': {
                    uint8_t v[32];
                    size_t i = 0;
                    const char *h = hex_values[n];
                    while (*h != '\0') {
                        unsigned x;
                        if (*h == ' ') {
                            h++;
                            continue;
                        }
                        sscanf(h, "%2x", &x);
                        v[i++] = (uint8_t)x;
                        h += 2;
                    }
                    msgpack_pack_bin_with_body(&pk, v, i);
                    break;
                }
                case 'z': {
                    static const uint8_t zeros[16];
                    tkv_buf_append(b, zeros, n);
                    break;
                }
                default:
                    fail_msg("bad builder op %c", op);
            }
        }
    }
    if (pad) {
        tkv_buf_pad(b, 8);
    }
}

struct bad_entry {
    const char *fmt;
    const char *msg; /* exact message, or a prefix when it ends in '*' */
};

#define SET_OK "[7 u1 u1 u2 u0 b0 v0 u0]"
static const struct bad_entry bad_entries[] = {
    {"{0", "entry: entry is not an array (found map)"},
    {"[2 u1 u0", "entry: has 2 fields, expected 3"},
    {"[4 u1 u0 [0 n", "entry: has 4 fields, expected 3"},
    {"[3 u2 u0 [0", "entry: unknown format 2"},
    {"[3 i-1 u0 [0", "entry: format is negative (-1)"},
    {"[3 s\"1\" u0 [0", "entry: format is not an integer (found str)"},
    {"[3 u1 f1.5 [0", "entry: timestamp is not an integer (found float)"},
    {"[3 u1 u9223372036854775808 [0",
     "entry: timestamp is out of range (9223372036854775808)"},
    {"[3 u1 u0 {0", "entry: command list is not an array (found map)"},
    {"[3 u1 u0 [1 n", "command 0: command is not an array (found nil)"},
    {"[3 u1 u0 [1 [0", "command 0: command is an empty array"},
    {"[3 u1 u0 [1 [1 s\"set\"",
     "command 0: command type is not an integer (found str)"},
    {"[3 u1 u0 [1 [1 u0", "command 0: unknown command type 0"},
    {"[3 u1 u0 [1 [1 u7", "command 0: unknown command type 7"},
    {"[3 u1 u0 [1 [1 u255", "command 0: unknown command type 255"},
    {"[3 u1 u0 [1 [1 i-1", "command 0: command type is negative (-1)"},
    {"[3 u1 u0 [1 [2 u4 n", "command 0 (tick): has 2 fields, expected 1"},
    {"[3 u1 u0 [1 [6 u1 u1 u2 u0 b0 v0",
     "command 0 (set): has 6 fields, expected 7"},
    {"[3 u1 u0 [1 [7 u1 i-5 u2 u0 b0 v0 u0]",
     "command 0 (set): session is negative (-5)"},
    {"[3 u1 u0 [2 " SET_OK " [7 u1 u1 u2 u0 s\"k\" v0 u0]",
     "command 1 (set): key is not bin (found str)"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b2 v0 u0]",
     "command 0 (set): key length 0 is out of range 1..2048"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b3 v0 u0]",
     "command 0 (set): key length 2049 is out of range 1..2048"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b1 v0 u0]", "command 0 (set): key: *"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 s\"x\" u0]",
     "command 0 (set): value is not bin (found str)"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 v1 u0]",
     "command 0 (set): value: Value is not JSON serializable: number is NaN"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 v2 u0]",
     "command 0 (set): value: Value is not JSON serializable: binary data"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 v3 u0]",
     "command 0 (set): value: Value is not JSON serializable: trailing "
     "bytes after the value"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 v4 u0]",
     "command 0 (set): value: Value is not JSON serializable: empty msgpack"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 v0 i-1]",
     "command 0 (set): ttl is negative (-1)"},
    {"[3 u1 u0 [1 [7 u1 u1 u2 u0 b0 v0 n]",
     "command 0 (set): ttl is not an integer (found nil)"},
    {"[3 u1 u0 [1 [5 u2 u1 u2 u0 b1", "command 0 (delete): key: *"},
    {"[3 u1 u0 [1 [5 u2 u1 u2 u0 v0",
     "command 0 (delete): key: *"}, /* a value is not a key encoding */
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 {0 [0",
     "command 0 (atomic): check list is not an array (found map)"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [1 [3 b0 u1 u1 [0",
     "command 0 (atomic) check 0: check has 3 fields, expected 2"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [2 [2 b0 u1 [2 b0 i-3 [0",
     "command 0 (atomic) check 1: version is negative (-3)"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [1 [2 b0 f1.0 [0",
     "command 0 (atomic) check 0: version is not an integer (found float)"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [0 [1 [2 u3 b0",
     "command 0 (atomic) mutation 0: unknown mutation type 3"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [0 [1 [0",
     "command 0 (atomic) mutation 0: mutation is empty"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [0 [1 [3 u1 b0 v0",
     "command 0 (atomic) mutation 0: set mutation has 3 fields, expected 4"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [0 [1 [3 u2 b0 u0",
     "command 0 (atomic) mutation 0: delete mutation has 3 fields, "
     "expected 2"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [0 [2 [2 u2 b0 [4 u1 b0 v1 u0",
     "command 0 (atomic) mutation 1: value: Value is not JSON serializable: "
     "number is NaN"},
    {"[3 u1 u0 [1 [6 u3 u1 u2 u0 [0 n",
     "command 0 (atomic): mutation list is not an array (found nil)"},
    {"[3 u1 u0 [1 [3 u5 u0 s\"a:1\"", "command 0 (member-set): member id is 0"},
    {"[3 u1 u0 [1 [3 u5 u1 s\"\"",
     "command 0 (member-set): address length 0 is out of range 1..255"},
    {"[3 u1 u0 [1 [3 u5 u1 B\"a:1\"",
     "command 0 (member-set): address is not str (found bin)"},
    {"[3 u1 u0 [1 [2 u6 u0", "command 0 (member-del): member id is 0"},
    {"[3 u1 u0 [1 [2 u6 i-7",
     "command 0 (member-del): member id is negative "
     "(-7)"},
    {"[3 u1 u0 [2 [1 u4",
     "command 1: command is not an array (found int)"}, /* padding */
    {"[3 u1 u0 [3 [1 u4 [1 u4", "entry: command list is truncated"},
    {"[3 u1 u1000 [1 [1 u4 z8", "entry: 8 trailing bytes after entry"},
    {"[3 u1 u0 [1 [1 u4 u1",
     "entry: trailing bytes after entry (non-zero padding)"},
    {"[3 u1 u0 [1 [1 u4 [0",
     "entry: trailing bytes after entry "
     "(non-zero padding)"},
};

static void expect_corrupt(const uint8_t *buf, size_t len, const char *msg)
{
    struct tkv_entry e;
    struct tkv_err err;
    size_t mlen = strlen(msg);
    int rv;

    tkv_err_clear(&err);
    rv = tkv_entry_decode(buf, len, &e, &err);
    if (rv == 0) {
        tkv_entry_close(&e);
        fail_msg("decoded, wanted \"%s\"", msg);
    }
    assert_int_equal(rv, TKV_ECORRUPT);
    assert_int_equal(err.code, TKV_ECORRUPT);
    if (msg[mlen - 1] == '*') {
        if (strncmp(err.msg, msg, mlen - 1) != 0) {
            fail_msg("got \"%s\", want \"%s\"", err.msg, msg);
        }
    } else if (strcmp(err.msg, msg) != 0) {
        fail_msg("got \"%s\", want \"%s\"", err.msg, msg);
    }
}

static void test_bad_entries(void **state)
{
    size_t i;
    struct tkv_buf b;
    struct tkv_entry e;
    struct tkv_err err;

    /* the builder makes valid entries too */
    tkv_buf_init(&b);
    build(&b, 1, "[3 u1 u0 [1 " SET_OK);
    assert_int_equal(tkv_entry_decode(b.data, b.len, &e, &err), 0);
    tkv_entry_close(&e);

    for (i = 0; i < sizeof bad_entries / sizeof bad_entries[0]; i++) {
        tkv_buf_reset(&b);
        build(&b, 1, bad_entries[i].fmt);
        expect_corrupt(b.data, b.len, bad_entries[i].msg);
    }
    tkv_buf_close(&b);
}

static void test_bad_lengths(void **state)
{
    struct tkv_buf b;
    struct tkv_entry e;
    struct tkv_err err;

    tkv_buf_init(&b);
    build(&b, 0, "[3 u1 u0 [1 [1 u4");
    assert_int_equal(b.len, 6);
    expect_corrupt(b.data, b.len,
                   "entry: length 6 is not a positive multiple of 8");
    build(&b, 0, "z2");
    assert_int_equal(tkv_entry_decode(b.data, b.len, &e, &err), 0);
    tkv_entry_close(&e);
    build(&b, 0, "z1");
    expect_corrupt(b.data, b.len,
                   "entry: length 9 is not a positive multiple of 8");
    expect_corrupt(b.data, 0,
                   "entry: length 0 is not a positive multiple of 8");
    expect_corrupt(NULL, 0, "entry: length 0 is not a positive multiple of 8");
    tkv_buf_close(&b);

    /* eight zero bytes: a zero where the entry array should be */
    {
        static const uint8_t zeros[8];
        expect_corrupt(zeros, 8, "entry: entry is not an array (found int)");
    }
}

/* Counts over the limits, with the elements really there. */
static void test_limits(void **state)
{
    struct tkv_buf b;
    msgpack_packer pk;
    uint8_t key[64];
    size_t klen = key_of(key, 2, "users", "0123456789abcdef");
    int round;

    tkv_buf_init(&b);
    for (round = 0; round < 4; round++) {
        int checks = round < 2;
        uint32_t n = (round % 2 == 0) ? 1000 : 1001;
        uint32_t i;
        struct tkv_entry e;
        struct tkv_err err;
        int rv;

        tkv_buf_reset(&b);
        msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint8(&pk, TKV_CMD_ATOMIC);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_array(&pk, checks ? n : 0);
        for (i = 0; checks && i < n; i++) {
            msgpack_pack_array(&pk, 2);
            msgpack_pack_bin_with_body(&pk, key, klen);
            msgpack_pack_uint32(&pk, i);
        }
        msgpack_pack_array(&pk, checks ? 0 : n);
        for (i = 0; !checks && i < n; i++) {
            msgpack_pack_array(&pk, 2);
            msgpack_pack_uint8(&pk, TKV_CMD_DELETE);
            msgpack_pack_bin_with_body(&pk, key, klen);
        }
        tkv_buf_pad(&b, 8);
        rv = tkv_entry_decode(b.data, b.len, &e, &err);
        if (n == 1000) {
            assert_int_equal(rv, 0);
            assert_int_equal(checks ? e.cmds[0].nchecks : e.cmds[0].nmuts,
                             1000);
            tkv_entry_close(&e);
        } else {
            assert_int_equal(rv, TKV_ECORRUPT);
            assert_string_equal(err.msg,
                                checks ? "command 0 (atomic): too many checks "
                                         "(1001 > 1000)"
                                       : "command 0 (atomic): too many "
                                         "mutations (1001 > 1000)");
        }
    }

    /* 65536 commands */
    {
        uint32_t i;
        tkv_buf_reset(&b);
        msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_array(&pk, 65536);
        for (i = 0; i < 65536; i++) {
            msgpack_pack_array(&pk, 1);
            msgpack_pack_uint8(&pk, TKV_CMD_TICK);
        }
        tkv_buf_pad(&b, 8);
        expect_corrupt(b.data, b.len,
                       "entry: too many commands (65536 > 65535)");
    }

    /* a value over the size limit inside an entry */
    {
        struct tkv_buf v;
        struct tkv_buf body;
        struct tkv_cmd c;
        size_t n = TKV_VALUE_MAX; /* + 2 quotes */
        char *s = malloc(n);
        memset(s, 'x', n);
        tkv_buf_init(&v);
        tkv_buf_init(&body);
        msgpack_packer_init(&pk, &v, tkv_buf_msgpack_write);
        msgpack_pack_str_with_body(&pk, s, n);
        memset(&c, 0, sizeof c);
        c.type = TKV_CMD_SET;
        c.mut.key = key;
        c.mut.klen = (uint16_t)klen;
        c.mut.value = v.data;
        c.mut.vlen = (uint32_t)v.len;
        assert_int_equal(tkv_cmd_encode(&c, &body), 0);
        tkv_buf_reset(&b);
        assert_int_equal(tkv_entry_encode(0, 1, body.data, body.len, &b), 0);
        expect_corrupt(b.data, b.len,
                       "command 0 (set): value: Value size (1024.00 KB) "
                       "exceeds the maximum allowed size of 1 MB (1024 KB)");
        free(s);
        tkv_buf_close(&v);
        tkv_buf_close(&body);
    }
    tkv_buf_close(&b);
}

/* Declared counts far beyond the bytes: refused before any allocation is
 * sized from them (msgpack-c's unpacker would ask for 128 GB here). */
static void test_hostile_counts(void **state)
{
    static const char *const hex[] = {
        "93 01 00 dd ffffffff 0000",
        "93 01 00 dc ffff 000000",
        "93 01 00 91 96 03 01 01 00 dd 00000fff",
        "93 01 00 91 96 03 01 01 00 90 dd 00000fff 00000000 0000",
        "93 01 00 91 97 01 00 00 00 c6 ffffffff 00 00 00",
    };
    size_t i;
    for (i = 0; i < sizeof hex / sizeof hex[0]; i++) {
        uint8_t buf[64];
        const char *h = hex[i];
        size_t n = 0;
        struct tkv_entry e;
        struct tkv_err err;
        while (*h != '\0') {
            unsigned x;
            if (*h == ' ') {
                h++;
                continue;
            }
            sscanf(h, "%2x", &x);
            buf[n++] = (uint8_t)x;
            h += 2;
        }
        while (n % 8 != 0) {
            buf[n++] = 0;
        }
        assert_int_equal(tkv_entry_decode(buf, n, &e, &err), TKV_ECORRUPT);
    }
}

/* ---- encoder refusals ---- */

static void test_encode_invalid(void **state)
{
    struct tkv_buf body;
    struct tkv_cmd c;
    struct tkv_check chk;
    struct tkv_mutation m;
    uint8_t key[16];
    size_t klen = key_of(key, 1, "k");
    uint8_t val = 0xC0;

    tkv_buf_init(&body);
    tkv_buf_append(&body, "x", 1);

    memset(&c, 0, sizeof c);
    c.type = 0;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);
    c.type = 7;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);

    c.type = TKV_CMD_SET; /* no key */
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);
    c.mut.key = key;
    c.mut.klen = (uint16_t)klen;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID); /* no value */
    c.mut.klen = TKV_KEY_MAX + 1;
    c.mut.value = &val;
    c.mut.vlen = 1;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);

    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_ATOMIC;
    c.nchecks = TKV_ATOMIC_MAX_CHECKS + 1;
    c.checks = &chk;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);
    c.nchecks = 0;
    c.nmuts = 1;
    c.muts = &m;
    memset(&m, 0, sizeof m);
    m.type = 3;
    m.key = key;
    m.klen = (uint16_t)klen;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);

    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_MEMBER_SET;
    c.member_id = 1;
    c.addr = "a";
    c.addrlen = 0;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);
    c.addrlen = TKV_ADDR_MAX + 1;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);
    c.addrlen = 1;
    c.member_id = 0;
    assert_int_equal(tkv_cmd_encode(&c, &body), TKV_EINVALID);

    /* nothing was written by any refusal */
    assert_int_equal(body.len, 1);
    tkv_buf_close(&body);
}

/* ---- allocation failure ---- */

static void test_alloc_failure(void **state)
{
    struct tkv_buf bytes;
    struct tkv_buf body;
    struct tkv_cmd c;
    struct tkv_check checks[40];
    struct tkv_mutation muts[40];
    struct tkv_buf bigmap;
    msgpack_packer pk;
    uint8_t key[16];
    size_t klen = key_of(key, 1, "k");
    long n;
    int i;
    int succeeded = 0;

    /* a value that makes the value walker allocate (a map of 20 keys) */
    tkv_buf_init(&bigmap);
    msgpack_packer_init(&pk, &bigmap, tkv_buf_msgpack_write);
    msgpack_pack_map(&pk, 20);
    for (i = 0; i < 20; i++) {
        char k[8];
        int kn = snprintf(k, sizeof k, "k%d", i);
        msgpack_pack_str_with_body(&pk, k, (size_t)kn);
        msgpack_pack_nil(&pk);
    }

    tkv_buf_init(&bytes);
    tkv_buf_init(&body);
    for (i = 0; i < 40; i++) {
        checks[i].key = key;
        checks[i].klen = (uint16_t)klen;
        checks[i].version = (uint64_t)i;
        memset(&muts[i], 0, sizeof muts[i]);
        muts[i].type = TKV_CMD_SET;
        muts[i].key = key;
        muts[i].klen = (uint16_t)klen;
        muts[i].value = bigmap.data;
        muts[i].vlen = (uint32_t)bigmap.len;
    }
    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_ATOMIC;
    c.checks = checks;
    c.nchecks = 40;
    c.muts = muts;
    c.nmuts = 40;
    for (i = 0; i < 3; i++) {
        assert_int_equal(tkv_cmd_encode(&c, &body), 0);
    }
    assert_int_equal(tkv_entry_encode(1, 3, body.data, body.len, &bytes), 0);

    for (n = 0; n < 400 && !succeeded; n++) {
        struct tkv_entry e;
        struct tkv_err err;
        int rv;
        tkv_alloc_fail_after(n);
        rv = tkv_entry_decode(bytes.data, bytes.len, &e, &err);
        tkv_alloc_fail_reset();
        if (rv == 0) {
            assert_int_equal(e.ncmds, 3);
            assert_int_equal(e.cmds[2].nmuts, 40);
            tkv_entry_close(&e);
            succeeded = 1;
        } else {
            assert_int_equal(rv, TKV_ENOMEM);
        }
    }
    assert_true(succeeded);

    /* encoder: ENOMEM and the body is left as it was */
    for (n = 0; n < 10; n++) {
        struct tkv_buf b2;
        int rv;
        tkv_buf_init(&b2);
        tkv_alloc_fail_after(n);
        rv = tkv_cmd_encode(&c, &b2);
        tkv_alloc_fail_reset();
        assert_true(rv == 0 || rv == TKV_ENOMEM);
        if (rv != 0) {
            assert_int_equal(b2.len, 0);
        }
        tkv_buf_close(&b2);
    }
    tkv_buf_close(&bytes);
    tkv_buf_close(&body);
    tkv_buf_close(&bigmap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_appends),
        cmocka_unit_test(test_empty_and_full_entries),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_hostile_counts),
        cmocka_unit_test(test_encode_invalid),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
