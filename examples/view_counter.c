/* View counter, the seed's counters example: each view increments
 * ["views", id] in a transaction, so concurrent views never lose a count.
 * Four threads count 25 views each; the counter ends at (start + 100). */
#include <pthread.h>
#include <stdio.h>

#include "tuplekv.h"

static struct tkv_client *kv;
static json_t *key;

static int view_fn(struct tkv_txn *tx, void *arg)
{
    json_int_t *count = arg;
    struct tkv_item *current = NULL;
    struct tkv_err err;
    json_t *v;
    int rv = tkv_txn_get(tx, key, &current, &err);
    if (rv != 0) {
        return rv;
    }
    *count = 1;
    if (current != NULL) {
        *count += json_integer_value(json_object_get(current->value, "count"));
        tkv_item_free(current);
    }
    v = json_pack("{sI}", "count", *count);
    rv = tkv_txn_set(tx, key, v, 0, &err);
    json_decref(v);
    return rv;
}

static json_int_t views(void)
{
    struct tkv_item *it = NULL;
    struct tkv_err err;
    json_int_t n = 0;
    if (tkv_get(kv, key, NULL, &it, &err) == 0 && it != NULL) {
        n = json_integer_value(json_object_get(it->value, "count"));
    }
    tkv_item_free(it);
    return n;
}

static void *viewer(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < 25; i++) {
        json_int_t n;
        struct tkv_err err;
        if (tkv_transaction(kv, view_fn, &n, NULL, NULL, &err) != 0) {
            fprintf(stderr, "view: %s\n", err.msg);
        }
    }
    return NULL;
}

int main(void)
{
    struct tkv_err err;
    pthread_t t[4];
    json_int_t before;
    json_int_t after;
    int i;

    if (tkv_connect(NULL, &kv, &err) != 0) {
        fprintf(stderr, "connect: %s\n", err.msg);
        return 1;
    }
    key = json_pack("[ss]", "views", "my-article");
    before = views();
    for (i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, viewer, NULL);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    after = views();
    printf("views: %lld -> %lld\n", (long long)before, (long long)after);
    json_decref(key);
    tkv_close(kv);
    return after == before + 100 ? 0 : 1;
}
