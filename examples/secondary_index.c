/* Secondary index by email, the seed's data-modeling example: one
 * transaction writes the user under ["users", id] and a reference under
 * ["usersByEmail", email]; a lookup by email goes through the index. */
#include <stdio.h>
#include <string.h>

#include "tuplekv.h"

struct user {
    const char *id;
    const char *email;
    const char *name;
};

static int create_fn(struct tkv_txn *tx, void *arg)
{
    struct user *u = arg;
    struct tkv_err err;
    json_t *k1 = json_pack("[ss]", "users", u->id);
    json_t *k2 = json_pack("[ss]", "usersByEmail", u->email);
    json_t *v1 =
        json_pack("{ssssss}", "id", u->id, "email", u->email, "name", u->name);
    json_t *v2 = json_pack("{ss}", "id", u->id);
    int rv = tkv_txn_set(tx, k1, v1, 0, &err);
    if (rv == 0) {
        rv = tkv_txn_set(tx, k2, v2, 0, &err);
    }
    json_decref(k1);
    json_decref(k2);
    json_decref(v1);
    json_decref(v2);
    return rv;
}

int main(void)
{
    struct tkv_client *kv;
    struct tkv_err err;
    struct user u = {"3f2a9c", "john@example.com", "John Doe"};
    struct tkv_item *ref = NULL;
    struct tkv_item *user = NULL;
    json_t *k;

    if (tkv_connect(NULL, &kv, &err) != 0 ||
        tkv_transaction(kv, create_fn, &u, NULL, NULL, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* GET /api/users/by-email/:email */
    k = json_pack("[ss]", "usersByEmail", "john@example.com");
    if (tkv_get(kv, k, NULL, &ref, &err) != 0 || ref == NULL) {
        fprintf(stderr, "User not found\n");
        return 1;
    }
    json_decref(k);
    k = json_pack("[sO]", "users", json_object_get(ref->value, "id"));
    if (tkv_get(kv, k, NULL, &user, &err) != 0 || user == NULL) {
        fprintf(stderr, "user record missing\n");
        return 1;
    }
    printf("john@example.com -> %s\n",
           json_string_value(json_object_get(user->value, "name")));
    json_decref(k);
    tkv_item_free(ref);
    tkv_item_free(user);
    tkv_close(kv);
    return 0;
}
