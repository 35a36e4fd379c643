/* Pagination with cursor and total: 25 items ["pages", "item-NNN"] (ids
 * zero-padded so string order is numeric order, as the seed advises), read
 * 10 per page, following the cursor until it is NULL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplekv.h"

int main(void)
{
    struct tkv_client *kv;
    struct tkv_err err;
    struct tkv_selector sel = {0};
    struct tkv_list_opts opts = {0};
    char *cursor = NULL;
    size_t seen = 0;
    int page_no = 0;
    int i;

    if (tkv_connect(NULL, &kv, &err) != 0) {
        fprintf(stderr, "connect: %s\n", err.msg);
        return 1;
    }
    for (i = 1; i <= 25; i++) {
        char id[16];
        json_t *key;
        json_t *value;
        snprintf(id, sizeof id, "item-%03d", i);
        key = json_pack("[ss]", "pages", id);
        value = json_pack("{si}", "n", i);
        if (tkv_set(kv, key, value, 0, NULL, NULL, &err) != 0) {
            fprintf(stderr, "set: %s\n", err.msg);
            return 1;
        }
        json_decref(key);
        json_decref(value);
    }
    sel.prefix = json_pack("[s]", "pages");
    opts.limit = 10;
    do {
        struct tkv_page *page = NULL;
        opts.cursor = cursor;
        if (tkv_list(kv, &sel, &opts, NULL, &page, &err) != 0) {
            fprintf(stderr, "list: %s\n", err.msg);
            return 1;
        }
        page_no++;
        printf("page %d: %zu of %llu, first %s, hasMore %s\n", page_no, page->n,
               (unsigned long long)page->total,
               page->n > 0
                   ? json_string_value(json_array_get(page->items[0].key, 1))
                   : "-",
               page->cursor != NULL ? "true" : "false");
        seen += page->n;
        free(cursor);
        cursor = page->cursor;
        page->cursor = NULL; /* keep it: the page is freed */
        tkv_page_free(page);
    } while (cursor != NULL);
    json_decref((json_t *)sel.prefix);
    tkv_close(kv);
    if (seen != 25 || page_no != 3) {
        fprintf(stderr, "expected 25 items on 3 pages, got %zu on %d\n", seen,
                page_no);
        return 1;
    }
    return 0;
}
