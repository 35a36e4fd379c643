/* set: unique adds, one final read after the faults heal.
 *
 * add n stores ["set", n] = n with tkv_set (n unique in the run). The
 * final read lists the prefix ["set"] page by page (after healing nothing
 * else writes, so the pages add up to one state). The checker wants every
 * acknowledged add in the final read and nothing that was never added. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "workload.h"

struct set {
    atomic_llong next;
};

static int setup(struct tkvj_run *r, struct tkv_client *c, void **state)
{
    struct set *s = calloc(1, sizeof *s);
    (void)r;
    (void)c;
    if (s == NULL) {
        return -1;
    }
    atomic_store(&s->next, 0);
    *state = s;
    return 0;
}

static void gen(void *state, struct tkvj_rng *rng, const char **f,
                json_t **value)
{
    struct set *s = state;
    (void)rng;
    *f = "add";
    *value = json_integer((json_int_t)atomic_fetch_add(&s->next, 1));
}

static enum tkvj_outcome read_all(struct tkvj_call *call)
{
    json_t *prefix = json_pack("[s]", "set");
    struct tkv_selector sel = {.prefix = prefix};
    struct tkv_list_opts lo = {.limit = 1000};
    json_t *elements = json_array();
    char *cursor = NULL;
    struct tkv_err err;
    int rc = 0;
    int pages = 0;

    do {
        struct tkv_page *page = NULL;
        size_t i;
        lo.cursor = cursor;
        rc = tkv_list(call->client, &sel, &lo, call->opts, &page, &err);
        free(cursor);
        cursor = NULL;
        if (rc != 0) {
            break;
        }
        for (i = 0; i < page->n; i++) {
            json_array_append(elements, page->items[i].value);
        }
        if (page->cursor != NULL) {
            cursor = strdup(page->cursor);
        }
        tkv_page_free(page);
        pages++;
    } while (cursor != NULL && pages < 100000);
    free(cursor);
    json_decref(prefix);
    if (rc != 0) {
        json_decref(elements);
        tkvj_call_error(call, rc, &err);
        return TKVJ_FAIL;
    }
    call->result = elements;
    return TKVJ_OK;
}

static enum tkvj_outcome invoke(void *state, struct tkvj_call *call)
{
    json_t *key;
    struct tkv_err err;
    int rc;
    (void)state;

    if (strcmp(call->f, "read") == 0) {
        return read_all(call);
    }
    key = json_pack("[sO]", "set", call->value);
    rc = tkv_set(call->client, key, call->value, 0, call->opts, NULL, &err);
    json_decref(key);
    if (rc != 0) {
        tkvj_call_error(call, rc, &err);
    }
    return tkvj_write_outcome(rc);
}

static json_t *final_ops(void *state)
{
    (void)state;
    return json_pack("[[sn]]", "read");
}

static void destroy(void *state)
{
    free(state);
}

const struct tkvj_workload tkvj_wl_set = {
    .name = "set",
    .setup = setup,
    .gen = gen,
    .invoke = invoke,
    .final_ops = final_ops,
    .options = NULL,
    .destroy = destroy,
};
