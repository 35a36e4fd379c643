/* Test driver for the state machine: builds real log entries from JSON
 * text (keys and values as a user writes them), applies them at increasing
 * raft indexes, and renders query results back as compact JSON text so
 * tests compare with the seed's expected output directly. */
#ifndef TKV_TEST_SMTEST_H
#define TKV_TEST_SMTEST_H

#include <stdint.h>

#include "statemachine/sm.h"

struct smt {
    struct tkv_sm sm;
    uint64_t index; /* raft index of the last applied entry */
    int64_t ts;     /* timestamp stamped on the next entry */
};

void smt_init(struct smt *t);
void smt_close(struct smt *t);

/* Encode a key given as JSON text; asserts it is valid. */
size_t smt_key(const char *json, uint8_t out[TKV_KEY_MAX]);

/* One entry holding one command; returns the result (asserts the entry
 * applied). session 0 = no session. */
struct tkv_result smt_set(struct smt *t, const char *key, const char *value,
                          uint64_t ttl_ms);
struct tkv_result smt_set_s(struct smt *t, const char *key, const char *value,
                            uint64_t ttl_ms, uint64_t session, uint64_t seq,
                            uint64_t ack);
struct tkv_result smt_del(struct smt *t, const char *key);
void smt_tick(struct smt *t, int64_t ts);

/* Apply an already built command as one entry. */
struct tkv_result smt_apply_cmd(struct smt *t, const struct tkv_cmd *c);

/* get: returns the value as compact JSON (caller frees) or NULL. */
char *smt_get(struct smt *t, const char *key, uint64_t *version /* OUT */);

/* list: selector parts as JSON text or NULL. Returns 0 or the error code;
 * *keys gets the returned keys as a compact JSON array text (caller
 * frees), *total and cursor (may be "") as the result says. */
int smt_list(struct smt *t, const char *prefix, const char *start,
             const char *end, int64_t limit, int reverse, const char *cursor,
             char **keys, size_t *total, char cursor_out[TKV_CURSOR_MAX]);

#endif
