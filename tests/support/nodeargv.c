/* The tuplekv-node command line (see nodeargv.h). */
#include "nodeargv.h"

#include <stdio.h>

void tkv_nodeargv_init(struct tkv_nodeargv *a,
                       const char *program,
                       int id,
                       const char *raft,
                       const char *client,
                       const char *data_dir)
{
    a->argc = 0;
    a->argv[0] = NULL;
    a->overflow = 0;
    a->members[0] = '\0';
    a->members_len = 0;
    snprintf(a->id, sizeof a->id, "%d", id);
    tkv_nodeargv_add(a, program);
    tkv_nodeargv_flag(a, "--id", a->id);
    tkv_nodeargv_flag(a, "--raft-address", raft);
    tkv_nodeargv_flag(a, "--client-address", client);
    tkv_nodeargv_flag(a, "--data-dir", data_dir);
}

void tkv_nodeargv_add(struct tkv_nodeargv *a, const char *word)
{
    if (a->argc == TKV_NODEARGV_MAX) {
        a->overflow = 1;
        return;
    }
    a->argv[a->argc++] = word;
    a->argv[a->argc] = NULL;
}

void tkv_nodeargv_flag(struct tkv_nodeargv *a,
                       const char *flag,
                       const char *value)
{
    tkv_nodeargv_add(a, flag);
    tkv_nodeargv_add(a, value);
}

void tkv_nodeargv_member(struct tkv_nodeargv *a,
                         int id,
                         const char *raft,
                         const char *client)
{
    size_t left = sizeof a->members - a->members_len;
    int n = snprintf(a->members + a->members_len, left, "%s%d=%s=%s",
                     a->members_len > 0 ? "," : "", id, raft, client);
    if (n < 0 || (size_t)n >= left) {
        a->members[a->members_len] = '\0'; /* no half member */
        a->overflow = 1;
        return;
    }
    a->members_len += (size_t)n;
}

void tkv_nodeargv_bootstrap(struct tkv_nodeargv *a)
{
    tkv_nodeargv_flag(a, "--bootstrap", a->members);
}
