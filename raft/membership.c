/* Membership changes and the members' client addresses.
 *
 * add:      raft_add (joins as spare) -> raft_assign(VOTER) (raft catches
 *           the node up first) -> MEMBER_SET entry with its client address
 *           -> done. An id already present with the same raft address is
 *           resumed where it stands (a node whose data was wiped rejoins).
 * remove:   raft_remove -> MEMBER_DEL entry -> done. Removing the leader
 *           itself first hands leadership over and answers NOT_LEADER, so
 *           the client retries on the new leader.
 * transfer: raft_transfer -> done when a new leader is known, else TIMEOUT.
 * One change at a time (raft allows a single uncommitted configuration);
 * another request meanwhile gets BUSY.
 *
 * Client addresses are replicated state (TKV_CMD_MEMBER_SET): when a node
 * becomes leader and its first barrier is applied (so its state is
 * current), tkv__members_leader_sync() records its own address and those of
 * the --bootstrap list that the state does not hold yet. */
#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "glue.h"
#include "../common/log.h"

static const struct raft_server *tkv__conf_get(struct tkv_replica *r,
                                               uint64_t id)
{
    unsigned i;
    for (i = 0; i < r->raft.configuration.n; i++) {
        if (r->raft.configuration.servers[i].id == id) {
            return &r->raft.configuration.servers[i];
        }
    }
    return NULL;
}

raft_index tkv__config_unstick(struct raft *raft)
{
    raft_index x = raft->configuration_uncommitted_index;
    struct raft_configuration copy;
    unsigned i;

    if (raft_state(raft) != RAFT_LEADER || x == 0 ||
        x > raft_last_applied(raft) || raft->leader_state.promotee_id != 0) {
        return 0;
    }
    /* While x is uncommitted, raft->configuration is the one of entry x. */
    raft_configuration_init(&copy);
    for (i = 0; i < raft->configuration.n; i++) {
        const struct raft_server *s = &raft->configuration.servers[i];
        if (raft_configuration_add(&copy, s->id, s->address, s->role) != 0) {
            raft_configuration_close(&copy);
            return 0;
        }
    }
    raft_configuration_close(&raft->configuration_committed);
    raft->configuration_committed = copy;
    raft->configuration_committed_index = x;
    raft->configuration_uncommitted_index = 0;
    return x;
}

static int tkv__change_check(struct tkv_replica *r, struct tkv_err *err)
{
    raft_index stale;

    if (r->closing) {
        return tkv_err_set(err, TKV_ESHUTDOWN, "node is shutting down");
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        return tkv_err_set(err, TKV_ENOT_LEADER, "not the leader");
    }
    if (r->change != NULL) {
        return tkv_err_set(err, TKV_EBUSY,
                           "another membership change is in progress");
    }
    stale = tkv__config_unstick(&r->raft);
    if (stale != 0) {
        tkv_log_warn("membership: raft still had the configuration at %llu "
                     "as uncommitted, with %llu applied: marked it "
                     "committed (raft 0.22 leaves this marker behind, and "
                     "would refuse every change)",
                     (unsigned long long)stale,
                     (unsigned long long)raft_last_applied(&r->raft));
    }
    return 0;
}

static struct tkv__change *tkv__change_new(struct tkv_replica *r,
                                           int kind,
                                           uint64_t id,
                                           tkv_done_cb cb,
                                           void *data)
{
    struct tkv__change *c = tkv_calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->rep = r;
    c->kind = kind;
    c->id = id;
    c->cb = cb;
    c->data = data;
    c->change.data = c;
    c->transfer.data = c;
    return c;
}

static void tkv__change_done(struct tkv__change *c, int code, const char *msg)
{
    static const char *const kinds[] = {"", "add", "remove", "transfer"};
    struct tkv_replica *r = c->rep;
    char unknown[320];

    /* Once raft accepted a configuration change (raft_add, raft_remove or
     * raft_assign returned 0), its entry may be in the log, and may be
     * committed by the next leader even though this one lost leadership or
     * shut down before learning the outcome. Membership changes are not
     * deduplicated, so a "retry elsewhere" answer (NOT_LEADER, UNAVAILABLE,
     * SHUTDOWN) would be a lie: the outcome is unknown (client/tuplekv.h). */
    if (c->accepted && c->kind != TKV__CHANGE_TRANSFER &&
        (code == TKV_ENOT_LEADER || code == TKV_EUNAVAILABLE ||
         code == TKV_ESHUTDOWN || code == TKV_ETIMEOUT)) {
        snprintf(unknown, sizeof unknown,
                 "outcome unknown: %s after the membership change was "
                 "proposed; it may or may not be applied (check members)",
                 msg != NULL && msg[0] != '\0' ? msg : tkv_errname(code));
        code = TKV_EUNKNOWN;
        msg = unknown;
    }
    r->change = NULL;
    if (code == 0) {
        tkv_log_info("membership: %s %llu done", kinds[c->kind],
                     (unsigned long long)c->id);
    } else {
        tkv_log_warn("membership: %s %llu failed: %s (%s)", kinds[c->kind],
                     (unsigned long long)c->id, tkv_errname(code), msg);
    }
    if (c->cb != NULL) {
        c->cb(c->data, code, msg);
    }
    tkv_free(c);
}

/* raft refused a change because "one is in progress" while we have none
 * of our own running: say what raft's own markers are, so a stuck
 * membership can be told apart (seen once under jepsen's member nemesis:
 * a new leader refusing every change for 90 s). */
static void tkv__log_cantchange(struct tkv_replica *r, int rv)
{
    if (rv != RAFT_CANTCHANGE) {
        return;
    }
    tkv_log_warn("membership: raft refuses changes: configuration committed "
                 "at %llu, uncommitted at %llu; commit %llu, applied %llu, "
                 "last index %llu, term %llu",
                 (unsigned long long)r->raft.configuration_committed_index,
                 (unsigned long long)r->raft.configuration_uncommitted_index,
                 (unsigned long long)raft_commit_index(&r->raft),
                 (unsigned long long)raft_last_applied(&r->raft),
                 (unsigned long long)raft_last_index(&r->raft),
                 (unsigned long long)raft_current_term(&r->raft));
}

static void tkv__change_fail_raft(struct tkv__change *c, int status)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", raft_strerror(status));
    /* LEADERSHIPLOST: NOT_LEADER when raft had accepted nothing yet (so
     * the client retries on the new leader), else UNKNOWN (change_done). */
    tkv__change_done(c,
                     status == RAFT_LEADERSHIPLOST ? TKV_ENOT_LEADER
                                                   : tkv__raft_code(status),
                     msg);
}

/* ---- add ----------------------------------------------------------------- */

static void tkv__addr_set_cb(void *data, int code, const struct tkv_result *res)
{
    struct tkv__change *c = data;
    if (code == 0 && res != NULL && res->code != 0) {
        code = res->code;
    }
    tkv__change_done(c, code, code == 0 ? "" : tkv_strerror(code));
}

static void tkv__add_set_addr(struct tkv__change *c)
{
    struct tkv_cmd cmd;
    int rv;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = TKV_CMD_MEMBER_SET;
    cmd.member_id = c->id;
    cmd.addr = c->client_address;
    cmd.addrlen = (uint16_t)strlen(c->client_address);
    rv = tkv__write_internal(c->rep, &cmd, tkv__addr_set_cb, c);
    if (rv != 0) {
        tkv__change_done(c, rv, "record client address");
    }
}

static void tkv__assign_cb(struct raft_change *req, int status)
{
    struct tkv__change *c = req->data;
    if (status != 0) {
        tkv__change_fail_raft(c, status);
        return;
    }
    tkv_log_info("membership: %llu is now a voter", (unsigned long long)c->id);
    tkv__add_set_addr(c);
}

static void tkv__promote(struct tkv__change *c)
{
    int rv = raft_assign(&c->rep->raft, &c->change, c->id, RAFT_VOTER,
                         tkv__assign_cb);
    if (rv != 0) {
        tkv__log_cantchange(c->rep, rv);
        tkv__change_fail_raft(c, rv);
        return;
    }
    c->accepted = 1;
}

static void tkv__add_cb(struct raft_change *req, int status)
{
    struct tkv__change *c = req->data;
    if (status != 0) {
        tkv__change_fail_raft(c, status);
        return;
    }
    tkv_log_info("membership: %llu added as spare, catching up",
                 (unsigned long long)c->id);
    tkv__promote(c);
}

int tkv_replica_member_add(struct tkv_replica *r,
                           uint64_t id,
                           const char *raft_address,
                           const char *client_address,
                           tkv_done_cb cb,
                           void *data,
                           struct tkv_err *err)
{
    const struct raft_server *s;
    struct tkv__change *c;
    unsigned i;
    int rv;

    rv = tkv__change_check(r, err);
    if (rv != 0) {
        return rv;
    }
    if (id == 0 || strlen(raft_address) == 0 ||
        strlen(raft_address) > TKV_ADDR_MAX || strlen(client_address) == 0 ||
        strlen(client_address) > TKV_ADDR_MAX) {
        return tkv_err_set(err, TKV_EINVALID,
                           "member_add needs an id > 0 and two addresses "
                           "of 1..%d bytes",
                           TKV_ADDR_MAX);
    }
    s = tkv__conf_get(r, id);
    if (s != NULL && strcmp(s->address, raft_address) != 0) {
        return tkv_err_set(err, TKV_EINVALID,
                           "id %llu is already a member with raft address %s",
                           (unsigned long long)id, s->address);
    }
    for (i = 0; i < r->raft.configuration.n; i++) {
        const struct raft_server *o = &r->raft.configuration.servers[i];
        if (o->id != id && strcmp(o->address, raft_address) == 0) {
            return tkv_err_set(err, TKV_EINVALID,
                               "raft address %s is used by member %llu",
                               raft_address, (unsigned long long)o->id);
        }
    }
    c = tkv__change_new(r, TKV__CHANGE_ADD, id, cb, data);
    if (c == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    snprintf(c->raft_address, sizeof c->raft_address, "%s", raft_address);
    snprintf(c->client_address, sizeof c->client_address, "%s", client_address);
    r->change = c;
    tkv_log_info("membership: adding %llu (raft %s, client %s)",
                 (unsigned long long)id, raft_address, client_address);
    if (s != NULL) {
        /* Already a member (e.g. it lost its data and rejoins). */
        if (s->role == RAFT_VOTER) {
            tkv__add_set_addr(c);
        } else {
            tkv__promote(c);
        }
        return 0;
    }
    rv = raft_add(&r->raft, &c->change, id, c->raft_address, tkv__add_cb);
    if (rv != 0) {
        tkv__log_cantchange(r, rv);
        r->change = NULL;
        tkv_free(c);
        return tkv_err_set(err, tkv__raft_code(rv), "add member: %s",
                           raft_errmsg(&r->raft));
    }
    c->accepted = 1;
    return 0;
}

/* ---- remove -------------------------------------------------------------- */

static void tkv__addr_del_cb(void *data, int code, const struct tkv_result *res)
{
    struct tkv__change *c = data;
    (void)res;
    /* The member is out of the configuration already: forgetting its
     * address is cleanup, so its failure is not the client's failure. */
    if (code != 0) {
        tkv_log_warn("membership: forget address of %llu: %s",
                     (unsigned long long)c->id, tkv_strerror(code));
    }
    tkv__change_done(c, 0, "");
}

static void tkv__remove_cb(struct raft_change *req, int status)
{
    struct tkv__change *c = req->data;
    struct tkv_cmd cmd;
    int rv;

    if (status != 0) {
        tkv__change_fail_raft(c, status);
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = TKV_CMD_MEMBER_DEL;
    cmd.member_id = c->id;
    rv = raft_state(&c->rep->raft) == RAFT_LEADER
             ? tkv__write_internal(c->rep, &cmd, tkv__addr_del_cb, c)
             : TKV_ENOT_LEADER;
    if (rv != 0) {
        tkv__addr_del_cb(c, rv, NULL);
    }
}

static void tkv__transfer_cb(struct raft_transfer *req)
{
    struct tkv__change *c = req->data;
    struct tkv_replica *r = c->rep;
    raft_id lid = 0;
    const char *laddr = NULL;

    raft_leader(&r->raft, &lid, &laddr);
    if (lid != 0 && lid != r->id) {
        tkv_log_info("leadership transferred to %llu", (unsigned long long)lid);
        if (c->then_redirect) {
            tkv__change_done(c, TKV_ENOT_LEADER,
                             "leadership handed over before removing this "
                             "node; retry on the new leader");
        } else {
            tkv__change_done(c, 0, "");
        }
        return;
    }
    tkv__change_done(c, TKV_ETIMEOUT, "leadership transfer did not complete");
}

/* Strict reconfiguration, as etcd's --strict-reconfig-check: a voter is
 * removed only if a majority of the voters that stay are up: this node,
 * and followers heard from within an election timeout whose log is at most
 * TKV__REMOVE_LAG entries behind the commit index. Otherwise the smaller
 * configuration can be left with no electable leader: if its leader steps
 * down while a remaining voter is unreachable, that voter may still be a
 * spare in its own (older) log, and raft 0.22 spares never vote. Seen under
 * jepsen's member nemesis: a removal while a node was paused, then no
 * leader for good. */
#define TKV__REMOVE_LAG 1024

static int tkv__remove_check(struct tkv_replica *r,
                             uint64_t id,
                             struct tkv_err *err)
{
    raft_index commit = raft_commit_index(&r->raft);
    char down[128] = "";
    size_t dl = 0;
    unsigned i, stay = 0, up = 0;

    for (i = 0; i < r->raft.configuration.n; i++) {
        const struct raft_server *s = &r->raft.configuration.servers[i];
        raft_index match = 0;
        if (s->role != RAFT_VOTER || s->id == id) {
            continue;
        }
        stay++;
        if (s->id == r->id ||
            (tkv_snapgate_heard_ms(&r->gate, s->id) <= r->election_timeout_ms &&
             raft_match_index(&r->raft, s->id, &match) == 0 &&
             match + TKV__REMOVE_LAG >= commit)) {
            up++;
        } else if (dl < sizeof down) {
            dl += (size_t)snprintf(down + dl, sizeof down - dl, "%s%llu",
                                   dl > 0 ? ", " : "",
                                   (unsigned long long)s->id);
        }
    }
    if (up < stay / 2 + 1) {
        return tkv_err_set(err, TKV_EUNAVAILABLE,
                           "removing %llu would leave %u voter(s), of which "
                           "%u up to date, not a majority (not heard from "
                           "or behind: %s); retry once they are back",
                           (unsigned long long)id, stay, up,
                           dl > 0 ? down : "none");
    }
    return 0;
}

int tkv_replica_member_remove(struct tkv_replica *r,
                              uint64_t id,
                              tkv_done_cb cb,
                              void *data,
                              struct tkv_err *err)
{
    struct tkv__change *c;
    int rv;

    rv = tkv__change_check(r, err);
    if (rv != 0) {
        return rv;
    }
    if (tkv__conf_get(r, id) == NULL) {
        return tkv_err_set(err, TKV_ENOT_FOUND, "no member has id %llu",
                           (unsigned long long)id);
    }
    rv = tkv__remove_check(r, id, err);
    if (rv != 0) {
        return rv;
    }
    c = tkv__change_new(r, TKV__CHANGE_REMOVE, id, cb, data);
    if (c == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    r->change = c;
    if (id == r->id) {
        c->then_redirect = 1;
        tkv_log_info(
            "membership: removing the leader (%llu): transferring "
            "leadership first",
            (unsigned long long)id);
        rv = raft_transfer(&r->raft, &c->transfer, 0, tkv__transfer_cb);
    } else {
        tkv_log_info("membership: removing %llu", (unsigned long long)id);
        rv = raft_remove(&r->raft, &c->change, id, tkv__remove_cb);
        c->accepted = rv == 0;
    }
    if (rv != 0) {
        tkv__log_cantchange(r, rv);
        r->change = NULL;
        tkv_free(c);
        return tkv_err_set(err, tkv__raft_code(rv), "remove member: %s",
                           raft_errmsg(&r->raft));
    }
    return 0;
}

int tkv_replica_transfer(struct tkv_replica *r,
                         uint64_t id,
                         tkv_done_cb cb,
                         void *data,
                         struct tkv_err *err)
{
    struct tkv__change *c;
    int rv;

    rv = tkv__change_check(r, err);
    if (rv != 0) {
        return rv;
    }
    if (id == r->id) {
        return tkv_err_set(err, TKV_EINVALID, "%llu is the leader already",
                           (unsigned long long)id);
    }
    if (id != 0) {
        const struct raft_server *s = tkv__conf_get(r, id);
        if (s == NULL || s->role != RAFT_VOTER) {
            return tkv_err_set(err, TKV_EINVALID, "%llu is not a voter",
                               (unsigned long long)id);
        }
    }
    c = tkv__change_new(r, TKV__CHANGE_TRANSFER, id, cb, data);
    if (c == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    r->change = c;
    tkv_log_info("leadership transfer to %llu requested",
                 (unsigned long long)id);
    rv = raft_transfer(&r->raft, &c->transfer, id, tkv__transfer_cb);
    if (rv != 0) {
        r->change = NULL;
        tkv_free(c);
        return tkv_err_set(err, tkv__raft_code(rv), "transfer: %s",
                           raft_errmsg(&r->raft));
    }
    return 0;
}

/* ---- client addresses ---------------------------------------------------- */

static const char *tkv__known_addr(struct tkv_replica *r, uint64_t id)
{
    size_t i;
    if (id == r->id) {
        return r->client_address;
    }
    for (i = 0; i < r->nbootstrap; i++) {
        if (r->bootstrap[i].id == id) {
            return r->bootstrap[i].client_address;
        }
    }
    return NULL;
}

void tkv__members_leader_sync(struct tkv_replica *r)
{
    unsigned i;
    for (i = 0; i < r->raft.configuration.n; i++) {
        uint64_t id = r->raft.configuration.servers[i].id;
        const char *want = tkv__known_addr(r, id);
        const char *have = tkv_sm_member_addr(&r->fsm.sm, id);
        struct tkv_cmd cmd;
        if (want == NULL || (have != NULL && strcmp(have, want) == 0)) {
            continue;
        }
        memset(&cmd, 0, sizeof cmd);
        cmd.type = TKV_CMD_MEMBER_SET;
        cmd.member_id = id;
        cmd.addr = want;
        cmd.addrlen = (uint16_t)strlen(want);
        if (tkv__write_internal(r, &cmd, NULL, NULL) == 0) {
            tkv_log_info("recording client address of %llu: %s",
                         (unsigned long long)id, want);
        }
    }
}

size_t tkv_replica_members(struct tkv_replica *r,
                           struct tkv_replica_member *out,
                           size_t max)
{
    unsigned i;
    for (i = 0; i < r->raft.configuration.n && i < max; i++) {
        const struct raft_server *s = &r->raft.configuration.servers[i];
        out[i].id = s->id;
        out[i].raft_address = s->address;
        out[i].client_address = tkv_sm_member_addr(&r->fsm.sm, s->id);
        out[i].role = s->role == RAFT_VOTER     ? "voter"
                      : s->role == RAFT_STANDBY ? "standby"
                                                : "spare";
    }
    return r->raft.configuration.n;
}
