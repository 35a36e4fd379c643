/* TTL cache, the seed's weather example: look in the cache first; on a
 * miss "fetch" (here: compute) and store with ttlInSeconds so the entry
 * expires by itself. Uses a 1 s TTL so the run shows the expiry. */
#include <stdio.h>
#include <time.h>

#include "tuplekv.h"

static int fetches;

static json_t *weather(struct tkv_client *kv,
                       const char *city,
                       const char **source)
{
    struct tkv_err err;
    struct tkv_item *cached = NULL;
    json_t *key = json_pack("[sss]", "cache", "weather", city);
    json_t *data;

    if (tkv_get(kv, key, NULL, &cached, &err) != 0) {
        fprintf(stderr, "get: %s\n", err.msg);
        json_decref(key);
        return NULL;
    }
    if (cached != NULL) {
        data = json_incref(cached->value);
        tkv_item_free(cached);
        *source = "cache";
    } else {
        fetches++; /* the expensive call of the seed's example */
        data = json_pack("{sssf}", "city", city, "temp", 11.5);
        if (tkv_set(kv, key, data, 1 /* ttlInSeconds */, NULL, NULL, &err) !=
            0) {
            fprintf(stderr, "set: %s\n", err.msg);
        }
        *source = "api";
    }
    json_decref(key);
    return data;
}

int main(void)
{
    struct tkv_client *kv;
    struct tkv_err err;
    const char *src = NULL;
    struct timespec pause = {0, 200 * 1000000L};
    json_t *d;
    int i;

    if (tkv_connect(NULL, &kv, &err) != 0) {
        fprintf(stderr, "connect: %s\n", err.msg);
        return 1;
    }
    d = weather(kv, "london", &src);
    printf("london from %s\n", src);
    json_decref(d);
    d = weather(kv, "london", &src);
    printf("london from %s\n", src);
    json_decref(d);
    if (fetches != 1) {
        fprintf(stderr, "second read should hit the cache\n");
        return 1;
    }
    /* after the TTL the entry is gone and is fetched again */
    for (i = 0; i < 30 && fetches == 1; i++) {
        nanosleep(&pause, NULL);
        d = weather(kv, "london", &src);
        json_decref(d);
    }
    printf("london from %s after the TTL\n", src);
    tkv_close(kv);
    return fetches == 2 ? 0 : 1;
}
