/* Internals of libtuplekv shared by its modules (not installed).
 *
 * A call is one request the user made: encoded once into a frame in the
 * calling thread (call.c), handed to the client's I/O thread through a
 * mutex-protected queue and a uv_async_t (io.c), sent on the connection of
 * the endpoint believed to be the leader, possibly re-sent elsewhere after a
 * redirect or a lost connection, and finished exactly once: with the node's
 * reply, or with an error when its deadline passes. Finishing runs the
 * call's done function on the I/O thread, which either runs the user's
 * async callback (then frees the call) or wakes the thread blocked in a
 * synchronous call (which then builds the result and frees the call).
 *
 * Modules:
 *   client.h  this: structs shared by the modules
 *   io.c      the I/O thread: loop, endpoints, connections, frames,
 *             dispatch, redirects, retries, deadlines
 *   call.c    building calls (validation, encoding, session sequence
 *             numbers) and turning replies into tkv_response / items
 *   ops.c     the public get/set/... functions, sync and async
 *   txn.c     atomic batches and transactions */
#ifndef TKV_CLIENT_H
#define TKV_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "../common/addr.h"
#include "../common/buf.h"
#include "../common/error.h"
#include "../proto/proto.h"
#include "tuplekv.h"

/* At most this many writes may be unanswered at once: the node remembers
 * 1024 results per session, so a retry of the oldest one still finds its
 * result. */
#define TKV__SEQ_WINDOW 1000

/* Intrusive doubly linked list (circular, with a head sentinel). */
struct tkv__link {
    struct tkv__link *next;
    struct tkv__link *prev;
};

#define TKV__CONTAINER(ptr, type, member) \
    ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void tkv__list_init(struct tkv__link *h)
{
    h->next = h;
    h->prev = h;
}
static inline int tkv__list_empty(const struct tkv__link *h)
{
    return h->next == h;
}
static inline void tkv__list_push(struct tkv__link *h, struct tkv__link *l)
{
    l->prev = h->prev;
    l->next = h;
    h->prev->next = l;
    h->prev = l;
}
static inline void tkv__list_remove(struct tkv__link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l;
    l->prev = l;
}

/* How a call may be retried. */
enum tkv__kind {
    TKV__READ = 0, /* no effect: retry freely */
    TKV__WRITE,    /* deduplicated by (session, seq): retry freely, but
                      an attempt that may have been applied turns a
                      timeout into TKV_EUNKNOWN */
    TKV__ADMIN,    /* membership change, not deduplicated: retried only
                      after answers that prove it was not applied */
};

/* Where a call is, seen from the I/O thread. */
enum tkv__where {
    TKV__QUEUED = 0, /* in the submit queue */
    TKV__WAITING,    /* waiting for a connection */
    TKV__DELAYED,    /* backing off until retry_at */
    TKV__INFLIGHT,   /* sent on conn, waiting for the reply */
    TKV__DONE,
};

struct tkv__conn;
struct tkv__endpoint;
struct tkv__call;

typedef void (*tkv__done_fn)(struct tkv__call *call);

struct tkv__call {
    struct tkv_client *client;
    uint64_t id;
    int op; /* enum tkv_op */
    enum tkv__kind kind;
    uint64_t seq;   /* WRITE: its sequence number */
    uint8_t *frame; /* owned: the whole encoded request frame */
    size_t frame_len;
    uint64_t deadline;         /* ms on the monotonic clock */
    struct tkv__endpoint *pin; /* send only there, no retries; or NULL */
    char *pin_addr;            /* owned: address to pin to, resolved by io */

    /* I/O thread state */
    enum tkv__where where;
    struct tkv__link q;      /* in waiting, delayed or conn->inflight */
    struct tkv__link all;    /* in client->all (every unfinished call) */
    struct tkv__call *hnext; /* id hash chain */
    struct tkv__conn *conn;  /* INFLIGHT: the connection */
    uint64_t sent_at;
    uint64_t retry_at;
    unsigned attempts;
    unsigned redirects;
    int maybe_applied; /* an attempt ended without a clear answer */
    int ever_sent;
    char last_error[200]; /* why the last attempt failed */

    /* result, valid once done */
    int rc;
    struct tkv_err err;
    uint8_t *payload;       /* owned: reply payload, reply points in it */
    struct tkv_reply reply; /* decoded when payload != NULL */
    int have_reply;

    /* completion */
    tkv__done_fn done;
    tkv_done_cb cb; /* async */
    void *arg;
    pthread_mutex_t mu; /* sync: waiter */
    pthread_cond_t cv;
    int finished;
};

struct tkv_client {
    /* fixed at connect */
    int timeout_ms;
    int connect_timeout_ms;
    int max_inflight;
    int txn_attempts;
    enum tkv_consistency consistency;
    uint64_t session;

    /* I/O thread */
    uv_loop_t loop;
    uv_async_t wake;
    /* calls submitted on the I/O thread itself (from a callback) are taken
     * at the start of the next loop turn: no eventfd write and read */
    uv_idle_t kick;
    uv_timer_t tick;
    uv_thread_t thread;

    /* submit queue, any thread -> I/O thread */
    pthread_mutex_t qmu;
    struct tkv__link queue;
    int stopping;

    atomic_uint_fast64_t next_id;
    atomic_int inflight; /* submitted, not yet finished */

    /* write sequence window: seq_low is the lowest unanswered seq, the ack
     * sent with every write */
    pthread_mutex_t seq_mu;
    pthread_cond_t seq_cv;
    uint64_t seq_next;
    uint64_t seq_low;
    uint8_t seq_done[TKV__SEQ_WINDOW];

    /* I/O thread only */
    struct tkv__endpoint **eps; /* owned: known endpoints, config first */
    size_t neps;
    size_t neps_config; /* how many came from the configuration */
    size_t current;     /* where calls go */
    struct tkv__link waiting;
    struct tkv__link delayed;
    struct tkv__link all;
    struct tkv__call **buckets; /* owned: id hash */
    size_t nbuckets;
    size_t ncalls;
    uint64_t rng;
    int tick_active;
};

/* Monotonic milliseconds. */
uint64_t tkv__now_ms(void);

/* Random 64-bit number (getrandom, else a clock-seeded mix). */
uint64_t tkv__random64(void);

/* io.c */
int tkv__io_start(struct tkv_client *c,
                  const char *endpoints,
                  struct tkv_err *err);
void tkv__io_stop(struct tkv_client *c);
/* Hand a built call to the I/O thread. Never fails. */
void tkv__io_submit(struct tkv_client *c, struct tkv__call *call);
/* 1 when running on c's I/O thread. */
int tkv__io_on_thread(const struct tkv_client *c);

/* call.c */

/* A new call for req (whose keys/values are already encoded), with its
 * kind, opts and frame. For writes a sequence number is taken (waiting for
 * room in the window when `wait`, else TKV_EBUSY). */
int tkv__call_new(struct tkv_client *c,
                  struct tkv_req *req,
                  enum tkv__kind kind,
                  const struct tkv_opts *opts,
                  int wait,
                  struct tkv__call **out,
                  struct tkv_err *err);
void tkv__call_free(struct tkv__call *call);
/* Release a write's sequence number (the reply came or we gave up). */
void tkv__seq_release(struct tkv_client *c, uint64_t seq);

/* Run a call synchronously: submit, wait, return call->rc (with err
 * filled). The caller still owns the call and frees it. */
int tkv__call_run(struct tkv__call *call, struct tkv_err *err);
/* Submit asynchronously: cb runs on the I/O thread. Takes the call. */
void tkv__call_start_async(struct tkv__call *call, tkv_done_cb cb, void *arg);

/* Build the user's response from a finished call's reply. */
int tkv__response_build(struct tkv__call *call,
                        struct tkv_response *res,
                        struct tkv_err *err);
void tkv__response_clear(struct tkv_response *res);

/* Reply entries -> items. */
struct tkv_item *tkv__item_from_entry(const struct tkv_entry_ref *e,
                                      struct tkv_err *err);
/* msgpack value bytes -> new json reference. */
json_t *tkv__value_to_json(const uint8_t *v, size_t len, struct tkv_err *err);
/* ttl seconds -> ms; 0 or TKV_EINVALID. */
int tkv__ttl_ms(double ttl_seconds,
                uint64_t *ms /* OUT */,
                struct tkv_err *err);
/* Read options: consistency and timeout. */
int tkv__eventual(const struct tkv_client *c, const struct tkv_opts *opts);

#endif /* TKV_CLIENT_H */
