/* A map from byte strings to 64-bit values, for interning: JSON keys and
 * values of a history are turned into small dense ids by their canonical
 * text (tkv_hvalue_canon), so the checkers compare integers.
 *
 * Open addressing with linear probing; the keys are copied into an arena the
 * map owns. Iteration order is never used by the checkers (results must not
 * depend on hash order), so there is no iterator. */
#ifndef TKV_JEPSEN_STRMAP_H
#define TKV_JEPSEN_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/arena.h"

struct tkv_strmap_slot {
    const void *key; /* in the arena; NULL for an empty slot */
    size_t klen;
    uint64_t hash;
    uint64_t value;
};

struct tkv_strmap {
    struct tkv_strmap_slot *slots; /* owned */
    size_t cap;                    /* a power of two, or 0 */
    size_t len;
    struct tkv_arena keys; /* owned; the map must not be moved after init */
};

void tkv_strmap_init(struct tkv_strmap *m);
void tkv_strmap_close(struct tkv_strmap *m);

/* The value slot of `key`, or NULL when absent. Valid until the next put. */
uint64_t *tkv_strmap_get(const struct tkv_strmap *m,
                         const void *key,
                         size_t klen);

/* Find or insert `key`. A new key gets `init` and *inserted = 1 (when
 * inserted is not NULL). Returns the value slot, valid until the next put,
 * or NULL when out of memory (the map is unchanged). */
uint64_t *tkv_strmap_put(struct tkv_strmap *m,
                         const void *key,
                         size_t klen,
                         uint64_t init,
                         int *inserted /* OUT */);

/* Intern: the id of `key`, a new key getting the next id (0, 1, 2, ...).
 * Returns the id, or -1 when out of memory. */
int64_t tkv_strmap_intern(struct tkv_strmap *m, const void *key, size_t klen);

#endif /* TKV_JEPSEN_STRMAP_H */
