/* The workload table and the checker entry point (see checker.h). */
#include "checker.h"

#include <string.h>

const struct tkv_checker tkv_checkers[] = {
    {"bank", tkv_check_bank,
     "every read sums to the total; no negative or unknown account"},
    {"append", tkv_check_append,
     "Elle list-append: strict serializability (G0..G2, real-time)"},
    {"register", tkv_check_register,
     "per-key read/write/cas registers are linearizable (WGL)"},
    {"set", tkv_check_set,
     "the final read holds every acknowledged add and nothing unknown"},
    {"ttl", tkv_check_ttl, "no read after expiry; no key vanishes early"},
    {NULL, NULL, NULL},
};

const struct tkv_checker *tkv_checker_find(const char *workload)
{
    const struct tkv_checker *c;

    for (c = tkv_checkers; c->name != NULL; c++) {
        if (strcmp(c->name, workload) == 0) {
            return c;
        }
    }
    return NULL;
}

int tkv_opt_int(const json_t *opts,
                const char *name,
                int64_t def,
                int64_t *out,
                struct tkv_err *err)
{
    json_t *v = opts != NULL ? json_object_get(opts, name) : NULL;

    if (v == NULL || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!tkv_hvalue_int(v, out)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "option \"%s\" must be an integer", name);
    }
    return 0;
}

json_t *tkv_check(const char *workload,
                  const struct tkv_history *h,
                  const json_t *opts,
                  struct tkv_err *err)
{
    const struct tkv_checker *c = tkv_checker_find(workload);
    struct tkv_result res;
    struct tkv_err cerr;
    json_t *out;
    int rv;

    if (c == NULL) {
        tkv_err_set(err, TKV_EINVALID, "unknown workload \"%s\"", workload);
        return NULL;
    }
    if (opts != NULL && !json_is_object(opts)) {
        tkv_err_set(err, TKV_EINVALID, "options must be a JSON object");
        return NULL;
    }
    if (tkv_result_init(&res) != 0) {
        tkv_err_set(err, TKV_ENOMEM, "out of memory");
        return NULL;
    }
    tkv_err_clear(&cerr);
    rv = c->check(h, opts, &res, &cerr);
    if (rv == TKV_ENOMEM) {
        tkv_result_close(&res);
        tkv_err_set(err, TKV_ENOMEM, "out of memory");
        return NULL;
    }
    out = tkv_result_json(&res, c->name, rv != 0 ? cerr.msg : NULL);
    tkv_result_close(&res);
    if (out == NULL) {
        tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    return out;
}
