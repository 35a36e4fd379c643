/* Byte-string map with open addressing (see strmap.h). */
#include "strmap.h"

#include <string.h>

#include "../../common/alloc.h"
#include "../../common/hash.h"

#define SEED 0x6a65707365ull /* "jepse" */

void tkv_strmap_init(struct tkv_strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->len = 0;
    tkv_arena_init(&m->keys);
}

void tkv_strmap_close(struct tkv_strmap *m)
{
    tkv_free(m->slots);
    tkv_arena_close(&m->keys);
    m->slots = NULL;
    m->cap = 0;
    m->len = 0;
}

static struct tkv_strmap_slot *find(const struct tkv_strmap *m,
                                    const void *key,
                                    size_t klen,
                                    uint64_t hash)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)hash & mask;

    for (;;) {
        struct tkv_strmap_slot *s = &m->slots[i];
        if (s->key == NULL) {
            return s;
        }
        if (s->hash == hash && s->klen == klen &&
            memcmp(s->key, key, klen) == 0) {
            return s;
        }
        i = (i + 1) & mask;
    }
}

uint64_t *tkv_strmap_get(const struct tkv_strmap *m,
                         const void *key,
                         size_t klen)
{
    struct tkv_strmap_slot *s;

    if (m->cap == 0) {
        return NULL;
    }
    s = find(m, key, klen, tkv_hash64(SEED, key, klen));
    return s->key != NULL ? &s->value : NULL;
}

static int grow(struct tkv_strmap *m)
{
    size_t cap = m->cap == 0 ? 64 : m->cap * 2;
    struct tkv_strmap_slot *old = m->slots;
    size_t oldcap = m->cap;
    size_t i;

    m->slots = tkv_calloc(cap, sizeof *m->slots);
    if (m->slots == NULL) {
        m->slots = old;
        return -1;
    }
    m->cap = cap;
    for (i = 0; i < oldcap; i++) {
        if (old[i].key != NULL) {
            *find(m, old[i].key, old[i].klen, old[i].hash) = old[i];
        }
    }
    tkv_free(old);
    return 0;
}

uint64_t *tkv_strmap_put(struct tkv_strmap *m,
                         const void *key,
                         size_t klen,
                         uint64_t init,
                         int *inserted)
{
    uint64_t hash = tkv_hash64(SEED, key, klen);
    struct tkv_strmap_slot *s;
    void *copy;

    if (inserted != NULL) {
        *inserted = 0;
    }
    if (m->cap > 0) {
        s = find(m, key, klen, hash);
        if (s->key != NULL) {
            return &s->value;
        }
    }
    /* keep the load factor under 1/2 */
    if ((m->len + 1) * 2 > m->cap && grow(m) != 0) {
        return NULL;
    }
    copy = tkv_arena_memdup(&m->keys, key, klen);
    if (copy == NULL) {
        return NULL;
    }
    s = find(m, key, klen, hash);
    s->key = copy;
    s->klen = klen;
    s->hash = hash;
    s->value = init;
    m->len++;
    if (inserted != NULL) {
        *inserted = 1;
    }
    return &s->value;
}

int64_t tkv_strmap_intern(struct tkv_strmap *m, const void *key, size_t klen)
{
    uint64_t *v = tkv_strmap_put(m, key, klen, (uint64_t)m->len, NULL);
    return v == NULL ? -1 : (int64_t)*v;
}
