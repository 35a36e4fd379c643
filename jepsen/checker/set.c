/* The set checker: after the faults heal, one final read must hold every
 * acknowledged add and nothing that was never added.
 *
 * The final read is the last ok read of the history. For each element:
 *   - an ok add that completed before the final read began and is missing:
 *     "lost";
 *   - present but never added by anyone: "unexpected";
 *   - present, and its only adds failed: "failed-add-present" (fail means
 *     definitely did not happen, so this is a client or server lie);
 *   - present, and its adds were info: "recovered" (fine, counted);
 *   - present twice in the read: "duplicate".
 * Ok adds still running when the final read began may or may not show:
 * counted as "concurrent", never lost. */
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/buf.h"
#include "checker.h"
#include "strmap.h"

/* Per element: what its adds did. */
struct elem {
    size_t ok_add;  /* an ok add that completed before the read, or NONE */
    size_t any_add; /* some add op, or NONE */
    int n_ok, n_info, n_fail, n_concurrent;
    int present; /* times in the final read */
};

int tkv_check_set(const struct tkv_history *h,
                  const json_t *opts,
                  struct tkv_result *res,
                  struct tkv_err *err)
{
    struct tkv_strmap ids;
    struct tkv_buf tmp;
    struct elem *elems = NULL;
    size_t nelems = 0, cap = 0;
    size_t final = TKV_HNONE;
    size_t i;
    int64_t read_name;
    int64_t attempted = 0, acked = 0, lost = 0, unexpected = 0;
    int64_t recovered = 0, okcount = 0, concurrent = 0;
    size_t k;
    json_t *v;
    int rv = 0;

    tkv_strmap_init(&ids);
    tkv_buf_init(&tmp);
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        if (strcmp(o->f, "read") == 0) {
            if (o->type == TKV_HOK) {
                if (!json_is_array(o->result)) {
                    rv = tkv_err_set(err, TKV_EINVALID,
                                     "set read at index %lld: value is not "
                                     "an array",
                                     (long long)tkv_hop_name(h, i));
                    goto out;
                }
                final = i;
            }
        } else if (strcmp(o->f, "add") != 0) {
            rv = tkv_err_set(err, TKV_EINVALID,
                             "set: unknown f \"%s\" at index %lld", o->f,
                             (long long)h->events[o->invoke].index);
            goto out;
        }
    }
    if (final == TKV_HNONE) {
        tkv_result_unknown(res, "no ok read: no final state to check");
        goto out;
    }
    read_name = tkv_hop_name(h, final);

    /* adds */
    for (i = 0; i < h->nops; i++) {
        const struct tkv_hop *o = &h->ops[i];
        struct elem *e;
        int64_t id;

        if (strcmp(o->f, "add") != 0) {
            continue;
        }
        attempted++;
        tkv_buf_reset(&tmp);
        if (tkv_hvalue_canon(o->value, &tmp) != 0 ||
            (id = tkv_strmap_intern(&ids, tmp.data, tmp.len)) < 0) {
            rv = TKV_ENOMEM;
            goto out;
        }
        if ((size_t)id == nelems) {
            if (nelems == cap) {
                size_t c2 = cap ? cap * 2 : 256;
                struct elem *n2 = tkv_realloc(elems, c2 * sizeof *n2);
                if (n2 == NULL) {
                    rv = TKV_ENOMEM;
                    goto out;
                }
                elems = n2;
                cap = c2;
            }
            memset(&elems[nelems], 0, sizeof elems[nelems]);
            elems[nelems].ok_add = TKV_HNONE;
            nelems++;
        }
        e = &elems[id];
        e->any_add = i;
        if (o->type == TKV_HOK) {
            acked++;
            /* completed before the final read was invoked? */
            if (o->complete < h->ops[final].invoke) {
                e->n_ok++;
                e->ok_add = i;
            } else {
                e->n_concurrent++;
            }
        } else if (o->type == TKV_HINFO) {
            e->n_info++;
        } else {
            e->n_fail++;
        }
    }

    /* the final read */
    json_array_foreach(h->ops[final].result, k, v)
    {
        uint64_t *slot;
        tkv_buf_reset(&tmp);
        if (tkv_hvalue_canon(v, &tmp) != 0) {
            rv = TKV_ENOMEM;
            goto out;
        }
        slot = tkv_strmap_get(&ids, tmp.data, tmp.len);
        if (slot == NULL) {
            unexpected++;
            tkv_result_add(res, "unexpected",
                           json_pack("{s:[I], s:O}", "ops",
                                     (json_int_t)read_name, "value", v));
            continue;
        }
        elems[*slot].present++;
        if (elems[*slot].present == 2) {
            tkv_result_add(res, "duplicate",
                           json_pack("{s:[I], s:O}", "ops",
                                     (json_int_t)read_name, "value", v));
        }
    }

    for (i = 0; i < nelems; i++) {
        struct elem *e = &elems[i];
        const struct tkv_hop *add = &h->ops[e->any_add];

        if (e->present) {
            if (e->n_ok > 0) {
                okcount++;
            } else if (e->n_concurrent > 0) {
                concurrent++;
            } else if (e->n_info > 0) {
                recovered++;
            } else {
                tkv_result_add(
                    res, "failed-add-present",
                    json_pack("{s:[I,I], s:O}", "ops",
                              (json_int_t)tkv_hop_name(h, e->any_add),
                              (json_int_t)read_name, "value", add->value));
            }
        } else if (e->n_ok > 0) {
            lost++;
            tkv_result_add(res, "lost",
                           json_pack("{s:[I,I], s:O}", "ops",
                                     (json_int_t)tkv_hop_name(h, e->ok_add),
                                     (json_int_t)read_name, "value",
                                     h->ops[e->ok_add].value));
        } else if (e->n_concurrent > 0) {
            concurrent++;
        }
    }
    tkv_result_stat_int(res, "attempted", attempted);
    tkv_result_stat_int(res, "acknowledged", acked);
    tkv_result_stat_int(res, "ok", okcount);
    tkv_result_stat_int(res, "lost", lost);
    tkv_result_stat_int(res, "unexpected", unexpected);
    tkv_result_stat_int(res, "recovered", recovered);
    tkv_result_stat_int(res, "concurrent", concurrent);
    tkv_result_stat_int(res, "final_read_size",
                        (int64_t)json_array_size(h->ops[final].result));
    tkv_result_stat_int(res, "final_read", read_name);
out:
    tkv_free(elems);
    tkv_buf_close(&tmp);
    tkv_strmap_close(&ids);
    return rv;
}
