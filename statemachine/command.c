/* Log entry codec: encoder and strict decoder of the bytes raft replicates.
 *
 * The wire form is in command.h. Each command type is one row of the table
 * `kinds` (name, number of fields, encoder, decoder), so adding a type means
 * adding a row.
 *
 * Decoding, happy path:
 *   1. length is a positive multiple of 8;
 *   2. [format, timestamp, [cmd...]] with format == TKV_ENTRY_FORMAT;
 *   3. each command: array of its type's exact field count, every field of
 *      its exact type, keys valid encodings (tkv_key_validate), values JSON
 *      within the limit (tkv_value_check_bytes);
 *   4. after the message only 0..7 zero bytes;
 *   5. atomic commands' checks and mutations are laid out in two arrays
 *      owned by the entry, in command order, and each atomic command points
 *      at its slice once the arrays stop moving.
 * Failures: anything malformed is TKV_ECORRUPT with a message naming the
 * command and field; an allocation failure is TKV_ENOMEM (never CORRUPT: a
 * replica short of memory must not decide that an entry is corrupt when the
 * others do not). Nothing is allocated on failure.
 *
 * The decoder reads the bytes with the strict cursor of common/mpread.h
 * rather than msgpack-c's unpacker: the unpacker allocates count *
 * sizeof(msgpack_object) for an array header before checking that the bytes
 * exist (a 5-byte entry asks for 128 GB), and a zone per call; the decoder
 * allocates only the output arrays, bounded by the input length, and points
 * into the input. The cursor says why a read failed; the messages add which
 * command and field it was. */
#include "command.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/mpread.h"
#include "keycodec.h"
#include "value.h"

/* ---- encoding ---- */

static int pack_bytes_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
    return msgpack_pack_bin_with_body(pk, p, n);
}

/* Shape of a mutation of the given type (a plain set/delete command's
 * mut.type is implied by the command type). */
static int mutation_ok(const struct tkv_mutation *m, uint8_t type)
{
    if (m->key == NULL || m->klen == 0 || m->klen > TKV_KEY_MAX) {
        return 0;
    }
    if (type == TKV_CMD_SET) {
        return m->value != NULL && m->vlen > 0;
    }
    return type == TKV_CMD_DELETE;
}

static int pack_header(msgpack_packer *pk,
                       const struct tkv_cmd *c,
                       size_t nfields)
{
    return msgpack_pack_array(pk, nfields) || msgpack_pack_uint8(pk, c->type) ||
           msgpack_pack_uint64(pk, c->session) ||
           msgpack_pack_uint64(pk, c->seq) || msgpack_pack_uint64(pk, c->ack);
}

static int encode_set(msgpack_packer *pk, const struct tkv_cmd *c)
{
    const struct tkv_mutation *m = &c->mut;
    if (!mutation_ok(m, TKV_CMD_SET)) {
        return TKV_EINVALID;
    }
    if (pack_header(pk, c, 7) || pack_bytes_bin(pk, m->key, m->klen) ||
        pack_bytes_bin(pk, m->value, m->vlen) ||
        msgpack_pack_uint64(pk, m->ttl_ms)) {
        return TKV_ENOMEM;
    }
    return 0;
}

static int encode_delete(msgpack_packer *pk, const struct tkv_cmd *c)
{
    const struct tkv_mutation *m = &c->mut;
    if (!mutation_ok(m, TKV_CMD_DELETE)) {
        return TKV_EINVALID;
    }
    if (pack_header(pk, c, 5) || pack_bytes_bin(pk, m->key, m->klen)) {
        return TKV_ENOMEM;
    }
    return 0;
}

static int encode_atomic(msgpack_packer *pk, const struct tkv_cmd *c)
{
    uint32_t i;
    int rv;

    /* validate all before writing anything */
    if (c->nchecks > TKV_ATOMIC_MAX_CHECKS ||
        c->nmuts > TKV_ATOMIC_MAX_MUTATIONS ||
        (c->nchecks > 0 && c->checks == NULL) ||
        (c->nmuts > 0 && c->muts == NULL)) {
        return TKV_EINVALID;
    }
    for (i = 0; i < c->nchecks; i++) {
        const struct tkv_check *k = &c->checks[i];
        if (k->key == NULL || k->klen == 0 || k->klen > TKV_KEY_MAX) {
            return TKV_EINVALID;
        }
    }
    for (i = 0; i < c->nmuts; i++) {
        if (!mutation_ok(&c->muts[i], c->muts[i].type)) {
            return TKV_EINVALID;
        }
    }

    rv = pack_header(pk, c, 6) || msgpack_pack_array(pk, c->nchecks);
    for (i = 0; rv == 0 && i < c->nchecks; i++) {
        const struct tkv_check *k = &c->checks[i];
        rv = msgpack_pack_array(pk, 2) || pack_bytes_bin(pk, k->key, k->klen) ||
             msgpack_pack_uint64(pk, k->version);
    }
    rv = rv || msgpack_pack_array(pk, c->nmuts);
    for (i = 0; rv == 0 && i < c->nmuts; i++) {
        const struct tkv_mutation *m = &c->muts[i];
        if (m->type == TKV_CMD_SET) {
            rv = msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, m->type) ||
                 pack_bytes_bin(pk, m->key, m->klen) ||
                 pack_bytes_bin(pk, m->value, m->vlen) ||
                 msgpack_pack_uint64(pk, m->ttl_ms);
        } else {
            rv = msgpack_pack_array(pk, 2) || msgpack_pack_uint8(pk, m->type) ||
                 pack_bytes_bin(pk, m->key, m->klen);
        }
    }
    return rv ? TKV_ENOMEM : 0;
}

static int encode_tick(msgpack_packer *pk, const struct tkv_cmd *c)
{
    if (msgpack_pack_array(pk, 1) || msgpack_pack_uint8(pk, c->type)) {
        return TKV_ENOMEM;
    }
    return 0;
}

static int encode_member_set(msgpack_packer *pk, const struct tkv_cmd *c)
{
    if (c->member_id == 0 || c->addr == NULL || c->addrlen == 0 ||
        c->addrlen > TKV_ADDR_MAX) {
        return TKV_EINVALID;
    }
    if (msgpack_pack_array(pk, 3) || msgpack_pack_uint8(pk, c->type) ||
        msgpack_pack_uint64(pk, c->member_id) ||
        msgpack_pack_str_with_body(pk, c->addr, c->addrlen)) {
        return TKV_ENOMEM;
    }
    return 0;
}

static int encode_member_del(msgpack_packer *pk, const struct tkv_cmd *c)
{
    if (c->member_id == 0) {
        return TKV_EINVALID;
    }
    if (msgpack_pack_array(pk, 2) || msgpack_pack_uint8(pk, c->type) ||
        msgpack_pack_uint64(pk, c->member_id)) {
        return TKV_ENOMEM;
    }
    return 0;
}

/* ---- decoding: a cursor over the entry bytes ---- */

struct dec {
    struct tkv_mpr r;
    struct tkv_err *err;
    /* where the cursor is, for messages (formatted only on failure) */
    long cmd;         /* index of the command, -1 in the entry header */
    const char *kind; /* its type name, NULL before the type is known */
    const char *part; /* "check", "mutation" or NULL */
    uint32_t parti;
};

static int fail(struct dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct dec *d, const char *fmt, ...)
{
    char where[80];
    char what[160];
    va_list ap;
    int n;

    if (d->err == NULL) {
        return TKV_ECORRUPT;
    }
    if (d->cmd < 0) {
        n = snprintf(where, sizeof where, "entry");
    } else if (d->kind == NULL) {
        n = snprintf(where, sizeof where, "command %ld", d->cmd);
    } else {
        n = snprintf(where, sizeof where, "command %ld (%s)", d->cmd, d->kind);
    }
    if (d->part != NULL && n > 0 && (size_t)n < sizeof where) {
        snprintf(where + n, sizeof where - (size_t)n, " %s %u", d->part,
                 d->parti);
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tkv_err_set(d->err, TKV_ECORRUPT, "%s: %s", where, what);
    /* a constant, so the compiler sees every failure path return non-zero */
    return TKV_ECORRUPT;
}

/* What an item of each type is called in messages. */
static const char *const type_names[] = {
    [TKV_MP_END] = "nothing", [TKV_MP_NIL] = "nil",
    [TKV_MP_BOOL] = "bool",   [TKV_MP_UINT] = "int",
    [TKV_MP_NINT] = "int",    [TKV_MP_FLOAT] = "float",
    [TKV_MP_STR] = "str",     [TKV_MP_BIN] = "bin",
    [TKV_MP_ARRAY] = "array", [TKV_MP_MAP] = "map",
    [TKV_MP_EXT] = "ext",     [TKV_MP_BAD] = "the invalid byte 0xc1",
};

static size_t remaining(const struct dec *d)
{
    return tkv_mpr_remaining(&d->r);
}

/* The reads below, for messages. */
enum rd { RD_ARRAY, RD_UINT, RD_INT, RD_STR, RD_BIN };

static const char *const rd_want[] = {
    [RD_ARRAY] = "an array", [RD_UINT] = "an integer", [RD_INT] = "an integer",
    [RD_STR] = "str",        [RD_BIN] = "bin",
};

/* Words a failed read of `what` after the reader's why; the reader is
 * still at the item. Out of line, so that the reads stay small. */
__attribute__((cold, noinline)) static int read_failed(struct dec *d,
                                                       const char *what,
                                                       enum rd kind)
{
    struct tkv_mpr *r = &d->r;
    uint64_t u = 0;
    int64_t i = 0;

    switch (r->why) {
        case TKV_MPR_END:
            return fail(d, "%s is missing (entry truncated)", what);
        case TKV_MPR_TYPE:
            return fail(d, "%s is not %s (found %s)", what, rd_want[kind],
                        type_names[tkv_mpr_peek(r)]);
        case TKV_MPR_RANGE:
            /* read it as the other signedness to show it */
            if (kind == RD_UINT && tkv_mpr_int(r, &i) == 0) {
                return fail(d, "%s is negative (%lld)", what, (long long)i);
            }
            if (kind == RD_INT && tkv_mpr_uint(r, &u) == 0) {
                return fail(d, "%s is out of range (%llu)", what,
                            (unsigned long long)u);
            }
            break;
        case TKV_MPR_BODY:
            if (kind == RD_STR || kind == RD_BIN) {
                return fail(d, "%s is truncated (%llu bytes, %zu left)", what,
                            (unsigned long long)r->want, r->have);
            }
            break;
        default:
            break;
    }
    return fail(d, "%s is truncated", what);
}

/* The arrays of an entry are read without tkv_mpr_array's count check:
 * each field read reports its own fault, and the lists bound their
 * allocations by the bytes left themselves. */
static int rd_array(struct dec *d, const char *what, uint32_t *n)
{
    enum tkv_mp_type t = TKV_MP_END;
    if (tkv_mpr_container(&d->r, TKV_MP_ARRAY, &t, n) != 0) {
        return read_failed(d, what, RD_ARRAY);
    }
    return 0;
}

static int rd_uint(struct dec *d, const char *what, uint64_t *u)
{
    if (tkv_mpr_uint(&d->r, u) != 0) {
        return read_failed(d, what, RD_UINT);
    }
    return 0;
}

static int rd_int(struct dec *d, const char *what, int64_t *i)
{
    if (tkv_mpr_int(&d->r, i) != 0) {
        return read_failed(d, what, RD_INT);
    }
    return 0;
}

/* A bin payload, pointing into the input. */
static int rd_bin(struct dec *d,
                  const char *what,
                  const uint8_t **p,
                  uint32_t *n)
{
    if (tkv_mpr_bin(&d->r, p, n) != 0) {
        return read_failed(d, what, RD_BIN);
    }
    return 0;
}

static int rd_key(struct dec *d, const uint8_t **key, uint16_t *klen)
{
    struct tkv_err kerr;
    const uint8_t *p = NULL;
    uint32_t n = 0;
    int rv = rd_bin(d, "key", &p, &n);
    if (rv != 0) {
        return rv;
    }
    if (n == 0 || n > TKV_KEY_MAX) {
        return fail(d, "key length %u is out of range 1..%d", n, TKV_KEY_MAX);
    }
    tkv_err_clear(&kerr);
    rv = tkv_key_validate(p, n, 0, &kerr);
    if (rv == TKV_ENOMEM) {
        return tkv_err_set(d->err, rv, "%s", kerr.msg);
    }
    if (rv != 0) {
        return fail(d, "key: %s", kerr.msg);
    }
    *key = p;
    *klen = (uint16_t)n;
    return 0;
}

static int rd_value(struct dec *d, const uint8_t **value, uint32_t *vlen)
{
    struct tkv_err verr;
    int rv = rd_bin(d, "value", value, vlen);
    if (rv != 0) {
        return rv;
    }
    tkv_err_clear(&verr);
    rv = tkv_value_check_bytes(*value, *vlen, NULL, &verr);
    if (rv == TKV_ENOMEM) {
        return tkv_err_set(d->err, rv, "%s", verr.msg);
    }
    if (rv != 0) {
        return fail(d, "value: %s", verr.msg);
    }
    return 0;
}

/* Where an entry's atomic checks and mutations go while decoding. The
 * arrays may move as they grow, so commands get their pointers at the end. */
struct store {
    struct tkv_check *checks; /* owned */
    size_t nchecks;
    size_t checks_cap;
    struct tkv_mutation *muts; /* owned */
    size_t nmuts;
    size_t muts_cap;
};

static int grow(void **arr,
                size_t *cap,
                size_t need,
                size_t size,
                struct tkv_err *err)
{
    size_t c = *cap < 16 ? 16 : *cap;
    void *p;
    if (need <= *cap) {
        return 0;
    }
    while (c < need) {
        c *= 2;
    }
    p = tkv_realloc(*arr, c * size);
    if (p == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory decoding entry");
    }
    *arr = p;
    *cap = c;
    return 0;
}

static int rd_session(struct dec *d, struct tkv_cmd *c)
{
    int rv = rd_uint(d, "session", &c->session);
    if (rv == 0) {
        rv = rd_uint(d, "seq", &c->seq);
    }
    if (rv == 0) {
        rv = rd_uint(d, "ack", &c->ack);
    }
    return rv;
}

static int decode_set_fields(struct dec *d, struct tkv_mutation *m)
{
    int rv;
    m->type = TKV_CMD_SET;
    rv = rd_key(d, &m->key, &m->klen);
    if (rv == 0) {
        rv = rd_value(d, &m->value, &m->vlen);
    }
    if (rv == 0) {
        rv = rd_uint(d, "ttl", &m->ttl_ms);
    }
    return rv;
}

static int decode_set(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    int rv = rd_session(d, c);
    return rv != 0 ? rv : decode_set_fields(d, &c->mut);
}

static int decode_delete(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    int rv = rd_session(d, c);
    c->mut.type = TKV_CMD_DELETE;
    return rv != 0 ? rv : rd_key(d, &c->mut.key, &c->mut.klen);
}

static int decode_check(struct dec *d, struct tkv_check *k)
{
    uint32_t n;
    int rv = rd_array(d, "check", &n);
    if (rv != 0) {
        return rv;
    }
    if (n != 2) {
        return fail(d, "check has %u fields, expected 2", n);
    }
    rv = rd_key(d, &k->key, &k->klen);
    return rv != 0 ? rv : rd_uint(d, "version", &k->version);
}

static int decode_mutation(struct dec *d, struct tkv_mutation *m)
{
    uint64_t type;
    uint32_t n;
    int rv = rd_array(d, "mutation", &n);
    if (rv != 0) {
        return rv;
    }
    if (n == 0) {
        return fail(d, "mutation is empty");
    }
    rv = rd_uint(d, "mutation type", &type);
    if (rv != 0) {
        return rv;
    }
    if (type == TKV_CMD_SET) {
        if (n != 4) {
            return fail(d, "set mutation has %u fields, expected 4", n);
        }
        return decode_set_fields(d, m);
    }
    if (type == TKV_CMD_DELETE) {
        if (n != 2) {
            return fail(d, "delete mutation has %u fields, expected 2", n);
        }
        m->type = TKV_CMD_DELETE;
        return rd_key(d, &m->key, &m->klen);
    }
    return fail(d, "unknown mutation type %llu", (unsigned long long)type);
}

static int decode_atomic(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    uint32_t n;
    uint32_t i;
    int rv = rd_session(d, c);
    if (rv != 0) {
        return rv;
    }

    rv = rd_array(d, "check list", &n);
    if (rv != 0) {
        return rv;
    }
    if (n > TKV_ATOMIC_MAX_CHECKS) {
        return fail(d, "too many checks (%u > %d)", n, TKV_ATOMIC_MAX_CHECKS);
    }
    /* a check takes at least 4 bytes: bound the allocation by the input */
    if (n > remaining(d) / 4) {
        return fail(d, "check list is truncated");
    }
    rv = grow((void **)&st->checks, &st->checks_cap, st->nchecks + n,
              sizeof *st->checks, d->err);
    if (rv != 0) {
        return rv;
    }
    d->part = "check";
    for (i = 0; i < n; i++) {
        d->parti = i;
        rv = decode_check(d, &st->checks[st->nchecks + i]);
        if (rv != 0) {
            return rv;
        }
    }
    d->part = NULL;
    st->nchecks += n;
    c->nchecks = n;

    rv = rd_array(d, "mutation list", &n);
    if (rv != 0) {
        return rv;
    }
    if (n > TKV_ATOMIC_MAX_MUTATIONS) {
        return fail(d, "too many mutations (%u > %d)", n,
                    TKV_ATOMIC_MAX_MUTATIONS);
    }
    /* a mutation takes at least 4 bytes */
    if (n > remaining(d) / 4) {
        return fail(d, "mutation list is truncated");
    }
    rv = grow((void **)&st->muts, &st->muts_cap, st->nmuts + n,
              sizeof *st->muts, d->err);
    if (rv != 0) {
        return rv;
    }
    d->part = "mutation";
    for (i = 0; i < n; i++) {
        struct tkv_mutation *m = &st->muts[st->nmuts + i];
        memset(m, 0, sizeof *m);
        d->parti = i;
        rv = decode_mutation(d, m);
        if (rv != 0) {
            return rv;
        }
    }
    d->part = NULL;
    st->nmuts += n;
    c->nmuts = n;
    return 0;
}

static int decode_tick(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    return 0;
}

static int decode_member_id(struct dec *d, struct tkv_cmd *c)
{
    int rv = rd_uint(d, "member id", &c->member_id);
    if (rv == 0 && c->member_id == 0) {
        return fail(d, "member id is 0");
    }
    return rv;
}

static int decode_member_set(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    const char *addr = NULL;
    uint32_t n = 0;
    int rv = decode_member_id(d, c);
    if (rv != 0) {
        return rv;
    }
    if (tkv_mpr_str(&d->r, &addr, &n) != 0) {
        return read_failed(d, "address", RD_STR);
    }
    if (n == 0 || n > TKV_ADDR_MAX) {
        return fail(d, "address length %u is out of range 1..%d", n,
                    TKV_ADDR_MAX);
    }
    c->addr = addr;
    c->addrlen = (uint16_t)n;
    return 0;
}

static int decode_member_del(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    return decode_member_id(d, c);
}

/* ---- the command table ---- */

struct kind {
    const char *name;
    uint32_t nfields; /* including the type */
    int (*encode)(msgpack_packer *pk, const struct tkv_cmd *c);
    int (*decode)(struct dec *d, struct tkv_cmd *c, struct store *st);
};

static const struct kind kinds[] = {
    [TKV_CMD_SET] = {"set", 7, encode_set, decode_set},
    [TKV_CMD_DELETE] = {"delete", 5, encode_delete, decode_delete},
    [TKV_CMD_ATOMIC] = {"atomic", 6, encode_atomic, decode_atomic},
    [TKV_CMD_TICK] = {"tick", 1, encode_tick, decode_tick},
    [TKV_CMD_MEMBER_SET] = {"member-set", 3, encode_member_set,
                            decode_member_set},
    [TKV_CMD_MEMBER_DEL] = {"member-del", 2, encode_member_del,
                            decode_member_del},
};

static const struct kind *kind_of(uint64_t type)
{
    if (type >= sizeof kinds / sizeof kinds[0] || kinds[type].name == NULL) {
        return NULL;
    }
    return &kinds[type];
}

int tkv_cmd_encode(const struct tkv_cmd *cmd, struct tkv_buf *body)
{
    const struct kind *k = kind_of(cmd->type);
    msgpack_packer pk;
    size_t start = body->len;
    int rv;

    if (k == NULL) {
        return TKV_EINVALID;
    }
    msgpack_packer_init(&pk, body, tkv_buf_msgpack_write);
    rv = k->encode(&pk, cmd);
    if (rv != 0) {
        body->len = start; /* no half-written command in the batch */
    }
    return rv;
}

int tkv_entry_encode(int64_t timestamp_ms,
                     size_t ncmds,
                     const uint8_t *body,
                     size_t body_len,
                     struct tkv_buf *out)
{
    static const uint8_t zeros[8];
    msgpack_packer pk;
    size_t start = out->len;

    if (ncmds > TKV_ENTRY_MAX_CMDS || (body_len > 0 && body == NULL)) {
        return TKV_EINVALID;
    }
    msgpack_packer_init(&pk, out, tkv_buf_msgpack_write);
    if (msgpack_pack_array(&pk, 3) ||
        msgpack_pack_uint8(&pk, TKV_ENTRY_FORMAT) ||
        msgpack_pack_int64(&pk, timestamp_ms) ||
        msgpack_pack_array(&pk, ncmds) ||
        tkv_buf_append(out, body, body_len) != 0 ||
        /* pad the entry, not the buffer: out may hold earlier bytes */
        tkv_buf_append(out, zeros, (8 - (out->len - start) % 8) % 8) != 0) {
        out->len = start;
        return TKV_ENOMEM;
    }
    return 0;
}

/* ---- decoding an entry ---- */

static int decode_cmd(struct dec *d, struct tkv_cmd *c, struct store *st)
{
    const struct kind *k;
    uint64_t type;
    uint32_t n;
    int rv = rd_array(d, "command", &n);
    if (rv != 0) {
        return rv;
    }
    if (n == 0) {
        return fail(d, "command is an empty array");
    }
    rv = rd_uint(d, "command type", &type);
    if (rv != 0) {
        return rv;
    }
    k = kind_of(type);
    if (k == NULL) {
        return fail(d, "unknown command type %llu", (unsigned long long)type);
    }
    d->kind = k->name;
    if (n != k->nfields) {
        return fail(d, "has %u fields, expected %u", n, k->nfields);
    }
    c->type = (uint8_t)type;
    return k->decode(d, c, st);
}

/* After the message: 0..7 zero bytes, as tkv_entry_encode pads. */
static int check_padding(struct dec *d)
{
    size_t rest = remaining(d);
    size_t i;
    if (rest >= 8) {
        return fail(d, "%zu trailing bytes after entry", rest);
    }
    for (i = 0; i < rest; i++) {
        if (d->r.p[d->r.off + i] != 0) {
            return fail(d, "trailing bytes after entry (non-zero padding)");
        }
    }
    return 0;
}

int tkv_entry_decode(const uint8_t *buf,
                     size_t len,
                     struct tkv_entry *e,
                     struct tkv_err *err)
{
    struct store st;
    struct dec d;
    struct tkv_cmd *cmds = NULL;
    uint64_t format;
    int64_t ts = 0;
    uint32_t n;
    uint32_t i;
    size_t ci;
    size_t mi;
    int rv;

    memset(&st, 0, sizeof st);
    tkv_mpr_init(&d.r, buf, 0);
    d.err = err;
    d.cmd = -1;
    d.kind = NULL;
    d.part = NULL;
    d.parti = 0;

    if (buf == NULL || len == 0 || len % 8 != 0) {
        return fail(&d, "length %zu is not a positive multiple of 8", len);
    }
    tkv_mpr_init(&d.r, buf, len);
    rv = rd_array(&d, "entry", &n);
    if (rv != 0) {
        return rv;
    }
    if (n != 3) {
        return fail(&d, "has %u fields, expected 3", n);
    }
    rv = rd_uint(&d, "format", &format);
    if (rv != 0) {
        return rv;
    }
    if (format != TKV_ENTRY_FORMAT) {
        return fail(&d, "unknown format %llu", (unsigned long long)format);
    }
    rv = rd_int(&d, "timestamp", &ts);
    if (rv != 0) {
        return rv;
    }
    rv = rd_array(&d, "command list", &n);
    if (rv != 0) {
        return rv;
    }
    if (n > TKV_ENTRY_MAX_CMDS) {
        return fail(&d, "too many commands (%u > %d)", n, TKV_ENTRY_MAX_CMDS);
    }
    /* a command takes at least 2 bytes: bound the allocation by the input */
    if (n > remaining(&d) / 2) {
        return fail(&d, "command list is truncated");
    }
    if (n > 0) {
        cmds = tkv_calloc(n, sizeof *cmds);
        if (cmds == NULL) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory decoding entry");
        }
    }
    for (i = 0; i < n; i++) {
        d.cmd = (long)i;
        d.kind = NULL;
        rv = decode_cmd(&d, &cmds[i], &st);
        if (rv != 0) {
            goto err_after_cmds;
        }
    }
    d.cmd = -1;
    rv = check_padding(&d);
    if (rv != 0) {
        goto err_after_cmds;
    }

    /* the arrays have stopped moving: give atomic commands their slices */
    ci = 0;
    mi = 0;
    for (i = 0; i < n; i++) {
        if (cmds[i].type == TKV_CMD_ATOMIC) {
            cmds[i].checks = cmds[i].nchecks > 0 ? &st.checks[ci] : NULL;
            cmds[i].muts = cmds[i].nmuts > 0 ? &st.muts[mi] : NULL;
            ci += cmds[i].nchecks;
            mi += cmds[i].nmuts;
        }
    }

    e->format = format;
    e->timestamp_ms = ts;
    e->cmds = cmds;
    e->ncmds = n;
    e->checks = st.checks;
    e->muts = st.muts;
    return 0;

err_after_cmds:
    tkv_free(st.checks);
    tkv_free(st.muts);
    tkv_free(cmds);
    return rv;
}

void tkv_entry_close(struct tkv_entry *e)
{
    tkv_free(e->cmds);
    tkv_free(e->checks);
    tkv_free(e->muts);
    memset(e, 0, sizeof *e);
}
