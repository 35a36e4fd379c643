/* The bank checker: transfers between accounts must conserve money.
 *
 * Every ok read is one snapshot of all balances. Each is checked alone:
 *   - its balances sum to the total (option "total", else the first ok
 *     read's sum): "wrong-total";
 *   - no balance is negative: "negative-balance";
 *   - every account is known (option "accounts", else the first ok read's
 *     accounts plus every transfer's from/to): "unknown-account".
 * Transfers are not replayed: whether one happened is exactly what a
 * snapshot read tells, and a read that disagrees with conservation is
 * wrong whatever the transfers were. Accounts are compared as strings, so
 * the numeric account 3 and the JSON object key "3" are one account. */
#include <string.h>

#include "../../common/buf.h"
#include "checker.h"
#include "strmap.h"

/* The name of an account as a string: strings as they are, anything else
 * by its canonical JSON text (3 -> "3"). */
static int account_name(const json_t *v, struct tkv_buf *out)
{
    tkv_buf_reset(out);
    if (json_is_string(v)) {
        return tkv_buf_append(out, json_string_value(v), json_string_length(v));
    }
    return tkv_hvalue_canon(v, out);
}

static int add_account(struct tkv_strmap *known,
                       const json_t *v,
                       struct tkv_buf *tmp)
{
    if (account_name(v, tmp) != 0 ||
        tkv_strmap_put(known, tmp->data, tmp->len, 0, NULL) == NULL) {
        return TKV_ENOMEM;
    }
    return 0;
}

/* Sum a read; TKV_EINVALID when it is not an object of integers. */
static int read_sum(const struct tkv_history *h,
                    size_t i,
                    int64_t *sum,
                    struct tkv_err *err)
{
    const json_t *r = h->ops[i].result;
    const char *acct;
    json_t *bal;

    if (!json_is_object(r)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "bank read at index %lld: value is not an object",
                           (long long)tkv_hop_name(h, i));
    }
    *sum = 0;
    json_object_foreach((json_t *)r, acct, bal)
    {
        int64_t b;
        if (!tkv_hvalue_int(bal, &b)) {
            return tkv_err_set(err, TKV_EINVALID,
                               "bank read at index %lld: balance of \"%s\" "
                               "is not an integer",
                               (long long)tkv_hop_name(h, i), acct);
        }
        *sum += b;
    }
    return 0;
}

int tkv_check_bank(const struct tkv_history *h,
                   const json_t *opts,
                   struct tkv_result *res,
                   struct tkv_err *err)
{
    struct tkv_strmap known;
    struct tkv_buf tmp;
    json_t *accounts = opts != NULL ? json_object_get(opts, "accounts") : NULL;
    int64_t total = 0;
    int have_total = opts != NULL && json_object_get(opts, "total") != NULL &&
                     !json_is_null(json_object_get(opts, "total"));
    size_t first_read = TKV_HNONE;
    size_t i;
    int64_t nreads = 0, nbad = 0;
    int64_t tr[4] = {0, 0, 0, 0}; /* transfers by completion type */
    int rv = 0;

    tkv_strmap_init(&known);
    tkv_buf_init(&tmp);
    if (have_total) {
        rv = tkv_opt_int(opts, "total", 0, &total, err);
        if (rv != 0) {
            goto out;
        }
    }
    if (accounts != NULL && !json_is_null(accounts) &&
        !json_is_array(accounts)) {
        rv = tkv_err_set(err, TKV_EINVALID,
                         "option \"accounts\" must be an array");
        goto out;
    }

    /* validate ops; find the first ok read */
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        if (strcmp(o->f, "transfer") == 0) {
            tr[o->type]++;
            if (!json_is_object(o->value)) {
                rv = tkv_err_set(err, TKV_EINVALID,
                                 "bank transfer at index %lld: value is not "
                                 "an object",
                                 (long long)h->events[o->invoke].index);
                goto out;
            }
        } else if (strcmp(o->f, "read") == 0) {
            if (o->type == TKV_HOK && first_read == TKV_HNONE) {
                first_read = i;
            }
        } else {
            rv = tkv_err_set(err, TKV_EINVALID,
                             "bank: unknown f \"%s\" at index %lld", o->f,
                             (long long)h->events[o->invoke].index);
            goto out;
        }
    }

    /* the known accounts */
    if (json_is_array(accounts)) {
        size_t k;
        json_t *a;
        json_array_foreach(accounts, k, a)
        {
            if ((rv = add_account(&known, a, &tmp)) != 0) {
                goto out;
            }
        }
    } else {
        for (i = 0; i < h->nops; i++) {
            const struct tkv_hop *o = &h->ops[i];
            if (strcmp(o->f, "transfer") == 0) {
                json_t *from = json_object_get(o->value, "from");
                json_t *to = json_object_get(o->value, "to");
                if ((from != NULL &&
                     (rv = add_account(&known, from, &tmp)) != 0) ||
                    (to != NULL && (rv = add_account(&known, to, &tmp)) != 0)) {
                    goto out;
                }
            }
        }
        if (first_read != TKV_HNONE &&
            json_is_object(h->ops[first_read].result)) {
            const char *acct;
            json_t *bal;
            json_object_foreach(h->ops[first_read].result, acct, bal)
            {
                (void)bal;
                if (tkv_strmap_put(&known, acct, strlen(acct), 0, NULL) ==
                    NULL) {
                    rv = TKV_ENOMEM;
                    goto out;
                }
            }
        }
    }
    if (!have_total && first_read != TKV_HNONE) {
        rv = read_sum(h, first_read, &total, err);
        if (rv != 0) {
            goto out;
        }
        tkv_result_note(res, "total %lld inferred from the first read",
                        (long long)total);
    }

    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        int64_t sum;
        int64_t name = tkv_hop_name(h, i);
        size_t before = tkv_result_count(res);
        const char *acct;
        json_t *bal;

        if (strcmp(o->f, "read") != 0 || o->type != TKV_HOK) {
            continue;
        }
        nreads++;
        rv = read_sum(h, i, &sum, err);
        if (rv != 0) {
            goto out;
        }
        if (sum != total) {
            tkv_result_add(
                res, "wrong-total",
                json_pack("{s:[I], s:I, s:I, s:O}", "ops", (json_int_t)name,
                          "total", (json_int_t)sum, "expected",
                          (json_int_t)total, "balances", o->result));
        }
        json_object_foreach(o->result, acct, bal)
        {
            int64_t b = 0;
            tkv_hvalue_int(bal, &b);
            if (b < 0) {
                tkv_result_add(
                    res, "negative-balance",
                    json_pack("{s:[I], s:s, s:I}", "ops", (json_int_t)name,
                              "account", acct, "balance", (json_int_t)b));
            }
            if (tkv_strmap_get(&known, acct, strlen(acct)) == NULL) {
                tkv_result_add(
                    res, "unknown-account",
                    json_pack("{s:[I], s:s, s:I}", "ops", (json_int_t)name,
                              "account", acct, "balance", (json_int_t)b));
            }
        }
        nbad += tkv_result_count(res) > before;
    }
    if (first_read == TKV_HNONE) {
        tkv_result_unknown(res, "no ok read: nothing to check");
    }
    tkv_result_stat_int(res, "reads", nreads);
    tkv_result_stat_int(res, "bad_reads", nbad);
    tkv_result_stat_int(res, "total", total);
    tkv_result_stat_int(res, "accounts", (int64_t)known.len);
    tkv_result_stat(res, "transfers",
                    json_pack("{s:I, s:I, s:I}", "ok", (json_int_t)tr[TKV_HOK],
                              "fail", (json_int_t)tr[TKV_HFAIL], "info",
                              (json_int_t)tr[TKV_HINFO]));
out:
    tkv_buf_close(&tmp);
    tkv_strmap_close(&known);
    return rv;
}
