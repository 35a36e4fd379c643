/* Notes CRUD, the seed's first example: create a note under
 * ["notes", id], read it back, update it, list all notes with their total,
 * delete one and see it gone. Endpoints from $TUPLEKV_ENDPOINTS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tuplekv.h"

static int check(int rv, const struct tkv_err *err, const char *what)
{
    if (rv != 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, err->msg, tkv_errname(rv));
        exit(1);
    }
    return rv;
}

int main(void)
{
    struct tkv_client *kv;
    struct tkv_err err;
    struct tkv_item *note = NULL;
    struct tkv_page *page = NULL;
    struct tkv_selector sel = {0};
    json_t *key = json_pack("[ss]", "notes", "meeting-notes-001");
    json_t *value = json_pack("{ssss}", "title", "Meeting notes", "content",
                              "Discuss Q1 roadmap");
    size_t i;

    check(tkv_connect(NULL, &kv, &err), &err, "connect");

    /* POST /api/notes */
    check(tkv_set(kv, key, value, 0, NULL, NULL, &err), &err, "set");
    /* GET /api/notes/:id */
    check(tkv_get(kv, key, NULL, &note, &err), &err, "get");
    if (note == NULL) {
        fprintf(stderr, "Note not found\n");
        return 1;
    }
    printf("note: %s\n",
           json_string_value(json_object_get(note->value, "title")));
    tkv_item_free(note);
    /* PUT /api/notes/:id */
    json_object_set_new(value, "content", json_string("Roadmap agreed"));
    check(tkv_set(kv, key, value, 0, NULL, NULL, &err), &err, "update");
    /* GET /api/notes */
    sel.prefix = json_pack("[s]", "notes");
    check(tkv_list(kv, &sel, NULL, NULL, &page, &err), &err, "list");
    printf("%llu note(s)\n", (unsigned long long)page->total);
    for (i = 0; i < page->n; i++) {
        printf("  %s: %s\n",
               json_string_value(json_array_get(page->items[i].key, 1)),
               json_string_value(
                   json_object_get(page->items[i].value, "content")));
    }
    tkv_page_free(page);
    /* DELETE /api/notes/:id */
    check(tkv_delete(kv, key, NULL, &err), &err, "delete");
    check(tkv_get(kv, key, NULL, &note, &err), &err, "get after delete");
    if (note != NULL) {
        fprintf(stderr, "note still there after delete\n");
        return 1;
    }
    printf("deleted\n");
    json_decref((json_t *)sel.prefix);
    json_decref(key);
    json_decref(value);
    tkv_close(kv);
    return 0;
}
