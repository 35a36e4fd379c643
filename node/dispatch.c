/* The op table: one row per protocol op, naming its handler.
 *
 *   reads   get, get_many, list: eventual -> served from the local state
 *           at once; strong -> tkv_replica_read() (leader only, one
 *           leader confirmation per loop turn), then served. getMany and a list
 * page are built in one go between two applies, so each is one consistent
 * snapshot, and encoded at once (node pointers are only valid until the next
 * apply). writes  set, delete, atomic: the request becomes one struct tkv_cmd
 *           (session/seq/ack passed through for deduplication) and goes to
 *           the batcher; the reply waits for the apply on this leader.
 *   admin   status (local); members: the leader's view (client/tuplekv.h),
 *           so a follower answers NOT_LEADER with the leader's address
 *           unless the request is eventual; member_add, member_remove,
 *           transfer (raft membership changes, leader only).
 *   nodes   confirm: another node, as leader, asks for our term. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "server.h"

typedef void (*tkv_op_fn)(struct tkv_server *s, struct tkv_request *r);

static void tkv__fill_ref(struct tkv_entry_ref *ref,
                          const struct tkv_sl_node *n)
{
    memset(ref, 0, sizeof *ref);
    if (n == NULL) {
        return;
    }
    ref->key = tkv_sl_key(n);
    ref->klen = n->klen;
    ref->value = tkv_sl_value(n);
    ref->vlen = n->vlen;
    ref->version = n->version;
    ref->present = 1;
}

/* ---- reads ------------------------------------------------------------------
 */

static void tkv__serve_read(struct tkv_server *s, struct tkv_request *r)
{
    const struct tkv_sm *sm = tkv_replica_sm(s->rep);
    struct tkv_reply rep;
    struct tkv_err err;
    size_t i;
    int rv;

    tkv_reply_init(&rep);
    tkv_err_clear(&err);
    switch (r->req.op) {
        case TKV_OP_GET:
            tkv__fill_ref(&s->refs[0], tkv_sm_get(sm, r->req.key, r->req.klen));
            rep.entries = s->refs;
            rep.nentries = 1;
            break;
        case TKV_OP_GET_MANY:
            for (i = 0; i < r->req.nkeys && i < TKV_LIST_MAX_LIMIT; i++) {
                tkv__fill_ref(&s->refs[i], tkv_sm_get(sm, r->req.keys[i].key,
                                                      r->req.keys[i].klen));
            }
            rep.entries = s->refs;
            rep.nentries = i;
            break;
        case TKV_OP_LIST:
            rv = tkv_sm_list(sm, &r->req.list, s->list, &err);
            if (rv != 0) {
                tkv_reply_close(&rep);
                tkv_server_reply_error(r, rv, err.msg);
                return;
            }
            for (i = 0; i < s->list->n; i++) {
                tkv__fill_ref(&s->refs[i], s->list->items[i]);
            }
            rep.entries = s->refs;
            rep.nentries = s->list->n;
            rep.total = s->list->total;
            rep.cursor = s->list->cursor[0] != '\0' ? s->list->cursor : NULL;
            break;
        default:
            assert(0);
    }
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

static void tkv__read_cb(void *data, int code, const char *msg)
{
    struct tkv_request *r = data;
    if (code != 0) {
        tkv_server_reply_error(r, code, msg);
        return;
    }
    tkv__serve_read(r->conn->srv, r);
}

static void tkv__op_read(struct tkv_server *s, struct tkv_request *r)
{
    struct tkv_err err;
    int rv;
    if (r->req.eventual) {
        tkv__serve_read(s, r);
        return;
    }
    tkv_err_clear(&err);
    rv = tkv_replica_read(s->rep, tkv__read_cb, r, &err);
    if (rv != 0) {
        tkv_server_reply_error(r, rv, err.msg);
    }
}

/* ---- writes -----------------------------------------------------------------
 */

static void tkv__write_cb(void *data, int code, const struct tkv_result *res)
{
    struct tkv_request *r = data;
    struct tkv_reply rep;

    if (code == TKV_EUNKNOWN) {
        tkv_server_reply_error(r, code,
                               "leadership lost after proposing: the write "
                               "may or may not be applied");
        return;
    }
    if (code != 0) {
        tkv_server_reply_error(r, code, NULL);
        return;
    }
    tkv_reply_init(&rep);
    if (res->code != 0) {
        rep.code = res->code;
        rep.message = tkv_strerror(res->code);
        if (res->code == TKV_ECONFLICT && r->req.op == TKV_OP_ATOMIC &&
            res->conflict < r->req.nchecks) {
            rep.conflict = r->req.checks[res->conflict].key;
            rep.conflict_len = r->req.checks[res->conflict].klen;
        }
    } else {
        rep.version = res->version;
    }
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

static void tkv__op_write(struct tkv_server *s, struct tkv_request *r)
{
    const struct tkv_req *q = &r->req;
    struct tkv_cmd cmd;
    struct tkv_err err;
    int rv;

    memset(&cmd, 0, sizeof cmd);
    cmd.session = q->session;
    cmd.seq = q->seq;
    cmd.ack = q->ack;
    switch (q->op) {
        case TKV_OP_SET:
            cmd.type = TKV_CMD_SET;
            cmd.mut.type = TKV_CMD_SET;
            cmd.mut.key = q->key;
            cmd.mut.klen = (uint16_t)q->klen;
            cmd.mut.value = q->value;
            cmd.mut.vlen = (uint32_t)q->vlen;
            cmd.mut.ttl_ms = q->ttl_ms;
            break;
        case TKV_OP_DELETE:
            cmd.type = TKV_CMD_DELETE;
            cmd.mut.type = TKV_CMD_DELETE;
            cmd.mut.key = q->key;
            cmd.mut.klen = (uint16_t)q->klen;
            break;
        case TKV_OP_ATOMIC:
            cmd.type = TKV_CMD_ATOMIC;
            cmd.checks = q->checks;
            cmd.nchecks = q->nchecks;
            cmd.muts = q->muts;
            cmd.nmuts = q->nmuts;
            break;
        default:
            assert(0);
    }
    tkv_err_clear(&err);
    rv = tkv_replica_write(s->rep, &cmd, tkv__write_cb, r, &err);
    if (rv != 0) {
        tkv_server_reply_error(r, rv, err.msg);
    }
}

/* ---- admin ------------------------------------------------------------------
 */

static void tkv__op_status(struct tkv_server *s, struct tkv_request *r)
{
    struct tkv_replica_status st;
    struct tkv_reply rep;

    tkv_replica_status(s->rep, &st);
    tkv_reply_init(&rep);
    rep.status.node_id = st.id;
    rep.status.role = st.role;
    rep.status.term = st.term;
    rep.status.leader_id = st.leader_id;
    rep.status.leader_address = st.leader_address;
    rep.status.commit_index = st.commit_index;
    rep.status.applied_index = st.applied_index;
    rep.status.snapshot_index = st.snapshot_index;
    rep.status.keys = st.keys;
    rep.status.data_bytes = st.data_bytes;
    rep.status.sm_time_ms = st.sm_time_ms;
    rep.status.connections = s->nconns;
    rep.status.uptime_ms = uv_now(s->loop) - s->start_ms;
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

#define TKV__MEMBERS_MAX 64

static void tkv__op_members(struct tkv_server *s, struct tkv_request *r)
{
    struct tkv_replica_member m[TKV__MEMBERS_MAX];
    struct tkv_member out[TKV__MEMBERS_MAX];
    struct tkv_reply rep;
    size_t n, i;

    /* A follower's configuration may lag the leader's (or be that of a
     * node cut off from the cluster); the documented answer is the
     * leader's view. The reply names the leader, which the client follows
     * (UNAVAILABLE when no leader is known: the client retries). */
    if (!r->req.eventual && !tkv_replica_is_leader(s->rep)) {
        tkv_server_reply_error(r, TKV_ENOT_LEADER,
                               "members is answered by the leader");
        return;
    }
    n = tkv_replica_members(s->rep, m, TKV__MEMBERS_MAX);
    if (n > TKV__MEMBERS_MAX) {
        n = TKV__MEMBERS_MAX;
    }
    for (i = 0; i < n; i++) {
        out[i].id = m[i].id;
        out[i].raft_address = m[i].raft_address;
        out[i].client_address = m[i].client_address;
        out[i].role = m[i].role;
    }
    tkv_reply_init(&rep);
    rep.members = out;
    rep.nmembers = n;
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

static void tkv__admin_cb(void *data, int code, const char *msg)
{
    struct tkv_request *r = data;
    struct tkv_reply rep;
    if (code != 0) {
        tkv_server_reply_error(r, code, msg);
        return;
    }
    tkv_reply_init(&rep);
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

static void tkv__op_admin(struct tkv_server *s, struct tkv_request *r)
{
    const struct tkv_req *q = &r->req;
    struct tkv_err err;
    int rv;

    tkv_err_clear(&err);
    switch (q->op) {
        case TKV_OP_MEMBER_ADD:
            rv = tkv_replica_member_add(s->rep, q->member_id, q->raft_address,
                                        q->client_address, tkv__admin_cb, r,
                                        &err);
            break;
        case TKV_OP_MEMBER_REMOVE:
            rv = tkv_replica_member_remove(s->rep, q->member_id, tkv__admin_cb,
                                           r, &err);
            break;
        case TKV_OP_TRANSFER:
            rv = tkv_replica_transfer(s->rep, q->member_id, tkv__admin_cb, r,
                                      &err);
            break;
        default:
            assert(0);
            rv = TKV_EINTERNAL;
    }
    if (rv != 0) {
        tkv_server_reply_error(r, rv, err.msg);
    }
}

/* A leader asks whether this node is in a later term than its own (see
 * raft/confirm.c): the answer is our term, now. */
static void tkv__op_confirm(struct tkv_server *s, struct tkv_request *r)
{
    struct tkv_reply rep;
    tkv_reply_init(&rep);
    rep.status.term = tkv_replica_term(s->rep);
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

/* ---- the table --------------------------------------------------------------
 */

static const tkv_op_fn tkv__ops[TKV_OP__COUNT] = {
    [TKV_OP_GET] = tkv__op_read,         [TKV_OP_GET_MANY] = tkv__op_read,
    [TKV_OP_LIST] = tkv__op_read,        [TKV_OP_SET] = tkv__op_write,
    [TKV_OP_DELETE] = tkv__op_write,     [TKV_OP_ATOMIC] = tkv__op_write,
    [TKV_OP_STATUS] = tkv__op_status,    [TKV_OP_MEMBERS] = tkv__op_members,
    [TKV_OP_MEMBER_ADD] = tkv__op_admin, [TKV_OP_MEMBER_REMOVE] = tkv__op_admin,
    [TKV_OP_TRANSFER] = tkv__op_admin,   [TKV_OP_CONFIRM] = tkv__op_confirm,
};

void tkv_dispatch(struct tkv_server *s, struct tkv_request *r)
{
    tkv_op_fn fn = NULL;
    if (r->req.op > TKV_OP_NONE && r->req.op < TKV_OP__COUNT) {
        fn = tkv__ops[r->req.op];
    }
    if (fn == NULL) {
        tkv_server_reply_error(r, TKV_EINVALID, "unknown op");
        return;
    }
    fn(s, r);
}
