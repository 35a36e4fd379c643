/* Tests of statemachine/keycodec.c: the byte order of encoded keys against
 * a reference comparator on random keys, exact round trips through msgpack
 * and JSON, every validation error with its message, the strict checker on
 * hand-made bad encodings, and the ordering examples of the seed.
 *
 * The random tests draw from a seed: TKV_SEED=<n> in the environment
 * replays a run; otherwise it comes from the clock and is printed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "statemachine/keycodec.h"

#define TWO53 9007199254740992.0

/* ---------- a model of a key, and the reference order ---------- */

enum { P_STRING, P_NUMBER, P_BOOL };

struct part {
    int type;
    uint8_t s[32];
    size_t slen;
    double d;
    int b;
};

struct key {
    int n;
    struct part p[4];
};

static uint64_t seed;
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static unsigned rnd_below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* UTF-8 pieces strings are built from: NUL, low controls, ASCII, and the
 * boundaries of each sequence length. */
static const char *const pieces[] = {
    "\0",
    "\x01",
    "a",
    "b",
    "z",
    "\x7f",
    "\xc2\x80",
    "\xc3\xa9",
    "\xdf\xbf",
    "\xe0\xa0\x80",
    "\xe4\xb8\xad",
    "\xed\x9f\xbf",
    "\xee\x80\x80",
    "\xef\xbf\xbf",
    "\xf0\x90\x80\x80",
    "\xf0\x9f\x98\x80",
    "\xf4\x8f\xbf\xbf",
};

static size_t piece_len(const char *p)
{
    return p[0] == '\0' ? 1 : strlen(p);
}

static const double special_numbers[] = {
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    10.0,
    -10.0,
    1e-300,
    -1e-300,
    5e-324,
    -5e-324,
    1e300,
    -1e300,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    TWO53,
    -TWO53,
    TWO53 + 2,
    -TWO53 - 2,
    2.2250738585072014e-308,
    0.1,
    -0.1,
    123456789.0,
};

static void gen_string(struct part *p)
{
    int pieces_n = (int)rnd_below(6);
    int i;

    p->type = P_STRING;
    p->slen = 0;
    for (i = 0; i < pieces_n; i++) {
        const char *pc = pieces[rnd_below(sizeof pieces / sizeof *pieces)];
        size_t l = piece_len(pc);
        memcpy(p->s + p->slen, pc, l);
        p->slen += l;
    }
}

static void gen_number(struct part *p)
{
    unsigned how = rnd_below(4);
    double d;

    p->type = P_NUMBER;
    if (how == 0) {
        d = special_numbers[rnd_below(sizeof special_numbers /
                                      sizeof *special_numbers)];
    } else if (how == 1) {
        d = (double)((int64_t)rnd_below(2001) - 1000);
    } else if (how == 2) {
        d = ((double)(int64_t)rnd_below(2001) - 1000) / 8;
    } else {
        do {
            uint64_t bits = rnd();
            memcpy(&d, &bits, sizeof d);
        } while (!isfinite(d));
    }
    p->d = d;
}

static void gen_part(struct part *p)
{
    unsigned t = rnd_below(20);

    if (t < 9) {
        gen_string(p);
    } else if (t < 17) {
        gen_number(p);
    } else {
        p->type = P_BOOL;
        p->b = (int)rnd_below(2);
    }
}

static void gen_key(struct key *k)
{
    int i;

    k->n = 1 + (int)rnd_below(4);
    for (i = 0; i < k->n; i++) {
        gen_part(&k->p[i]);
    }
}

/* A key near a: a shared prefix of parts, then new or nudged parts, so
 * that pairs often differ late and by little. */
static void gen_near(const struct key *a, struct key *b)
{
    int keep = (int)rnd_below((unsigned)a->n + 1);
    int i;

    *b = *a;
    if (rnd_below(8) == 0) {
        return; /* equal */
    }
    b->n = keep + (int)rnd_below((unsigned)(4 - keep) + 1);
    if (b->n == 0) {
        b->n = 1;
    }
    for (i = keep; i < b->n; i++) {
        if (i < a->n && rnd_below(2) == 0) {
            struct part *p = &b->p[i];
            /* Nudge: extend or cut a string, negate or step a number. */
            if (p->type == P_STRING) {
                if (rnd_below(2) && p->slen > 0) {
                    p->slen--;
                    while (p->slen > 0 && (p->s[p->slen] & 0xC0) == 0x80) {
                        p->slen--; /* keep UTF-8 whole */
                    }
                } else if (p->slen < 24) {
                    const char *pc = pieces[rnd_below(3)];
                    memcpy(p->s + p->slen, pc, piece_len(pc));
                    p->slen += piece_len(pc);
                }
            } else if (p->type == P_NUMBER) {
                p->d = rnd_below(2) ? -p->d : nextafter(p->d, 0);
            } else {
                p->b = !p->b;
            }
        } else {
            gen_part(&b->p[i]);
        }
    }
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

static int ref_cmp_part(const struct part *a, const struct part *b)
{
    if (a->type != b->type) {
        return a->type < b->type ? -1 : 1;
    }
    switch (a->type) {
        case P_STRING: {
            size_t n = a->slen < b->slen ? a->slen : b->slen;
            int c = memcmp(a->s, b->s, n);
            if (c != 0) {
                return sign(c);
            }
            return (a->slen > b->slen) - (a->slen < b->slen);
        }
        case P_NUMBER:
            return (a->d > b->d) - (a->d < b->d); /* -0 == 0 */
        default:
            return (a->b > b->b) - (a->b < b->b);
    }
}

static int ref_cmp(const struct key *a, const struct key *b)
{
    int i;

    for (i = 0; i < a->n && i < b->n; i++) {
        int c = ref_cmp_part(&a->p[i], &b->p[i]);
        if (c != 0) {
            return c;
        }
    }
    return (a->n > b->n) - (a->n < b->n);
}

/* ---------- canonical msgpack / JSON forms of a model key ---------- */

static int is_int(double d)
{
    return d >= -TWO53 && d <= TWO53 && d == floor(d);
}

/* canonical: integers within +-2^53 (and -0) as msgpack integers, as
 * tkv_key_pack writes them; otherwise every number as a float64, as a
 * JavaScript client might send them. */
static void pack_model(const struct key *k, int canonical, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    int i;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)k->n);
    for (i = 0; i < k->n; i++) {
        const struct part *p = &k->p[i];
        if (p->type == P_STRING) {
            msgpack_pack_str(&pk, p->slen);
            msgpack_pack_str_body(&pk, p->s, p->slen);
        } else if (p->type == P_NUMBER) {
            if (canonical && is_int(p->d)) {
                msgpack_pack_int64(&pk, (int64_t)p->d);
            } else {
                msgpack_pack_double(&pk, p->d);
            }
        } else if (p->b) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
    }
}

static json_t *json_model(const struct key *k, int canonical)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; i < k->n; i++) {
        const struct part *p = &k->p[i];
        json_t *v;
        if (p->type == P_STRING) {
            v = json_stringn((const char *)p->s, p->slen);
        } else if (p->type == P_NUMBER) {
            v = canonical && is_int(p->d) ? json_integer((json_int_t)p->d)
                                          : json_real(p->d);
        } else {
            v = json_boolean(p->b);
        }
        assert_non_null(v);
        json_array_append_new(arr, v);
    }
    return arr;
}

static void print_key(const char *name, const struct key *k)
{
    int i;
    size_t j;

    fprintf(stderr, "  %s = [", name);
    for (i = 0; i < k->n; i++) {
        const struct part *p = &k->p[i];
        if (p->type == P_STRING) {
            fprintf(stderr, "\"");
            for (j = 0; j < p->slen; j++) {
                fprintf(stderr, "\\x%02x", p->s[j]);
            }
            fprintf(stderr, "\"");
        } else if (p->type == P_NUMBER) {
            fprintf(stderr, "%.17g", p->d);
        } else {
            fprintf(stderr, "%s", p->b ? "true" : "false");
        }
        fprintf(stderr, "%s", i + 1 < k->n ? ", " : "");
    }
    fprintf(stderr, "]\n");
}

#define CHECK(cond, a, b, what)                                             \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s failed (TKV_SEED=%llu, pair %d)\n", what,   \
                    (unsigned long long)seed, iter);                        \
            print_key("a", a);                                              \
            print_key("b", b);                                              \
            fail_msg("%s (TKV_SEED=%llu)", what, (unsigned long long)seed); \
        }                                                                   \
    } while (0)

/* Encode k from msgpack and JSON, each in canonical and all-float form
 * (all four must agree), check the encoding, and check the round trips
 * back to the canonical msgpack and JSON forms. */
static size_t encode_checked(const struct key *k, uint8_t *out, int iter)
{
    msgpack_sbuffer in;
    msgpack_sbuffer back;
    msgpack_unpacked u;
    msgpack_packer pk;
    struct tkv_err err;
    uint8_t out2[TKV_KEY_MAX];
    size_t len = 0;
    size_t len2;
    json_t *jk;
    json_t *jback;
    int canonical;

    for (canonical = 0; canonical <= 1; canonical++) {
        size_t off = 0;
        msgpack_sbuffer_init(&in);
        pack_model(k, canonical, &in);
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, in.data, in.size, &off),
                         MSGPACK_UNPACK_SUCCESS);
        CHECK(tkv_key_from_msgpack(&u.data, 0, out2, &len2, &err) == 0, k, k,
              "encode from msgpack");
        msgpack_unpacked_destroy(&u);
        if (canonical) {
            CHECK(len2 == len && memcmp(out, out2, len) == 0, k, k,
                  "canonical and all-float msgpack encodings agree");
        } else {
            memcpy(out, out2, len2);
            len = len2;
            msgpack_sbuffer_destroy(&in);
        }

        jk = json_model(k, canonical);
        CHECK(tkv_key_from_json(jk, 0, out2, &len2, &err) == 0, k, k,
              "encode from JSON");
        CHECK(len2 == len && memcmp(out, out2, len) == 0, k, k,
              "JSON and msgpack encodings agree");
        if (!canonical) {
            json_decref(jk);
        }
    }
    CHECK(tkv_key_validate(out, len, 0, &err) == 0, k, k, "validate");
    CHECK(tkv_key_nparts(out, len) == (size_t)k->n, k, k, "nparts");

    /* in and jk now hold the canonical forms. */
    msgpack_sbuffer_init(&back);
    msgpack_packer_init(&pk, &back, msgpack_sbuffer_write);
    assert_int_equal(tkv_key_pack(out, len, &pk), 0);
    CHECK(back.size == in.size && memcmp(back.data, in.data, in.size) == 0, k,
          k, "msgpack round trip");
    jback = tkv_key_to_json(out, len);
    assert_non_null(jback);
    CHECK(json_equal(jk, jback), k, k, "JSON round trip");

    json_decref(jback);
    json_decref(jk);
    msgpack_sbuffer_destroy(&back);
    msgpack_sbuffer_destroy(&in);
    return len;
}

static void test_order_property(void **state)
{
    uint8_t ea[TKV_KEY_MAX];
    uint8_t eb[TKV_KEY_MAX];
    int iter;
    int seen[3] = {0, 0, 0};

    (void)state;
    rng_state = seed;
    for (iter = 0; iter < 10000; iter++) {
        struct key a;
        struct key b;
        size_t la;
        size_t lb;
        int want;
        int got;

        gen_key(&a);
        if (rnd_below(4) == 0) {
            gen_key(&b);
        } else {
            gen_near(&a, &b);
        }
        la = encode_checked(&a, ea, iter);
        lb = encode_checked(&b, eb, iter);
        want = ref_cmp(&a, &b);
        got = sign(tkv_key_cmp(ea, la, eb, lb));
        CHECK(got == want, &a, &b, "byte order equals key order");
        CHECK(sign(tkv_key_cmp(eb, lb, ea, la)) == -want, &a, &b,
              "order is antisymmetric");
        seen[want + 1]++;
    }
    /* The generator must actually exercise all three outcomes. */
    assert_true(seen[0] > 1000 && seen[1] > 300 && seen[2] > 1000);
}

/* ---------- helpers for hand-made keys ---------- */

static size_t enc_json(const char *text, uint8_t *out)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    struct tkv_err err;
    size_t len = 0;

    assert_non_null(j);
    if (tkv_key_from_json(j, 0, out, &len, &err) != 0) {
        fail_msg("encoding %s: %s", text, err.msg);
    }
    json_decref(j);
    return len;
}

static void test_seed_examples(void **state)
{
    static const char *const notes[] = {
        "[\"notes\",\"a\"]", "[\"notes\",\"apple\"]", "[\"notes\",\"b\"]",
        "[\"notes\",\"banana\"]"};
    static const char *const items[] = {
        "[\"items\",\"1\"]", "[\"items\",\"10\"]", "[\"items\",\"2\"]",
        "[\"items\",\"9\"]"};
    static const char *const mixed[] = {
        "[\"a\"]",         "[\"a\",\"\"]", "[\"a\",\"x\"]", "[\"a\",-1e300]",
        "[\"a\",-1]",      "[\"a\",0]",    "[\"a\",0.5]",   "[\"a\",1]",
        "[\"a\",1,\"z\"]", "[\"a\",2]",    "[\"a\",false]", "[\"a\",true]",
        "[\"a\\u0000\"]",  "[\"ab\"]",     "[1]",           "[true]"};
    const char *const *lists[] = {notes, items, mixed};
    size_t sizes[] = {4, 4, 16};
    uint8_t a[TKV_KEY_MAX];
    uint8_t b[TKV_KEY_MAX];
    size_t l;
    size_t i;

    (void)state;
    for (l = 0; l < 3; l++) {
        for (i = 0; i + 1 < sizes[l]; i++) {
            size_t la = enc_json(lists[l][i], a);
            size_t lb = enc_json(lists[l][i + 1], b);
            if (tkv_key_cmp(a, la, b, lb) >= 0) {
                fail_msg("%s should sort before %s", lists[l][i],
                         lists[l][i + 1]);
            }
        }
    }
}

static void unpack_one(msgpack_sbuffer *sb, msgpack_unpacked *u)
{
    size_t off = 0;

    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, &off),
                     MSGPACK_UNPACK_SUCCESS);
}

/* Build a msgpack key with the packer calls in `build` and unpack it. The
 * unpacked strings point into mp_sb, so it lives until the next MP_KEY. */
static msgpack_sbuffer mp_sb;

#define MP_KEY(u, build)                                          \
    do {                                                          \
        msgpack_packer pk_;                                       \
        msgpack_packer *pk = &pk_;                                \
        msgpack_sbuffer_clear(&mp_sb);                            \
        msgpack_packer_init(&pk_, &mp_sb, msgpack_sbuffer_write); \
        build;                                                    \
        unpack_one(&mp_sb, u);                                    \
    } while (0)

static void expect_mp_error(msgpack_unpacked *u, int code, const char *msg)
{
    uint8_t out[TKV_KEY_MAX];
    size_t len = 12345;
    struct tkv_err err;

    tkv_err_clear(&err);
    assert_int_equal(tkv_key_from_msgpack(&u->data, 0, out, &len, &err), code);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, msg);
    assert_int_equal(len, 12345); /* untouched on error */
    msgpack_unpacked_destroy(u);
}

static const char *const type_msg =
    "; key parts must be string, number or boolean";

static void test_msgpack_errors(void **state)
{
    msgpack_unpacked u;
    char want[256];
    uint8_t out[TKV_KEY_MAX];
    size_t len;
    struct tkv_err err;

    (void)state;
    MP_KEY(&u, msgpack_pack_map(pk, 0));
    expect_mp_error(&u, TKV_EINVALID, "key must be an array, not type map");
    MP_KEY(&u, msgpack_pack_str(pk, 0));
    expect_mp_error(&u, TKV_EINVALID, "key must be an array, not type string");

    MP_KEY(&u, msgpack_pack_array(pk, 0));
    expect_mp_error(&u, TKV_EINVALID, "key must not be empty");
    MP_KEY(&u, msgpack_pack_array(pk, 0));
    assert_int_equal(tkv_key_from_msgpack(&u.data, 1, out, &len, &err), 0);
    assert_int_equal(len, 0);
    msgpack_unpacked_destroy(&u);

    /* Each wrong part type, at part 2. */
    {
        static const char *const names[] = {"null", "map", "array", "binary",
                                            "ext"};
        int t;
        for (t = 0; t < 5; t++) {
            MP_KEY(&u, {
                msgpack_pack_array(pk, 3);
                msgpack_pack_str_with_body(pk, "a", 1);
                msgpack_pack_int64(pk, 1);
                switch (t) {
                    case 0:
                        msgpack_pack_nil(pk);
                        break;
                    case 1:
                        msgpack_pack_map(pk, 0);
                        break;
                    case 2:
                        msgpack_pack_array(pk, 0);
                        break;
                    case 3:
                        msgpack_pack_bin_with_body(pk, "x", 1);
                        break;
                    default:
                        msgpack_pack_ext_with_body(pk, "x", 1, 7);
                        break;
                }
            });
            snprintf(want, sizeof want, "key part 2 has type %s%s", names[t],
                     type_msg);
            expect_mp_error(&u, TKV_EINVALID, want);
        }
    }

    /* Non-finite numbers, as float64 and float32. */
    {
        const double bad[] = {NAN, INFINITY, -INFINITY};
        int i;
        for (i = 0; i < 3; i++) {
            MP_KEY(&u, {
                msgpack_pack_array(pk, 2);
                msgpack_pack_true(pk);
                msgpack_pack_double(pk, bad[i]);
            });
            expect_mp_error(&u, TKV_EINVALID,
                            "key part 1 is not a finite number");
            MP_KEY(&u, {
                msgpack_pack_array(pk, 2);
                msgpack_pack_true(pk);
                msgpack_pack_float(pk, (float)bad[i]);
            });
            expect_mp_error(&u, TKV_EINVALID,
                            "key part 1 is not a finite number");
        }
    }

    /* Integers: +-2^53 pass, one beyond fails, both signs. */
    {
        const char *msg =
            "key part 0 is an integer outside +-2^53, which a "
            "number cannot hold exactly";
        uint8_t ref[TKV_KEY_MAX];
        size_t rlen;
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_uint64(pk, 9007199254740993ULL);
        });
        expect_mp_error(&u, TKV_EINVALID, msg);
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_uint64(pk, UINT64_MAX);
        });
        expect_mp_error(&u, TKV_EINVALID, msg);
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_int64(pk, -9007199254740993LL);
        });
        expect_mp_error(&u, TKV_EINVALID, msg);
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_int64(pk, INT64_MIN);
        });
        expect_mp_error(&u, TKV_EINVALID, msg);

        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_uint64(pk, 9007199254740992ULL);
        });
        assert_int_equal(tkv_key_from_msgpack(&u.data, 0, out, &len, &err), 0);
        msgpack_unpacked_destroy(&u);
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_double(pk, TWO53);
        });
        assert_int_equal(tkv_key_from_msgpack(&u.data, 0, ref, &rlen, &err), 0);
        msgpack_unpacked_destroy(&u);
        assert_int_equal(len, rlen);
        assert_memory_equal(out, ref, len);
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_int64(pk, -9007199254740992LL);
        });
        assert_int_equal(tkv_key_from_msgpack(&u.data, 0, out, &len, &err), 0);
        msgpack_unpacked_destroy(&u);

        /* float32 1.5, float64 1.5 and -0.0 vs 0: one encoding each. */
        MP_KEY(&u, {
            msgpack_pack_array(pk, 2);
            msgpack_pack_float(pk, 1.5f);
            msgpack_pack_double(pk, -0.0);
        });
        assert_int_equal(tkv_key_from_msgpack(&u.data, 0, out, &len, &err), 0);
        msgpack_unpacked_destroy(&u);
        MP_KEY(&u, {
            msgpack_pack_array(pk, 2);
            msgpack_pack_double(pk, 1.5);
            msgpack_pack_int64(pk, 0);
        });
        assert_int_equal(tkv_key_from_msgpack(&u.data, 0, ref, &rlen, &err), 0);
        msgpack_unpacked_destroy(&u);
        assert_int_equal(len, rlen);
        assert_memory_equal(out, ref, len);
    }

    /* The first bad part is the one reported. */
    MP_KEY(&u, {
        msgpack_pack_array(pk, 3);
        msgpack_pack_str_with_body(pk, "ok", 2);
        msgpack_pack_double(pk, NAN);
        msgpack_pack_nil(pk);
    });
    expect_mp_error(&u, TKV_EINVALID, "key part 1 is not a finite number");
}

/* Strings that must be refused as UTF-8, and the edges that must pass. */
static const char *const bad_utf8[] = {
    "\xc0\x80",         /* overlong NUL */
    "\xc1\xbf",         /* overlong */
    "\xe0\x80\x80",     /* overlong */
    "\xe0\x9f\xbf",     /* overlong U+07FF */
    "\xf0\x80\x80\x80", /* overlong */
    "\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
    "\xed\xa0\x80",     /* U+D800 */
    "\xed\xbf\xbf",     /* U+DFFF */
    "\xf4\x90\x80\x80", /* U+110000 */
    "\xf5\x80\x80\x80",
    "\xf8\x88\x80\x80\x80",
    "\xff",
    "\xfe",
    "\x80", /* stray continuation */
    "a\xbf",
    "\xc3", /* truncated at the end */
    "\xe4\xb8",
    "\xf0\x9f\x98",
    "\xe4\x41\xad", /* continuation replaced by ASCII */
    "\xc3\xa9\xa9", /* one continuation too many */
};

static const char *const good_utf8[] = {
    "\x7f",         "\xc2\x80",         "\xdf\xbf",
    "\xe0\xa0\x80", "\xed\x9f\xbf",     "\xee\x80\x80",
    "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
};

static void test_utf8(void **state)
{
    msgpack_unpacked u;
    uint8_t out[TKV_KEY_MAX];
    size_t len;
    struct tkv_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        const char *s = bad_utf8[i];
        json_t *arr;
        MP_KEY(&u, {
            msgpack_pack_array(pk, 2);
            msgpack_pack_false(pk);
            msgpack_pack_str_with_body(pk, s, strlen(s));
        });
        expect_mp_error(&u, TKV_EINVALID, "key part 1 is not valid UTF-8");

        arr = json_array();
        json_array_append_new(arr, json_stringn_nocheck(s, strlen(s)));
        tkv_err_clear(&err);
        assert_int_equal(tkv_key_from_json(arr, 0, out, &len, &err),
                         TKV_EINVALID);
        assert_string_equal(err.msg, "key part 0 is not valid UTF-8");
        json_decref(arr);

        /* The same bytes forced into an encoding are refused too. */
        out[0] = TKV_KEY_TAG_STRING;
        memcpy(out + 1, s, strlen(s));
        out[1 + strlen(s)] = 0x00;
        assert_int_equal(tkv_key_validate(out, strlen(s) + 2, 0, &err),
                         TKV_ECORRUPT);
        assert_string_equal(err.msg, "key part 0 is not valid UTF-8");
    }
    /* A multi-byte sequence cut by an embedded NUL. */
    MP_KEY(&u, {
        msgpack_pack_array(pk, 1);
        msgpack_pack_str_with_body(pk, "\xe4\x00\xad", 3);
    });
    expect_mp_error(&u, TKV_EINVALID, "key part 0 is not valid UTF-8");

    for (i = 0; i < sizeof good_utf8 / sizeof *good_utf8; i++) {
        const char *s = good_utf8[i];
        MP_KEY(&u, {
            msgpack_pack_array(pk, 1);
            msgpack_pack_str_with_body(pk, s, strlen(s));
        });
        assert_int_equal(tkv_key_from_msgpack(&u.data, 0, out, &len, &err), 0);
        assert_int_equal(len, strlen(s) + 2);
        assert_int_equal(tkv_key_validate(out, len, 0, &err), 0);
        msgpack_unpacked_destroy(&u);
    }
}

static void test_size_limit(void **state)
{
    static char big[4096];
    msgpack_unpacked u;
    uint8_t out[TKV_KEY_MAX];
    size_t len;
    struct tkv_err err;

    (void)state;
    memset(big, 'x', sizeof big);

    /* 1 tag + 2046 bytes + terminator = exactly the limit. */
    MP_KEY(&u, {
        msgpack_pack_array(pk, 1);
        msgpack_pack_str_with_body(pk, big, 2046);
    });
    assert_int_equal(tkv_key_from_msgpack(&u.data, 0, out, &len, &err), 0);
    assert_int_equal(len, TKV_KEY_MAX);
    assert_int_equal(tkv_key_validate(out, len, 0, &err), 0);
    msgpack_unpacked_destroy(&u);

    MP_KEY(&u, {
        msgpack_pack_array(pk, 1);
        msgpack_pack_str_with_body(pk, big, 2047);
    });
    expect_mp_error(&u, TKV_ETOO_LARGE,
                    "key is too large: 2049 bytes encoded, the limit is "
                    "2048");
    MP_KEY(&u, {
        msgpack_pack_array(pk, 2);
        msgpack_pack_str_with_body(pk, big, 2098);
        msgpack_pack_true(pk);
    });
    expect_mp_error(&u, TKV_ETOO_LARGE,
                    "key is too large: 2101 bytes encoded, the limit is "
                    "2048");

    /* Escaped NULs count twice: 1023 of them fill the limit exactly. */
    memset(big, 0, sizeof big);
    MP_KEY(&u, {
        msgpack_pack_array(pk, 1);
        msgpack_pack_str_with_body(pk, big, 1023);
    });
    assert_int_equal(tkv_key_from_msgpack(&u.data, 0, out, &len, &err), 0);
    assert_int_equal(len, TKV_KEY_MAX);
    assert_int_equal(tkv_key_validate(out, len, 0, &err), 0);
    msgpack_unpacked_destroy(&u);
    MP_KEY(&u, {
        msgpack_pack_array(pk, 1);
        msgpack_pack_str_with_body(pk, big, 1024);
    });
    expect_mp_error(&u, TKV_ETOO_LARGE,
                    "key is too large: 2050 bytes encoded, the limit is "
                    "2048");

    /* A bad part after the limit is still named, not the size. */
    memset(big, 'x', sizeof big);
    MP_KEY(&u, {
        msgpack_pack_array(pk, 2);
        msgpack_pack_str_with_body(pk, big, 3000);
        msgpack_pack_nil(pk);
    });
    snprintf(big, sizeof big, "key part 1 has type null%s", type_msg);
    expect_mp_error(&u, TKV_EINVALID, big);
}

static void expect_json_error(const char *text, int code, const char *msg)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    uint8_t out[TKV_KEY_MAX];
    size_t len;
    struct tkv_err err;

    assert_non_null(j);
    tkv_err_clear(&err);
    assert_int_equal(tkv_key_from_json(j, 0, out, &len, &err), code);
    assert_string_equal(err.msg, msg);
    json_decref(j);
}

static void test_json_errors(void **state)
{
    char want[256];
    uint8_t out[TKV_KEY_MAX];
    size_t len;
    struct tkv_err err;
    json_t *empty = json_array();

    (void)state;
    assert_int_equal(tkv_key_from_json(NULL, 0, out, &len, &err), TKV_EINVALID);
    assert_string_equal(err.msg, "key must be an array");
    expect_json_error("{}", TKV_EINVALID,
                      "key must be an array, not type object");
    expect_json_error("\"a\"", TKV_EINVALID,
                      "key must be an array, not type string");
    expect_json_error("[]", TKV_EINVALID, "key must not be empty");
    assert_int_equal(tkv_key_from_json(empty, 1, out, &len, &err), 0);
    assert_int_equal(len, 0);
    json_decref(empty);

    snprintf(want, sizeof want, "key part 1 has type null%s", type_msg);
    expect_json_error("[\"a\", null]", TKV_EINVALID, want);
    snprintf(want, sizeof want, "key part 2 has type object%s", type_msg);
    expect_json_error("[\"a\", 1, {}]", TKV_EINVALID, want);
    snprintf(want, sizeof want, "key part 0 has type array%s", type_msg);
    expect_json_error("[[1]]", TKV_EINVALID, want);
    expect_json_error("[9007199254740993]", TKV_EINVALID,
                      "key part 0 is an integer outside +-2^53, which a "
                      "number cannot hold exactly");
    expect_json_error("[-9007199254740993]", TKV_EINVALID,
                      "key part 0 is an integer outside +-2^53, which a "
                      "number cannot hold exactly");
    /* As a real the same magnitude is just a number. */
    assert_int_equal(enc_json("[9007199254740994.0]", out), 9);
}

/* ---------- tkv_key_validate on hand-made bytes ---------- */

struct bad_case {
    const char *name;
    size_t len;
    uint8_t bytes[16];
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"empty", 0, {0}, "key must not be empty"},
    {"unknown tag", 1, {0x01}, "key part 0 has unknown tag 0x01 at byte 0"},
    {"tag 0x06", 2, {0x04, 0x06}, "key part 1 has unknown tag 0x06 at byte 1"},
    {"string without terminator",
     2,
     {0x02, 'a'},
     "key part 0: string has no terminator"},
    {"tag alone", 1, {0x02}, "key part 0: string has no terminator"},
    {"escape then end",
     4,
     {0x02, 'a', 0x00, 0xFF},
     "key part 0: string has no terminator"},
    {"NUL not followed by 0xFF ends the string",
     5,
     {0x02, 'a', 0x00, 'b', 0x00},
     "key part 1 has unknown tag 0x62 at byte 3"},
    {"raw 0xFF in a string",
     3,
     {0x02, 0xFF, 0x00},
     "key part 0 is not valid UTF-8"},
    {"0xFF as a tag",
     2,
     {0x04, 0xFF},
     "key part 1 has unknown tag 0xff at byte 1"},
    {"overlong", 4, {0x02, 0xC0, 0x80, 0x00}, "key part 0 is not valid UTF-8"},
    {"sequence cut by the terminator",
     4,
     {0x02, 0xE4, 0xB8, 0x00},
     "key part 0 is not valid UTF-8"},
    {"surrogate",
     5,
     {0x02, 0xED, 0xA0, 0x80, 0x00},
     "key part 0 is not valid UTF-8"},
    {"truncated number",
     4,
     {0x03, 0x80, 0x00, 0x00},
     "key part 0: number is truncated"},
    {"truncated number after a part",
     9,
     {0x05, 0x03, 0x80, 0, 0, 0, 0, 0, 0},
     "key part 1: number is truncated"},
    {"-0",
     9,
     {0x03, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
     "key part 0 is -0, which is encoded as 0"},
    {"NaN",
     9,
     {0x03, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0},
     "key part 0 is not a finite number"},
    {"negative NaN",
     9,
     {0x03, 0x00, 0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
     "key part 0 is not a finite number"},
    {"+inf",
     9,
     {0x03, 0xFF, 0xF0, 0, 0, 0, 0, 0, 0},
     "key part 0 is not a finite number"},
    {"-inf",
     9,
     {0x03, 0x00, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
     "key part 0 is not a finite number"},
    {"trailing NUL",
     4,
     {0x02, 'a', 0x00, 0x00},
     "key part 1 has unknown tag 0x00 at byte 3"},
    {"trailing garbage after a number",
     10,
     {0x03, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x99},
     "key part 1 has unknown tag 0x99 at byte 9"},
};

static void test_validate_rejects(void **state)
{
    static uint8_t big[TKV_KEY_MAX + 1];
    struct tkv_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const struct bad_case *c = &bad_cases[i];
        tkv_err_clear(&err);
        if (tkv_key_validate(c->bytes, c->len, 0, &err) != TKV_ECORRUPT) {
            fail_msg("case '%s' was accepted", c->name);
        }
        if (strcmp(err.msg, c->msg) != 0) {
            fail_msg("case '%s': message '%s', expected '%s'", c->name, err.msg,
                     c->msg);
        }
    }
    /* The empty key is fine where a prefix may be empty. */
    assert_int_equal(tkv_key_validate(big, 0, 1, &err), 0);

    /* Too large, even when made of valid parts. */
    memset(big, TKV_KEY_TAG_FALSE, sizeof big);
    assert_int_equal(tkv_key_validate(big, TKV_KEY_MAX, 0, &err), 0);
    assert_int_equal(tkv_key_validate(big, TKV_KEY_MAX + 1, 0, &err),
                     TKV_ECORRUPT);
    assert_string_equal(err.msg,
                        "key is too large: 2049 bytes encoded, the limit is "
                        "2048");
}

/* Encodings that are valid, checked against what the encoder gives. */
static void test_validate_accepts(void **state)
{
    uint8_t out[TKV_KEY_MAX];
    size_t len;
    struct tkv_err err;
    json_t *j;

    (void)state;
    len = enc_json("[\"a\\u0000b\", -0.0, 1.5, true, false, \"\"]", out);
    {
        static const uint8_t want[] = {
            0x02, 'a',  0x00, 0xFF, 'b', 0x00,          /* "a\0b" */
            0x03, 0x80, 0,    0,    0,   0,    0, 0, 0, /* 0 */
            0x03, 0xBF, 0xF8, 0,    0,   0,    0, 0, 0, /* 1.5 */
            0x05, 0x04, 0x02, 0x00};
        assert_int_equal(len, sizeof want);
        assert_memory_equal(out, want, len);
    }
    assert_int_equal(tkv_key_validate(out, len, 0, &err), 0);
    assert_int_equal(tkv_key_nparts(out, len), 6);
    j = tkv_key_to_json(out, len);
    assert_non_null(j);
    assert_true(json_is_integer(json_array_get(j, 1)));
    assert_int_equal(json_integer_value(json_array_get(j, 1)), 0);
    assert_true(json_is_real(json_array_get(j, 2)));
    assert_int_equal(json_string_length(json_array_get(j, 0)), 3);
    assert_memory_equal(json_string_value(json_array_get(j, 0)), "a\0b", 3);
    json_decref(j);

    /* Negative numbers flip every bit: -1 is ~0xBFF0... */
    len = enc_json("[-1]", out);
    {
        static const uint8_t want[] = {0x03, 0x40, 0x0F, 0xFF, 0xFF,
                                       0xFF, 0xFF, 0xFF, 0xFF};
        assert_int_equal(len, sizeof want);
        assert_memory_equal(out, want, len);
    }
}

int main(void)
{
    const char *env = getenv("TKV_SEED");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_property),
        cmocka_unit_test(test_seed_examples),
        cmocka_unit_test(test_msgpack_errors),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_validate_rejects),
        cmocka_unit_test(test_validate_accepts),
    };
    int failed;

    msgpack_sbuffer_init(&mp_sb);
    seed = env != NULL ? strtoull(env, NULL, 10)
                       : (uint64_t)time(NULL) ^ (uint64_t)clock();
    printf("test_keycodec: TKV_SEED=%llu\n", (unsigned long long)seed);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    msgpack_sbuffer_destroy(&mp_sb);
    return failed;
}
