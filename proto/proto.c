/* The client protocol codec: requests and replies <-> frames.
 *
 * docs/protocol.md is the spec, proto.h the API. What the codec knows about
 * the messages is in tables, walked by one generic map encoder and one
 * generic map decoder, so the two directions cannot disagree:
 *   - a field is one map key (a request argument or a reply field): its wire
 *     name, its type (a row of decode / encode / "is it set" functions) and
 *     where it lives in the struct (offsetof);
 *   - an op is one row of `ops`: the request arguments it accepts, those it
 *     requires, and the fields of its ok reply (bit masks over the fields).
 *
 * Decoding a payload, happy path:
 *   1. the payload is at most TKV_FRAME_MAX bytes;
 *   2. scan_msgpack() walks the bytes with common/mpread's skipper,
 *      without allocating: one well-formed object, every container count
 *      backed by bytes, nesting bounded;
 *   3. msgpack_unpack_next() over that object (strs and bins point into the
 *      payload);
 *   4. the top level is a map; `id` is read first, so that every later
 *      error can be addressed to the request;
 *   5. no bytes follow the map;
 *   6. `op` (request) or `ok` (reply) picks the row of `ops`;
 *   7. every other key is looked up among the row's fields and decoded into
 *      the struct: keys through keycodec into the arena, strings copied
 *      NUL-terminated into the arena, values checked by value.h and left
 *      pointing into the payload;
 *   8. every required field was there.
 * Failures:
 *   - over TKV_FRAME_MAX: TKV_ETOO_LARGE;
 *   - steps 2-5 (not msgpack, truncated, too deep, not a map, trailing
 *     bytes): TKV_EPROTO, the node closes the connection;
 *   - requests, steps 6-8: TKV_EINVALID naming the argument and what it
 *     must be (unknown op, unknown / duplicate / missing argument, wrong
 *     type or range); invalid keys keep keycodec's code (INVALID or
 *     TOO_LARGE) with the argument's name in front; values keep value.h's
 *     code and message untouched (the seed's texts);
 *   - replies, steps 6-8: TKV_EPROTO for everything (the node broke the
 *     protocol; the client drops the connection);
 *   - arena exhausted: TKV_ENOMEM.
 *
 * Why step 2: msgpack-c's unpacker allocates count * sizeof(msgpack_object)
 * as soon as it reads a container header, before it knows the bytes exist
 * (5 hostile bytes ask for about 100 GB), and it reports 33 nested
 * containers as out of memory. After the scan every count is backed by
 * bytes, so the unpacker's zone stays a small multiple of the payload.
 *
 * Encoding writes 4 placeholder bytes, packs the map straight into the
 * caller's buffer, and fills the header in last; on failure the buffer is
 * cut back to its old length. */
#include "proto.h"

#include <assert.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/mpread.h"
#include "../statemachine/keycodec.h"
#include "../statemachine/value.h"

/* Containers open at once in a frame. The deepest legal request (atomic:
 * map > mutations > mutation > key) needs 4; msgpack-c gives up at 32. */
#define FRAME_DEPTH_MAX 16

/* Longest piece of an unknown name quoted back in an error message. */
#define SHOW_MAX 48

/* Members in a `members` reply: far above any real cluster, it bounds what
 * a hostile node can make the client allocate. */
#define MEMBERS_MAX 1024

#define AT(type, msg, off) ((type *)(void *)((char *)(msg) + (off)))
#define CAT(type, msg, off) \
    ((type const *)(const void *)((const char *)(msg) + (off)))

/* ---- op names ---- */

static const char *const op_names[TKV_OP__COUNT] = {
#define TKV__OP_NAME(e, name) [TKV_OP_##e] = name,
    TKV_OP_MAP(TKV__OP_NAME)
#undef TKV__OP_NAME
};

const char *tkv_op_name(int op)
{
    if (op <= TKV_OP_NONE || op >= TKV_OP__COUNT) {
        return "?";
    }
    return op_names[op];
}

int tkv_op_lookup(const char *name, size_t len)
{
    int op;
    for (op = TKV_OP_NONE + 1; op < TKV_OP__COUNT; op++) {
        if (strlen(op_names[op]) == len &&
            memcmp(op_names[op], name, len) == 0) {
            return op;
        }
    }
    return TKV_OP_NONE;
}

/* ---- frames ---- */

void tkv_frame_put_len(uint8_t hdr[TKV_FRAME_HDR], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

uint32_t tkv_frame_get_len(const uint8_t hdr[TKV_FRAME_HDR])
{
    return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
           (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3];
}

/* ---- message lifecycle ---- */

void tkv_req_init(struct tkv_req *req)
{
    memset(req, 0, sizeof *req);
    tkv_arena_init(&req->arena);
}

void tkv_req_close(struct tkv_req *req)
{
    tkv_arena_close(&req->arena);
    tkv_req_init(req);
}

void tkv_reply_init(struct tkv_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    tkv_arena_init(&rep->arena);
}

void tkv_reply_close(struct tkv_reply *rep)
{
    tkv_arena_close(&rep->arena);
    tkv_reply_init(rep);
}

/* ---- decoding context and errors ---- */

struct dec {
    struct tkv_arena *arena;
    struct tkv_err *err;
    int bad;          /* code for bad content: TKV_EINVALID or TKV_EPROTO */
    const char *kind; /* "argument" or "field" */
    char where[48];   /* " for op 'get'", " in the 'get' reply", ... */
    char ctx[40];     /* prefix of nested names: "", "members[3]." */
};

static void dec_init(struct dec *d,
                     struct tkv_arena *arena,
                     struct tkv_err *err,
                     int bad,
                     const char *kind)
{
    d->arena = arena;
    d->err = err;
    d->bad = bad;
    d->kind = kind;
    d->where[0] = '\0';
    d->ctx[0] = '\0';
}

static int fail(struct dec *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct dec *d, int code, const char *fmt, ...)
{
    char msg[TKV_ERRMSG_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tkv_err_set(d->err, code, "%s", msg);
}

static int nomem(struct dec *d)
{
    return fail(d, TKV_ENOMEM, "out of memory");
}

/* A code from keycodec or value.h: kept for requests; for replies anything
 * but running out of memory is the node's protocol error. */
static int passed(const struct dec *d, int rv)
{
    return d->bad == TKV_EPROTO && rv != TKV_ENOMEM ? TKV_EPROTO : rv;
}

/* Printable, bounded copy of a name from outside, for error messages. */
static const char *show(const char *s, size_t n, char out[SHOW_MAX + 4])
{
    size_t i;
    size_t m = n > SHOW_MAX ? SHOW_MAX : n;

    for (i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (m < n) {
        memcpy(out + m, "...", 3);
        m += 3;
    }
    out[m] = '\0';
    return out;
}

/* ---- field types ---- */

struct field;

struct ftype {
    const char *expect; /* "<name> must be <expect>" */
    int (*dec)(struct dec *d,
               const struct field *f,
               const msgpack_object *o,
               void *msg);
    int (*enc)(msgpack_packer *pk, const struct field *f, const void *msg);
    /* For optional fields: is it set (to be written)? NULL: always. */
    int (*isset)(const struct field *f, const void *msg);
};

struct field {
    const char *name;
    const struct ftype *type;
    size_t off;  /* the value in the message struct */
    size_t off2; /* its length, for keys, values and cursors */
};

static int bad_type(struct dec *d, const struct field *f)
{
    return fail(d, d->bad, "%s%s must be %s", d->ctx, f->name, f->type->expect);
}

static int packed(int rv)
{
    return rv == 0 ? 0 : TKV_ENOMEM;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    return packed(msgpack_pack_str_with_body(pk, s, strlen(s)));
}

/* Copy a str object into the arena, NUL-terminated, refusing NUL bytes
 * (the copy is used as a C string). */
static int dup_str(struct dec *d,
                   const char *what,
                   const msgpack_object *o,
                   const char **out,
                   size_t *len)
{
    const char *s = o->via.str.ptr;
    size_t n = o->via.str.size;
    char *copy;

    if (n > 0 && memchr(s, '\0', n) != NULL) {
        return fail(d, d->bad, "%s%s must not contain NUL bytes", d->ctx, what);
    }
    copy = tkv_arena_strndup(d->arena, s, n);
    if (copy == NULL) {
        return nomem(d);
    }
    *out = copy;
    if (len != NULL) {
        *len = n;
    }
    return 0;
}

/* A key object -> its encoding, copied into the arena. */
static int dec_key_obj(struct dec *d,
                       const char *what,
                       const msgpack_object *o,
                       int allow_empty,
                       const uint8_t **key,
                       size_t *klen)
{
    uint8_t buf[TKV_KEY_MAX];
    struct tkv_err kerr;
    size_t n = 0;
    uint8_t *copy;
    int rv;

    tkv_err_clear(&kerr);
    rv = tkv_key_from_msgpack(o, allow_empty, buf, &n, &kerr);
    if (rv != 0) {
        return fail(d, passed(d, rv), "%s%s: %s", d->ctx, what, kerr.msg);
    }
    copy = tkv_arena_memdup(d->arena, buf, n); /* never NULL for n == 0 */
    if (copy == NULL) {
        return nomem(d);
    }
    *key = copy;
    *klen = n;
    return 0;
}

/* A value object: bin holding one JSON value's msgpack bytes. Requests get
 * value.h's message unchanged (the seed's exact texts). */
static int dec_value_obj(struct dec *d,
                         const char *what,
                         const msgpack_object *o,
                         const uint8_t **value,
                         size_t *vlen)
{
    const uint8_t *p;
    size_t n;
    int rv;

    if (o->type != MSGPACK_OBJECT_BIN) {
        return fail(d, d->bad,
                    "%s%s must be bin (the msgpack bytes of a JSON value)",
                    d->ctx, what);
    }
    p = (const uint8_t *)o->via.bin.ptr;
    n = o->via.bin.size;
    if (d->bad == TKV_EPROTO) {
        struct tkv_err verr;
        tkv_err_clear(&verr);
        rv = tkv_value_check_bytes(p, n, NULL, &verr);
        if (rv != 0) {
            return fail(d, passed(d, rv), "%s%s: %s", d->ctx, what, verr.msg);
        }
    } else {
        rv = tkv_value_check_bytes(p, n, NULL, d->err);
        if (rv != 0) {
            return rv;
        }
    }
    *value = p;
    *vlen = n;
    return 0;
}

/* uint64_t at off */

static int dec_uint(struct dec *d,
                    const struct field *f,
                    const msgpack_object *o,
                    void *msg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return bad_type(d, f);
    }
    *AT(uint64_t, msg, f->off) = o->via.u64;
    return 0;
}

static int dec_pos(struct dec *d,
                   const struct field *f,
                   const msgpack_object *o,
                   void *msg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 == 0) {
        return bad_type(d, f);
    }
    *AT(uint64_t, msg, f->off) = o->via.u64;
    return 0;
}

static int enc_uint(msgpack_packer *pk, const struct field *f, const void *msg)
{
    return packed(msgpack_pack_uint64(pk, *CAT(uint64_t, msg, f->off)));
}

static int isset_uint(const struct field *f, const void *msg)
{
    return *CAT(uint64_t, msg, f->off) != 0;
}

static const struct ftype t_uint = {
    "an unsigned integer",
    dec_uint,
    enc_uint,
    isset_uint,
};

static const struct ftype t_pos = {
    "an integer > 0",
    dec_pos,
    enc_uint,
    isset_uint,
};

/* int64_t at off */

static int dec_int(struct dec *d,
                   const struct field *f,
                   const msgpack_object *o,
                   void *msg)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *AT(int64_t, msg, f->off) = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        o->via.u64 > (uint64_t)INT64_MAX) {
        return bad_type(d, f);
    }
    *AT(int64_t, msg, f->off) = (int64_t)o->via.u64;
    return 0;
}

static int enc_int(msgpack_packer *pk, const struct field *f, const void *msg)
{
    return packed(msgpack_pack_int64(pk, *CAT(int64_t, msg, f->off)));
}

static const struct ftype t_int = {
    "a 64-bit integer",
    dec_int,
    enc_int,
    NULL,
};

/* int flag at off */

static int dec_bool(struct dec *d,
                    const struct field *f,
                    const msgpack_object *o,
                    void *msg)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        return bad_type(d, f);
    }
    *AT(int, msg, f->off) = o->via.boolean ? 1 : 0;
    return 0;
}

static int enc_bool(msgpack_packer *pk, const struct field *f, const void *msg)
{
    return packed(*CAT(int, msg, f->off) ? msgpack_pack_true(pk)
                                         : msgpack_pack_false(pk));
}

static int isset_int(const struct field *f, const void *msg)
{
    return *CAT(int, msg, f->off) != 0;
}

static const struct ftype t_bool = {
    "a bool",
    dec_bool,
    enc_bool,
    isset_int,
};

/* const char * at off (NUL-terminated) */

static int dec_str(struct dec *d,
                   const struct field *f,
                   const msgpack_object *o,
                   void *msg)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return bad_type(d, f);
    }
    return dup_str(d, f->name, o, AT(const char *, msg, f->off), NULL);
}

static int enc_str(msgpack_packer *pk, const struct field *f, const void *msg)
{
    const char *s = *CAT(const char *, msg, f->off);
    return pack_cstr(pk, s != NULL ? s : "");
}

static int isset_ptr(const struct field *f, const void *msg)
{
    const void *p;
    /* the field is a const char * or a const uint8_t * */
    memcpy(&p, (const char *)msg + f->off, sizeof p);
    return p != NULL;
}

static const struct ftype t_str = {
    "a string",
    dec_str,
    enc_str,
    isset_ptr,
};

/* Same, nil on the wire for NULL. "" means "none" too: it is sent as nil
 * and read as NULL, so decode(encode(x)) is stable. */

static int dec_str_nil(struct dec *d,
                       const struct field *f,
                       const msgpack_object *o,
                       void *msg)
{
    if (o->type == MSGPACK_OBJECT_NIL ||
        (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0)) {
        *AT(const char *, msg, f->off) = NULL;
        return 0;
    }
    return dec_str(d, f, o, msg);
}

static int enc_str_nil(msgpack_packer *pk,
                       const struct field *f,
                       const void *msg)
{
    const char *s = *CAT(const char *, msg, f->off);
    if (s == NULL || s[0] == '\0') {
        return packed(msgpack_pack_nil(pk));
    }
    return pack_cstr(pk, s);
}

static const struct ftype t_str_nil = {
    "a string or nil",
    dec_str_nil,
    enc_str_nil,
    NULL,
};

/* A member address: 1..TKV_ADDR_MAX bytes (what the log can carry). */

static int dec_addr(struct dec *d,
                    const struct field *f,
                    const msgpack_object *o,
                    void *msg)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
        o->via.str.size > TKV_ADDR_MAX) {
        return bad_type(d, f);
    }
    return dup_str(d, f->name, o, AT(const char *, msg, f->off), NULL);
}

static const struct ftype t_addr = {
    "a string of 1 to 255 bytes",
    dec_addr,
    enc_str,
    isset_ptr,
};

/* Key: const uint8_t * at off, size_t length at off2. */

static int dec_key(struct dec *d,
                   const struct field *f,
                   const msgpack_object *o,
                   void *msg)
{
    return dec_key_obj(d, f->name, o, 0, AT(const uint8_t *, msg, f->off),
                       AT(size_t, msg, f->off2));
}

static int dec_prefix(struct dec *d,
                      const struct field *f,
                      const msgpack_object *o,
                      void *msg)
{
    return dec_key_obj(d, f->name, o, 1, AT(const uint8_t *, msg, f->off),
                       AT(size_t, msg, f->off2));
}

static int enc_key(msgpack_packer *pk, const struct field *f, const void *msg)
{
    return tkv_key_pack(*CAT(const uint8_t *, msg, f->off),
                        *CAT(size_t, msg, f->off2), pk);
}

static const struct ftype t_key = {
    "a key (array of str, number or bool parts)",
    dec_key,
    enc_key,
    isset_ptr,
};

static const struct ftype t_prefix = {
    "a key or []",
    dec_prefix,
    enc_key,
    isset_ptr,
};

/* Value: const uint8_t * at off, size_t length at off2. */

static int dec_value(struct dec *d,
                     const struct field *f,
                     const msgpack_object *o,
                     void *msg)
{
    return dec_value_obj(d, f->name, o, AT(const uint8_t *, msg, f->off),
                         AT(size_t, msg, f->off2));
}

static int pack_value(msgpack_packer *pk, const uint8_t *v, size_t n)
{
    return packed(msgpack_pack_bin_with_body(pk, v, n));
}

static int enc_value(msgpack_packer *pk, const struct field *f, const void *msg)
{
    return pack_value(pk, *CAT(const uint8_t *, msg, f->off),
                      *CAT(size_t, msg, f->off2));
}

static const struct ftype t_value = {
    "bin (the msgpack bytes of a JSON value)",
    dec_value,
    enc_value,
    isset_ptr,
};

/* ---- request argument types ---- */

/* consistency: "strong" | "eventual" <-> int eventual at off */

static int dec_consistency(struct dec *d,
                           const struct field *f,
                           const msgpack_object *o,
                           void *msg)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        const char *s = o->via.str.ptr;
        size_t n = o->via.str.size;
        if (n == 6 && memcmp(s, "strong", 6) == 0) {
            *AT(int, msg, f->off) = 0;
            return 0;
        }
        if (n == 8 && memcmp(s, "eventual", 8) == 0) {
            *AT(int, msg, f->off) = 1;
            return 0;
        }
    }
    return bad_type(d, f);
}

static int enc_consistency(msgpack_packer *pk,
                           const struct field *f,
                           const void *msg)
{
    return pack_cstr(pk, *CAT(int, msg, f->off) ? "eventual" : "strong");
}

static const struct ftype t_consistency = {
    "\"strong\" or \"eventual\"",
    dec_consistency,
    enc_consistency,
    isset_int,
};

/* limit: int64_t at off, 1..TKV_LIST_MAX_LIMIT (0 = absent) */

static int dec_limit(struct dec *d,
                     const struct field *f,
                     const msgpack_object *o,
                     void *msg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < 1 ||
        o->via.u64 > TKV_LIST_MAX_LIMIT) {
        return bad_type(d, f);
    }
    *AT(int64_t, msg, f->off) = (int64_t)o->via.u64;
    return 0;
}

static int isset_int64(const struct field *f, const void *msg)
{
    return *CAT(int64_t, msg, f->off) != 0;
}

static const struct ftype t_limit = {
    "an integer between 1 and 1000",
    dec_limit,
    enc_int,
    isset_int64,
};

/* cursor: const char * at off, size_t length at off2 */

static int dec_cursor(struct dec *d,
                      const struct field *f,
                      const msgpack_object *o,
                      void *msg)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return bad_type(d, f);
    }
    return dup_str(d, f->name, o, AT(const char *, msg, f->off),
                   AT(size_t, msg, f->off2));
}

static int enc_cursor(msgpack_packer *pk,
                      const struct field *f,
                      const void *msg)
{
    const char *s = *CAT(const char *, msg, f->off);
    size_t n = *CAT(size_t, msg, f->off2);
    return packed(msgpack_pack_str_with_body(pk, s, s != NULL ? n : 0));
}

static const struct ftype t_cursor = {
    "a string",
    dec_cursor,
    enc_cursor,
    isset_ptr,
};

/* Room for n elements of size sz in the arena (NULL for n == 0). */
static int dec_array(struct dec *d, size_t n, size_t sz, void **out)
{
    *out = NULL;
    if (n == 0) {
        return 0;
    }
    *out = tkv_arena_alloc(d->arena, n * sz);
    if (*out == NULL) {
        return nomem(d);
    }
    memset(*out, 0, n * sz);
    return 0;
}

/* keys (get_many): 1..TKV_GET_MANY_MAX keys */

static int dec_keys(struct dec *d,
                    const struct field *f,
                    const msgpack_object *o,
                    void *msg)
{
    struct tkv_req *req = msg;
    struct tkv_keyref *refs;
    uint32_t i, n;
    char what[32];
    int rv;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        o->via.array.size > TKV_GET_MANY_MAX) {
        return bad_type(d, f);
    }
    n = o->via.array.size;
    rv = dec_array(d, n, sizeof *refs, (void **)&refs);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        snprintf(what, sizeof what, "keys[%u]", (unsigned)i);
        rv = dec_key_obj(d, what, &o->via.array.ptr[i], 0, &refs[i].key,
                         &refs[i].klen);
        if (rv != 0) {
            return rv;
        }
    }
    req->keys = refs;
    req->nkeys = n;
    return 0;
}

static int enc_keys(msgpack_packer *pk, const struct field *f, const void *msg)
{
    const struct tkv_req *req = msg;
    size_t i;
    int rv = packed(msgpack_pack_array(pk, req->nkeys));

    for (i = 0; rv == 0 && i < req->nkeys; i++) {
        rv = tkv_key_pack(req->keys[i].key, req->keys[i].klen, pk);
    }
    return rv;
}

static const struct ftype t_keys = {
    "an array of 1 to 1000 keys",
    dec_keys,
    enc_keys,
    NULL,
};

/* checks (atomic): 0..TKV_ATOMIC_MAX_CHECKS [KEY, version] pairs */

static int dec_checks(struct dec *d,
                      const struct field *f,
                      const msgpack_object *o,
                      void *msg)
{
    struct tkv_req *req = msg;
    struct tkv_check *checks;
    uint32_t i, n;
    char what[32];
    int rv;

    if (o->type != MSGPACK_OBJECT_ARRAY ||
        o->via.array.size > TKV_ATOMIC_MAX_CHECKS) {
        return bad_type(d, f);
    }
    n = o->via.array.size;
    rv = dec_array(d, n, sizeof *checks, (void **)&checks);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        const msgpack_object *c = &o->via.array.ptr[i];
        const msgpack_object *v;
        size_t klen = 0;

        snprintf(what, sizeof what, "checks[%u]", (unsigned)i);
        if (c->type != MSGPACK_OBJECT_ARRAY || c->via.array.size != 2) {
            return fail(d, d->bad, "%s must be a [key, version] pair", what);
        }
        rv = dec_key_obj(d, what, &c->via.array.ptr[0], 0, &checks[i].key,
                         &klen);
        if (rv != 0) {
            return rv;
        }
        checks[i].klen = (uint16_t)klen;
        v = &c->via.array.ptr[1];
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return fail(d, d->bad, "%s version must be an unsigned integer",
                        what);
        }
        checks[i].version = v->via.u64;
    }
    req->checks = checks;
    req->nchecks = n;
    return 0;
}

static int enc_checks(msgpack_packer *pk,
                      const struct field *f,
                      const void *msg)
{
    const struct tkv_req *req = msg;
    uint32_t i;
    int rv = packed(msgpack_pack_array(pk, req->nchecks));

    for (i = 0; rv == 0 && i < req->nchecks; i++) {
        const struct tkv_check *c = &req->checks[i];
        rv = packed(msgpack_pack_array(pk, 2));
        if (rv == 0) {
            rv = tkv_key_pack(c->key, c->klen, pk);
        }
        if (rv == 0) {
            rv = packed(msgpack_pack_uint64(pk, c->version));
        }
    }
    return rv;
}

static const struct ftype t_checks = {
    "an array of at most 1000 [key, version] pairs",
    dec_checks,
    enc_checks,
    NULL,
};

/* mutations (atomic): 1..TKV_ATOMIC_MAX_MUTATIONS of
 * [1, KEY, VALUE, ttl_ms] (set) or [2, KEY] (delete) */

static int dec_mutation(struct dec *d,
                        const char *what,
                        const msgpack_object *m,
                        struct tkv_mutation *mut)
{
    const msgpack_object *e;
    uint32_t n;
    size_t len = 0;
    int rv;

    if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size < 2 ||
        m->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        goto err_shape;
    }
    e = m->via.array.ptr;
    n = m->via.array.size;
    if (e[0].via.u64 == TKV_CMD_SET && n == 4) {
        mut->type = TKV_CMD_SET;
    } else if (e[0].via.u64 == TKV_CMD_DELETE && n == 2) {
        mut->type = TKV_CMD_DELETE;
    } else {
        goto err_shape;
    }
    rv = dec_key_obj(d, what, &e[1], 0, &mut->key, &len);
    if (rv != 0) {
        return rv;
    }
    mut->klen = (uint16_t)len;
    if (mut->type == TKV_CMD_DELETE) {
        return 0;
    }
    rv = dec_value_obj(d, what, &e[2], &mut->value, &len);
    if (rv != 0) {
        return rv;
    }
    mut->vlen = (uint32_t)len;
    if (e[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return fail(d, d->bad, "%s ttl_ms must be an unsigned integer", what);
    }
    mut->ttl_ms = e[3].via.u64;
    return 0;

err_shape:
    return fail(d, d->bad, "%s must be [1, key, value, ttl_ms] or [2, key]",
                what);
}

static int dec_mutations(struct dec *d,
                         const struct field *f,
                         const msgpack_object *o,
                         void *msg)
{
    struct tkv_req *req = msg;
    struct tkv_mutation *muts;
    uint32_t i, n;
    char what[32];
    int rv;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        o->via.array.size > TKV_ATOMIC_MAX_MUTATIONS) {
        return bad_type(d, f);
    }
    n = o->via.array.size;
    rv = dec_array(d, n, sizeof *muts, (void **)&muts);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        snprintf(what, sizeof what, "mutations[%u]", (unsigned)i);
        rv = dec_mutation(d, what, &o->via.array.ptr[i], &muts[i]);
        if (rv != 0) {
            return rv;
        }
    }
    req->muts = muts;
    req->nmuts = n;
    return 0;
}

static int enc_mutations(msgpack_packer *pk,
                         const struct field *f,
                         const void *msg)
{
    const struct tkv_req *req = msg;
    uint32_t i;
    int rv = packed(msgpack_pack_array(pk, req->nmuts));

    for (i = 0; rv == 0 && i < req->nmuts; i++) {
        const struct tkv_mutation *m = &req->muts[i];
        int set = m->type == TKV_CMD_SET;
        rv = packed(msgpack_pack_array(pk, set ? 4 : 2));
        if (rv == 0) {
            rv = packed(
                msgpack_pack_uint8(pk, set ? TKV_CMD_SET : TKV_CMD_DELETE));
        }
        if (rv == 0) {
            rv = tkv_key_pack(m->key, m->klen, pk);
        }
        if (rv == 0 && set) {
            rv = pack_value(pk, m->value, m->vlen);
            if (rv == 0) {
                rv = packed(msgpack_pack_uint64(pk, m->ttl_ms));
            }
        }
    }
    return rv;
}

static const struct ftype t_mutations = {
    "an array of 1 to 1000 mutations",
    dec_mutations,
    enc_mutations,
    NULL,
};

/* ---- request fields ---- */

enum {
    RA_KEY,
    RA_CONSISTENCY,
    RA_KEYS,
    RA_PREFIX,
    RA_START,
    RA_END,
    RA_LIMIT,
    RA_REVERSE,
    RA_CURSOR,
    RA_VALUE,
    RA_TTL,
    RA_SESSION,
    RA_SEQ,
    RA_ACK,
    RA_CHECKS,
    RA_MUTATIONS,
    RA_NODE,   /* member_add, member_remove: node_id > 0 */
    RA_TARGET, /* transfer: node_id, 0 = let the leader pick */
    RA_RAFT_ADDR,
    RA_CLIENT_ADDR,
    RA_TERM, /* confirm */
    RA__COUNT
};

#define REQ(member) offsetof(struct tkv_req, member)

static const struct field req_fields[RA__COUNT] = {
    [RA_KEY] = {"key", &t_key, REQ(key), REQ(klen)},
    [RA_CONSISTENCY] = {"consistency", &t_consistency, REQ(eventual), 0},
    [RA_KEYS] = {"keys", &t_keys, 0, 0},
    [RA_PREFIX] = {"prefix", &t_prefix, REQ(list.prefix), REQ(list.prefix_len)},
    [RA_START] = {"start", &t_key, REQ(list.start), REQ(list.start_len)},
    [RA_END] = {"end", &t_key, REQ(list.end), REQ(list.end_len)},
    [RA_LIMIT] = {"limit", &t_limit, REQ(list.limit), 0},
    [RA_REVERSE] = {"reverse", &t_bool, REQ(list.reverse), 0},
    [RA_CURSOR] = {"cursor", &t_cursor, REQ(list.cursor), REQ(list.cursor_len)},
    [RA_VALUE] = {"value", &t_value, REQ(value), REQ(vlen)},
    [RA_TTL] = {"ttl_ms", &t_pos, REQ(ttl_ms), 0},
    [RA_SESSION] = {"session", &t_uint, REQ(session), 0},
    [RA_SEQ] = {"seq", &t_uint, REQ(seq), 0},
    [RA_ACK] = {"ack", &t_uint, REQ(ack), 0},
    [RA_CHECKS] = {"checks", &t_checks, 0, 0},
    [RA_MUTATIONS] = {"mutations", &t_mutations, 0, 0},
    [RA_NODE] = {"node_id", &t_pos, REQ(member_id), 0},
    [RA_TARGET] = {"node_id", &t_uint, REQ(member_id), 0},
    [RA_RAFT_ADDR] = {"raft_address", &t_addr, REQ(raft_address), 0},
    [RA_CLIENT_ADDR] = {"client_address", &t_addr, REQ(client_address), 0},
    [RA_TERM] = {"term", &t_pos, REQ(term), 0},
};

/* ---- reply field types ---- */

static int dec_entry_obj(struct dec *d,
                         const char *what,
                         const msgpack_object *o,
                         struct tkv_entry_ref *e)
{
    const msgpack_object *a;
    int rv;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3) {
        return fail(d, d->bad, "%s%s must be [key, value, version]", d->ctx,
                    what);
    }
    a = o->via.array.ptr;
    rv = dec_key_obj(d, what, &a[0], 0, &e->key, &e->klen);
    if (rv == 0) {
        rv = dec_value_obj(d, what, &a[1], &e->value, &e->vlen);
    }
    if (rv != 0) {
        return rv;
    }
    if (a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return fail(d, d->bad, "%s%s version must be an unsigned integer",
                    d->ctx, what);
    }
    e->version = a[2].via.u64;
    e->present = 1;
    return 0;
}

static int enc_entry_ref(msgpack_packer *pk, const struct tkv_entry_ref *e)
{
    int rv;
    if (!e->present) {
        return packed(msgpack_pack_nil(pk));
    }
    rv = packed(msgpack_pack_array(pk, 3));
    if (rv == 0) {
        rv = tkv_key_pack(e->key, e->klen, pk);
    }
    if (rv == 0) {
        rv = pack_value(pk, e->value, e->vlen);
    }
    if (rv == 0) {
        rv = packed(msgpack_pack_uint64(pk, e->version));
    }
    return rv;
}

/* entry (get): one slot, present = 0 for nil */

static int dec_entry(struct dec *d,
                     const struct field *f,
                     const msgpack_object *o,
                     void *msg)
{
    struct tkv_reply *rep = msg;
    struct tkv_entry_ref *e;
    int rv = dec_array(d, 1, sizeof *e, (void **)&e);

    if (rv != 0) {
        return rv;
    }
    if (o->type != MSGPACK_OBJECT_NIL) {
        rv = dec_entry_obj(d, f->name, o, e);
        if (rv != 0) {
            return rv;
        }
    }
    rep->entries = e;
    rep->nentries = 1;
    return 0;
}

static int enc_entry(msgpack_packer *pk, const struct field *f, const void *msg)
{
    const struct tkv_reply *rep = msg;
    if (rep->nentries == 0 || rep->entries == NULL) {
        return packed(msgpack_pack_nil(pk));
    }
    return enc_entry_ref(pk, &rep->entries[0]);
}

static const struct ftype t_entry = {
    "[key, value, version] or nil",
    dec_entry,
    enc_entry,
    NULL,
};

/* entries (get_many, nil slots allowed) and items (list, no nil) */

static int dec_entry_list(struct dec *d,
                          const struct field *f,
                          const msgpack_object *o,
                          void *msg,
                          int nil_ok)
{
    struct tkv_reply *rep = msg;
    struct tkv_entry_ref *es;
    uint32_t i, n;
    char what[32];
    int rv;

    /* TKV_GET_MANY_MAX == TKV_LIST_MAX_LIMIT: one bound serves both */
    if (o->type != MSGPACK_OBJECT_ARRAY ||
        o->via.array.size > TKV_LIST_MAX_LIMIT) {
        return bad_type(d, f);
    }
    n = o->via.array.size;
    rv = dec_array(d, n, sizeof *es, (void **)&es);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        snprintf(what, sizeof what, "%s[%u]", f->name, (unsigned)i);
        if (nil_ok && e->type == MSGPACK_OBJECT_NIL) {
            continue;
        }
        rv = dec_entry_obj(d, what, e, &es[i]);
        if (rv != 0) {
            return rv;
        }
    }
    rep->entries = es;
    rep->nentries = n;
    return 0;
}

static int dec_entries(struct dec *d,
                       const struct field *f,
                       const msgpack_object *o,
                       void *msg)
{
    return dec_entry_list(d, f, o, msg, 1);
}

static int dec_items(struct dec *d,
                     const struct field *f,
                     const msgpack_object *o,
                     void *msg)
{
    return dec_entry_list(d, f, o, msg, 0);
}

static int enc_entry_list(msgpack_packer *pk,
                          const struct field *f,
                          const void *msg)
{
    const struct tkv_reply *rep = msg;
    size_t i;
    int rv = packed(msgpack_pack_array(pk, rep->nentries));

    for (i = 0; rv == 0 && i < rep->nentries; i++) {
        rv = enc_entry_ref(pk, &rep->entries[i]);
    }
    return rv;
}

static const struct ftype t_entries = {
    "an array of at most 1000 entries or nils",
    dec_entries,
    enc_entry_list,
    NULL,
};

static const struct ftype t_items = {
    "an array of at most 1000 [key, value, version] entries",
    dec_items,
    enc_entry_list,
    NULL,
};

/* code: the error's word <-> rep->code */

static int dec_code(struct dec *d,
                    const struct field *f,
                    const msgpack_object *o,
                    void *msg)
{
    struct tkv_reply *rep = msg;
    int code;

    if (o->type != MSGPACK_OBJECT_STR) {
        return bad_type(d, f);
    }
    /* An unknown word (a newer node) reads as TKV_EINTERNAL. */
    code = tkv_errcode(o->via.str.ptr, o->via.str.size);
    if (code == 0) {
        return fail(d, d->bad, "error reply with code OK");
    }
    rep->code = code;
    return 0;
}

static int enc_code(msgpack_packer *pk, const struct field *f, const void *msg)
{
    const struct tkv_reply *rep = msg;
    return pack_cstr(pk, tkv_errname(rep->code));
}

static const struct ftype t_code = {
    "an error code word",
    dec_code,
    enc_code,
    NULL,
};

/* message: never empty on the wire */

static int enc_message(msgpack_packer *pk,
                       const struct field *f,
                       const void *msg)
{
    const struct tkv_reply *rep = msg;
    return pack_cstr(
        pk, rep->message != NULL ? rep->message : tkv_strerror(rep->code));
}

static const struct ftype t_message = {
    "a string",
    dec_str,
    enc_message,
    NULL,
};

/* members: array of maps, decoded with member_fields below */

static int dec_map(struct dec *d,
                   const msgpack_object_map *m,
                   const struct field *fields,
                   size_t nfields,
                   uint32_t allowed,
                   uint32_t required,
                   const char *const *skip,
                   void *msg);
static uint32_t fields_to_write(const struct field *fields,
                                size_t nfields,
                                uint32_t allowed,
                                uint32_t required,
                                const void *msg);
static int enc_fields(msgpack_packer *pk,
                      const struct field *fields,
                      size_t nfields,
                      uint32_t which,
                      const void *msg);

#define MEM(member) offsetof(struct tkv_member, member)

static const struct field member_fields[] = {
    {"id", &t_uint, MEM(id), 0},
    {"raft_address", &t_str, MEM(raft_address), 0},
    {"client_address", &t_str_nil, MEM(client_address), 0},
    {"role", &t_str, MEM(role), 0},
};

#define NMEMBER_FIELDS (sizeof member_fields / sizeof member_fields[0])
#define MEMBER_ALL ((1u << NMEMBER_FIELDS) - 1)

static int dec_members(struct dec *d,
                       const struct field *f,
                       const msgpack_object *o,
                       void *msg)
{
    struct tkv_reply *rep = msg;
    struct tkv_member *ms;
    struct dec sub = *d;
    uint32_t i, n;
    int rv;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > MEMBERS_MAX) {
        return bad_type(d, f);
    }
    n = o->via.array.size;
    rv = dec_array(d, n, sizeof *ms, (void **)&ms);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        snprintf(sub.where, sizeof sub.where, " in members[%u]", (unsigned)i);
        snprintf(sub.ctx, sizeof sub.ctx, "members[%u].", (unsigned)i);
        if (e->type != MSGPACK_OBJECT_MAP) {
            return fail(d, d->bad, "members[%u] must be a map", (unsigned)i);
        }
        rv = dec_map(&sub, &e->via.map, member_fields, NMEMBER_FIELDS,
                     MEMBER_ALL, MEMBER_ALL, NULL, &ms[i]);
        if (rv != 0) {
            return rv;
        }
    }
    rep->members = ms;
    rep->nmembers = n;
    return 0;
}

static int enc_members(msgpack_packer *pk,
                       const struct field *f,
                       const void *msg)
{
    const struct tkv_reply *rep = msg;
    size_t i;
    int rv = packed(msgpack_pack_array(pk, rep->nmembers));

    for (i = 0; rv == 0 && i < rep->nmembers; i++) {
        rv = packed(msgpack_pack_map(pk, NMEMBER_FIELDS));
        if (rv == 0) {
            rv = enc_fields(pk, member_fields, NMEMBER_FIELDS, MEMBER_ALL,
                            &rep->members[i]);
        }
    }
    return rv;
}

static const struct ftype t_members = {
    "an array of member maps",
    dec_members,
    enc_members,
    NULL,
};

/* ---- reply fields ---- */

enum {
    RF_ENTRY,
    RF_ENTRIES,
    RF_ITEMS,
    RF_TOTAL,
    RF_CURSOR,
    RF_VERSION,
    RF_NODE_ID,
    RF_ROLE,
    RF_TERM,
    RF_LEADER_ID,
    RF_LEADER_ADDRESS,
    RF_COMMIT_INDEX,
    RF_APPLIED_INDEX,
    RF_SNAPSHOT_INDEX,
    RF_KEYS,
    RF_DATA_BYTES,
    RF_SM_TIME,
    RF_CONNECTIONS,
    RF_UPTIME,
    RF_MEMBERS,
    /* error replies */
    RF_CODE,
    RF_MESSAGE,
    RF_LEADER,
    RF_CONFLICT,
    RF__COUNT
};

#define REP(member) offsetof(struct tkv_reply, member)

static const struct field rep_fields[RF__COUNT] = {
    [RF_ENTRY] = {"entry", &t_entry, 0, 0},
    [RF_ENTRIES] = {"entries", &t_entries, 0, 0},
    [RF_ITEMS] = {"items", &t_items, 0, 0},
    [RF_TOTAL] = {"total", &t_uint, REP(total), 0},
    [RF_CURSOR] = {"cursor", &t_str_nil, REP(cursor), 0},
    [RF_VERSION] = {"version", &t_uint, REP(version), 0},
    [RF_NODE_ID] = {"node_id", &t_uint, REP(status.node_id), 0},
    [RF_ROLE] = {"role", &t_str, REP(status.role), 0},
    [RF_TERM] = {"term", &t_uint, REP(status.term), 0},
    [RF_LEADER_ID] = {"leader_id", &t_uint, REP(status.leader_id), 0},
    [RF_LEADER_ADDRESS] = {"leader_address", &t_str_nil,
                           REP(status.leader_address), 0},
    [RF_COMMIT_INDEX] = {"commit_index", &t_uint, REP(status.commit_index), 0},
    [RF_APPLIED_INDEX] = {"applied_index", &t_uint, REP(status.applied_index),
                          0},
    [RF_SNAPSHOT_INDEX] = {"snapshot_index", &t_uint,
                           REP(status.snapshot_index), 0},
    [RF_KEYS] = {"keys", &t_uint, REP(status.keys), 0},
    [RF_DATA_BYTES] = {"data_bytes", &t_uint, REP(status.data_bytes), 0},
    [RF_SM_TIME] = {"sm_time_ms", &t_int, REP(status.sm_time_ms), 0},
    [RF_CONNECTIONS] = {"connections", &t_uint, REP(status.connections), 0},
    [RF_UPTIME] = {"uptime_ms", &t_uint, REP(status.uptime_ms), 0},
    [RF_MEMBERS] = {"members", &t_members, 0, 0},
    [RF_CODE] = {"code", &t_code, 0, 0},
    [RF_MESSAGE] = {"message", &t_message, REP(message), 0},
    [RF_LEADER] = {"leader", &t_str, REP(leader), 0},
    [RF_CONFLICT] = {"conflict", &t_key, REP(conflict), REP(conflict_len)},
};

/* ---- ops ---- */

#define A(x) (1u << RA_##x)
#define R(x) (1u << RF_##x)
#define WRITE (A(SESSION) | A(SEQ) | A(ACK))
#define STATUS                                                           \
    (R(NODE_ID) | R(ROLE) | R(TERM) | R(LEADER_ID) | R(LEADER_ADDRESS) | \
     R(COMMIT_INDEX) | R(APPLIED_INDEX) | R(SNAPSHOT_INDEX) | R(KEYS) |  \
     R(DATA_BYTES) | R(SM_TIME) | R(CONNECTIONS) | R(UPTIME))

struct op_spec {
    uint32_t args;     /* request arguments accepted (bits of RA_) */
    uint32_t required; /* ... of which required */
    uint32_t reply;    /* fields of the ok reply, all required (RF_) */
    int write;         /* goes through the log */
};

static const struct op_spec ops[TKV_OP__COUNT] = {
    [TKV_OP_GET] = {A(KEY) | A(CONSISTENCY), A(KEY), R(ENTRY), 0},
    [TKV_OP_GET_MANY] = {A(KEYS) | A(CONSISTENCY), A(KEYS), R(ENTRIES), 0},
    [TKV_OP_LIST] = {A(PREFIX) | A(START) | A(END) | A(LIMIT) | A(REVERSE) |
                         A(CURSOR) | A(CONSISTENCY),
                     0, R(ITEMS) | R(TOTAL) | R(CURSOR), 0},
    [TKV_OP_SET] = {A(KEY) | A(VALUE) | A(TTL) | WRITE, A(KEY) | A(VALUE),
                    R(VERSION), 1},
    [TKV_OP_DELETE] = {A(KEY) | WRITE, A(KEY), R(VERSION), 1},
    [TKV_OP_ATOMIC] = {A(CHECKS) | A(MUTATIONS) | WRITE,
                       A(CHECKS) | A(MUTATIONS), R(VERSION), 1},
    [TKV_OP_STATUS] = {0, 0, STATUS, 0},
    [TKV_OP_MEMBERS] = {A(CONSISTENCY), 0, R(MEMBERS), 0},
    [TKV_OP_MEMBER_ADD] = {A(NODE) | A(RAFT_ADDR) | A(CLIENT_ADDR),
                           A(NODE) | A(RAFT_ADDR) | A(CLIENT_ADDR), 0, 0},
    [TKV_OP_MEMBER_REMOVE] = {A(NODE), A(NODE), 0, 0},
    [TKV_OP_TRANSFER] = {A(TARGET), 0, 0, 0},
    [TKV_OP_CONFIRM] = {A(TERM) | A(NODE), A(TERM) | A(NODE), R(TERM), 0},
};

/* The fields of an error reply, as if it were one more op. */
static const struct op_spec error_spec = {
    0, 0, R(CODE) | R(MESSAGE) | R(LEADER) | R(CONFLICT), 0};
#define ERROR_REQUIRED (R(CODE) | R(MESSAGE))

int tkv_op_is_write(int op)
{
    return op > TKV_OP_NONE && op < TKV_OP__COUNT && ops[op].write;
}

/* ---- generic map encoder ---- */

static uint32_t fields_to_write(const struct field *fields,
                                size_t nfields,
                                uint32_t allowed,
                                uint32_t required,
                                const void *msg)
{
    uint32_t which = 0;
    size_t i;

    for (i = 0; i < nfields; i++) {
        const struct field *f = &fields[i];
        uint32_t bit = 1u << i;
        if (!(allowed & bit)) {
            continue;
        }
        if ((required & bit) || f->type->isset == NULL ||
            f->type->isset(f, msg)) {
            which |= bit;
        }
    }
    return which;
}

static int enc_fields(msgpack_packer *pk,
                      const struct field *fields,
                      size_t nfields,
                      uint32_t which,
                      const void *msg)
{
    size_t i;
    int rv = 0;

    for (i = 0; rv == 0 && i < nfields; i++) {
        if (which & (1u << i)) {
            rv = pack_cstr(pk, fields[i].name);
            if (rv == 0) {
                rv = fields[i].type->enc(pk, &fields[i], msg);
            }
        }
    }
    return rv;
}

static int frame_begin(struct tkv_buf *out, size_t *start, msgpack_packer *pk)
{
    static const uint8_t zero[TKV_FRAME_HDR];
    *start = out->len;
    msgpack_packer_init(pk, out, tkv_buf_msgpack_write);
    return tkv_buf_append(out, zero, sizeof zero);
}

static int frame_end(struct tkv_buf *out, size_t start, int rv)
{
    size_t n = 0;

    if (rv == 0 && out->failed) {
        rv = TKV_ENOMEM;
    }
    if (rv == 0) {
        n = out->len - start - TKV_FRAME_HDR;
        if (n > TKV_FRAME_MAX) {
            rv = TKV_ETOO_LARGE;
        }
    }
    if (rv != 0) {
        out->len = start;
        return rv;
    }
    tkv_frame_put_len(out->data + start, (uint32_t)n);
    return 0;
}

int tkv_req_encode(const struct tkv_req *req, struct tkv_buf *out)
{
    const struct op_spec *spec;
    msgpack_packer pk;
    uint32_t which;
    size_t start;
    int rv;

    assert(req->op > TKV_OP_NONE && req->op < TKV_OP__COUNT);
    spec = &ops[req->op];
    which =
        fields_to_write(req_fields, RA__COUNT, spec->args, spec->required, req);
    rv = frame_begin(out, &start, &pk);
    if (rv == 0) {
        rv = packed(
            msgpack_pack_map(&pk, 2 + (size_t)__builtin_popcount(which)));
    }
    if (rv == 0) {
        rv = pack_cstr(&pk, "id");
    }
    if (rv == 0) {
        rv = packed(msgpack_pack_uint64(&pk, req->id));
    }
    if (rv == 0) {
        rv = pack_cstr(&pk, "op");
    }
    if (rv == 0) {
        rv = pack_cstr(&pk, op_names[req->op]);
    }
    if (rv == 0) {
        rv = enc_fields(&pk, req_fields, RA__COUNT, which, req);
    }
    return frame_end(out, start, rv);
}

int tkv_reply_encode(const struct tkv_reply *rep, struct tkv_buf *out)
{
    msgpack_packer pk;
    uint32_t which;
    size_t start;
    int rv;

    if (rep->code != 0) {
        which = fields_to_write(rep_fields, RF__COUNT, error_spec.reply,
                                ERROR_REQUIRED, rep);
    } else {
        assert(rep->op > TKV_OP_NONE && rep->op < TKV_OP__COUNT);
        which = ops[rep->op].reply;
    }
    rv = frame_begin(out, &start, &pk);
    if (rv == 0) {
        rv = packed(
            msgpack_pack_map(&pk, 2 + (size_t)__builtin_popcount(which)));
    }
    if (rv == 0) {
        rv = pack_cstr(&pk, "id");
    }
    if (rv == 0) {
        rv = packed(msgpack_pack_uint64(&pk, rep->id));
    }
    if (rv == 0) {
        rv = pack_cstr(&pk, "ok");
    }
    if (rv == 0) {
        rv = packed(rep->code == 0 ? msgpack_pack_true(&pk)
                                   : msgpack_pack_false(&pk));
    }
    if (rv == 0) {
        rv = enc_fields(&pk, rep_fields, RF__COUNT, which, rep);
    }
    return frame_end(out, start, rv);
}

/* ---- generic map decoder ---- */

static int str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

/* How many times name is a key of m; *val gets the first value. */
static unsigned find_key(const msgpack_object_map *m,
                         const char *name,
                         const msgpack_object **val)
{
    unsigned count = 0;
    uint32_t i;

    *val = NULL;
    for (i = 0; i < m->size; i++) {
        if (str_is(&m->ptr[i].key, name)) {
            if (count++ == 0) {
                *val = &m->ptr[i].val;
            }
        }
    }
    return count;
}

/* Decode every key of m but those in skip (NULL-terminated, already
 * handled by the caller) into msg: each must be one of the allowed
 * fields, at most once, and every required field must be there. */
static int dec_map(struct dec *d,
                   const msgpack_object_map *m,
                   const struct field *fields,
                   size_t nfields,
                   uint32_t allowed,
                   uint32_t required,
                   const char *const *skip,
                   void *msg)
{
    char shown[SHOW_MAX + 4];
    uint32_t seen = 0;
    uint32_t i;
    size_t j;
    int rv;

    for (i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        const char *name;
        size_t n;
        int skipped = 0;

        if (k->type != MSGPACK_OBJECT_STR) {
            return fail(d, d->bad, "%s names must be strings%s", d->kind,
                        d->where);
        }
        name = k->via.str.ptr;
        n = k->via.str.size;
        for (j = 0; skip != NULL && skip[j] != NULL; j++) {
            skipped |= str_is(k, skip[j]);
        }
        if (skipped) {
            continue;
        }
        for (j = 0; j < nfields; j++) {
            if ((allowed & (1u << j)) && strlen(fields[j].name) == n &&
                memcmp(fields[j].name, name, n) == 0) {
                break;
            }
        }
        if (j == nfields) {
            return fail(d, d->bad, "unknown %s '%s'%s", d->kind,
                        show(name, n, shown), d->where);
        }
        if (seen & (1u << j)) {
            return fail(d, d->bad, "duplicate %s '%s'%s", d->kind,
                        fields[j].name, d->where);
        }
        seen |= 1u << j;
        rv = fields[j].type->dec(d, &fields[j], &m->ptr[i].val, msg);
        if (rv != 0) {
            return rv;
        }
    }
    for (j = 0; j < nfields; j++) {
        if ((required & (1u << j)) && !(seen & (1u << j))) {
            return fail(d, d->bad, "missing %s '%s'%s: expected %s", d->kind,
                        fields[j].name, d->where, fields[j].type->expect);
        }
    }
    return 0;
}

/* ---- payload -> map ---- */

/* Step 2: the first msgpack object of p[0..len) is there whole, every
 * count backed by bytes, at most FRAME_DEPTH_MAX containers open at once.
 * NULL with *end its length, or why not. */
static const char *scan_msgpack(const uint8_t *p, size_t len, size_t *end)
{
    struct tkv_mpr r;

    tkv_mpr_init(&r, p, len);
    if (tkv_mpr_skip_depth(&r, FRAME_DEPTH_MAX, NULL, end) == 0) {
        return NULL;
    }
    switch (r.why) {
        case TKV_MPR_DEPTH:
            return "nested too deep";
        case TKV_MPR_TYPE: /* 0xc1 */
        case TKV_MPR_HEADER:
            return "malformed";
        default:
            return "truncated";
    }
}

/* Steps 1-4 of the top comment: payload -> unpacked top-level map. *end
 * gets the length of that map (the caller reports trailing bytes after
 * reading the id). On success the caller destroys *up. */
static int unpack_map(const uint8_t *payload,
                      size_t len,
                      const char *what,
                      msgpack_unpacked *up,
                      size_t *end,
                      struct tkv_err *err)
{
    const char *why;
    size_t off = 0;
    msgpack_unpack_return r;

    if (len > TKV_FRAME_MAX) {
        return tkv_err_set(err, TKV_ETOO_LARGE,
                           "%s of %zu bytes exceeds the limit of %u bytes",
                           what, len, TKV_FRAME_MAX);
    }
    why = scan_msgpack(payload, len, end);
    if (why != NULL) {
        return tkv_err_set(err, TKV_EPROTO, "%s is not msgpack (%s)", what,
                           why);
    }
    msgpack_unpacked_init(up);
    r = msgpack_unpack_next(up, (const char *)payload, *end, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        msgpack_unpacked_destroy(up);
        return tkv_err_set(err, TKV_ENOMEM, "out of memory unpacking a %s",
                           what);
    }
    if (r != MSGPACK_UNPACK_SUCCESS || off != *end) {
        msgpack_unpacked_destroy(up);
        return tkv_err_set(err, TKV_EPROTO, "%s is not msgpack", what);
    }
    if (up->data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(up);
        return tkv_err_set(err, TKV_EPROTO, "%s must be a msgpack map", what);
    }
    return 0;
}

/* Steps 4-5: `id` when it can be read, then trailing bytes, then what is
 * wrong with `id`. */
static int dec_id(struct dec *d,
                  const msgpack_object_map *m,
                  size_t end,
                  size_t len,
                  const char *what,
                  uint64_t *id)
{
    const msgpack_object *v;
    unsigned n = find_key(m, "id", &v);

    if (n == 1 && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *id = v->via.u64;
    }
    if (end != len) {
        return fail(d, TKV_EPROTO, "%zu trailing bytes after the %s", len - end,
                    what);
    }
    if (n == 0) {
        return fail(d, d->bad, "missing %s 'id': expected %s", d->kind,
                    t_uint.expect);
    }
    if (n > 1) {
        return fail(d, d->bad, "duplicate %s 'id'", d->kind);
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return fail(d, d->bad, "id must be %s", t_uint.expect);
    }
    return 0;
}

static const char *const req_skip[] = {"id", "op", NULL};
static const char *const rep_skip[] = {"id", "ok", NULL};

int tkv_req_decode(const uint8_t *payload,
                   size_t len,
                   struct tkv_req *req,
                   struct tkv_err *err)
{
    char shown[SHOW_MAX + 4];
    msgpack_unpacked up;
    const msgpack_object_map *m;
    const msgpack_object *v;
    const struct op_spec *spec;
    struct dec d;
    size_t end = 0;
    unsigned n;
    int op;
    int rv;

    rv = unpack_map(payload, len, "request", &up, &end, err);
    if (rv != 0) {
        return rv;
    }
    m = &up.data.via.map;
    dec_init(&d, &req->arena, err, TKV_EINVALID, "argument");
    rv = dec_id(&d, m, end, len, "request", &req->id);
    if (rv != 0) {
        goto out;
    }
    n = find_key(m, "op", &v);
    if (n != 1 || v->type != MSGPACK_OBJECT_STR) {
        rv = fail(&d, d.bad,
                  n == 0  ? "missing argument 'op': expected a string"
                  : n > 1 ? "duplicate argument 'op'"
                          : "op must be a string");
        goto out;
    }
    op = tkv_op_lookup(v->via.str.ptr, v->via.str.size);
    if (op == TKV_OP_NONE) {
        rv = fail(&d, d.bad, "unknown op '%s'",
                  show(v->via.str.ptr, v->via.str.size, shown));
        goto out;
    }
    req->op = op;
    spec = &ops[op];
    snprintf(d.where, sizeof d.where, " for op '%s'", op_names[op]);
    rv = dec_map(&d, m, req_fields, RA__COUNT, spec->args, spec->required,
                 req_skip, req);
out:
    msgpack_unpacked_destroy(&up);
    return rv;
}

int tkv_reply_decode(const uint8_t *payload,
                     size_t len,
                     struct tkv_reply *rep,
                     struct tkv_err *err)
{
    msgpack_unpacked up;
    const msgpack_object_map *m;
    const msgpack_object *v;
    struct dec d;
    size_t end = 0;
    unsigned n;
    int rv;

    rv = unpack_map(payload, len, "reply", &up, &end, err);
    if (rv != 0) {
        return rv;
    }
    m = &up.data.via.map;
    dec_init(&d, &rep->arena, err, TKV_EPROTO, "field");
    rv = dec_id(&d, m, end, len, "reply", &rep->id);
    if (rv != 0) {
        goto out;
    }
    n = find_key(m, "ok", &v);
    if (n != 1 || v->type != MSGPACK_OBJECT_BOOLEAN) {
        rv = fail(&d, d.bad,
                  n == 0  ? "missing field 'ok': expected a bool"
                  : n > 1 ? "duplicate field 'ok'"
                          : "ok must be a bool");
        goto out;
    }
    if (v->via.boolean) {
        const struct op_spec *spec;
        if (rep->op <= TKV_OP_NONE || rep->op >= TKV_OP__COUNT) {
            rv = fail(&d, TKV_EINVALID, "ok reply to an unknown op (%d)",
                      rep->op);
            goto out;
        }
        spec = &ops[rep->op];
        rep->code = 0;
        snprintf(d.where, sizeof d.where, " in the '%s' reply",
                 op_names[rep->op]);
        rv = dec_map(&d, m, rep_fields, RF__COUNT, spec->reply, spec->reply,
                     rep_skip, rep);
    } else {
        snprintf(d.where, sizeof d.where, " in the error reply");
        rv = dec_map(&d, m, rep_fields, RF__COUNT, error_spec.reply,
                     ERROR_REQUIRED, rep_skip, rep);
    }
out:
    msgpack_unpacked_destroy(&up);
    return rv;
}

int tkv_reply_peek_id(const uint8_t *payload,
                      size_t len,
                      uint64_t *id /* OUT */,
                      struct tkv_err *err)
{
    msgpack_unpacked up;
    const msgpack_object *v;
    size_t end = 0;
    int rv;

    rv = unpack_map(payload, len, "reply", &up, &end, err);
    if (rv != 0) {
        return rv;
    }
    if (find_key(&up.data.via.map, "id", &v) == 1 &&
        v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *id = v->via.u64;
    } else {
        rv = tkv_err_set(err, TKV_EPROTO, "reply has no readable id");
    }
    msgpack_unpacked_destroy(&up);
    return rv;
}
