/* The workload table and how call results map to Jepsen outcomes. */
#include "workload.h"

#include <stdio.h>
#include <string.h>

static const struct tkvj_workload *const workloads[] = {
    &tkvj_wl_bank, &tkvj_wl_append, &tkvj_wl_register, &tkvj_wl_set,
    &tkvj_wl_ttl,
};

const struct tkvj_workload *tkvj_workload_find(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        if (strcmp(workloads[i]->name, name) == 0) {
            return workloads[i];
        }
    }
    return NULL;
}

enum tkvj_outcome tkvj_read_outcome(int rc)
{
    /* a read changes nothing, so a read that did not answer did not
     * happen */
    return rc == 0 ? TKVJ_OK : TKVJ_FAIL;
}

enum tkvj_outcome tkvj_write_outcome(int rc)
{
    switch (rc) {
    case 0:
        return TKVJ_OK;
    /* refused before anything was applied: the library's contract (for
     * UNAVAILABLE: "it was never sent") */
    case TKV_ECONFLICT:
    case TKV_EUNAVAILABLE:
    case TKV_EABORTED:
    case TKV_EINVALID:
    case TKV_ETOO_LARGE:
    case TKV_ENOT_JSON:
    case TKV_EBUSY:
    case TKV_ENOMEM:
        return TKVJ_FAIL;
    default:
        /* TKV_EUNKNOWN, TKV_ETIMEOUT, TKV_ESHUTDOWN, anything else: may or
         * may not have been applied */
        return TKVJ_INFO;
    }
}

void tkvj_call_error(struct tkvj_call *call, int rc, const struct tkv_err *err)
{
    snprintf(call->error, sizeof call->error, "%s: %.200s", tkv_errname(rc),
             err != NULL && err->msg[0] != '\0' ? err->msg
                                                : tkv_strerror(rc));
}
