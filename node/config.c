/* Flags and JSON config file -> struct tkv_node_config.
 *
 * One table lists every option once: its flag, its JSON key, its kind and
 * where it is stored, so flags, file keys and --help cannot drift apart.
 * Order: defaults, then the file (if --config is among the flags), then the
 * flags, then the checks that look at several options together. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/addr.h"
#include "../common/log.h"

enum {
    OPT_U64,
    OPT_UINT,
    OPT_ADDR,
    OPT_PATH,
    OPT_BOOTSTRAP,
    OPT_LEVEL,
    OPT_SNAPMODE,
};

struct opt {
    const char *flag; /* "--id" */
    const char *key;  /* "id" in the JSON file */
    int kind;
    size_t offset;
    unsigned min, max; /* OPT_UINT range */
    const char *help;
};

#define OFF(f) offsetof(struct tkv_node_config, f)

static const struct opt opts[] = {
    {"--id", "id", OPT_U64, OFF(id), 0, 0,
     "ID          this node's id (> 0), unique in the cluster"},
    {"--raft-address", "raft_address", OPT_ADDR, OFF(raft_address), 0, 0,
     "HOST:PORT   address raft peers connect to"},
    {"--client-address", "client_address", OPT_ADDR, OFF(client_address), 0, 0,
     "HOST:PORT   address clients connect to"},
    {"--data-dir", "data_dir", OPT_PATH, OFF(data_dir), 0, 0,
     "DIR         raft log and snapshots (created if missing)"},
    {"--bootstrap", "bootstrap", OPT_BOOTSTRAP, OFF(bootstrap), 0, 0,
     "ID=RAFT_ADDR=CLIENT_ADDR,...  first start of a new cluster: all "
     "members"},
    {"--join", "join", OPT_ADDR, OFF(join), 0, 0,
     "CLIENT_ADDR ask the cluster at this client address to add this node"},
    {"--tick-ms", "tick_ms", OPT_UINT, OFF(tick_ms), 10, 60000,
     "MS          leader clock tick when idle (default 500)"},
    {"--election-timeout-ms", "election_timeout_ms", OPT_UINT,
     OFF(election_timeout_ms), 50, 600000,
     "MS          raft election timeout (default 400)"},
    {"--heartbeat-ms", "heartbeat_ms", OPT_UINT, OFF(heartbeat_ms), 10, 60000,
     "MS          raft heartbeat interval (default 100)"},
    {"--snapshot-threshold", "snapshot_threshold", OPT_UINT,
     OFF(snapshot_threshold), 2, 100000000,
     "N           entries between snapshots, +-25% per snapshot (default 16384)"},
    {"--snapshot-trailing", "snapshot_trailing", OPT_UINT,
     OFF(snapshot_trailing), 0, 100000000,
     "N           entries kept in the log after a snapshot (default 1024)"},
    {"--snapshot-compression", "snapshot_compression", OPT_UINT,
     OFF(snapshot_compression), 0, 1,
     "0|1         LZ4-compress snapshot files (default 0: CPU is dearer)"},
    {"--snapshot-mode", "snapshot_mode", OPT_SNAPMODE, OFF(snapshot_mode), 0, 0,
     "stepped|fork|inline how snapshots are serialized (default stepped)"},
    {"--huge-pages", "huge_pages", OPT_UINT, OFF(huge_pages), 0, 1,
     "0|1         heap on transparent huge pages (default 1)"},
    {"--log-zero-fill", "log_zero_fill", OPT_UINT, OFF(log_zero_fill), 0, 1,
     "0|1         log segments written as zeros before use (default 1; 0 on "
     "btrfs, ZFS)"},
    {"--max-connections", "max_connections", OPT_UINT, OFF(max_connections), 1,
     1000000,
     "N           client connections served at once (default "
     "1024)"},
    {"--log-level", "log_level", OPT_LEVEL, OFF(log_level), 0, 0,
     "LEVEL       error, warn, info (default) or debug"},
};

#define NOPTS (sizeof opts / sizeof opts[0])

void tkv_node_config_usage(const char *prog)
{
    size_t i;
    printf(
        "usage: %s --id ID --raft-address HOST:PORT --client-address "
        "HOST:PORT --data-dir DIR\n"
        "          [--bootstrap ID=RAFT=CLIENT,... | --join CLIENT_ADDR] "
        "[options]\n"
        "       %s --probe CLIENT_ADDR [status|members|get KEY|set KEY "
        "VALUE|delete KEY|remove ID|transfer [ID]]\n\n"
        "A tuplekv node: an in-memory, Raft-replicated key-value store.\n"
        "Restarting with the same --data-dir needs no bootstrap or join "
        "flag.\n\noptions:\n",
        prog, prog);
    for (i = 0; i < NOPTS; i++) {
        printf("  %-22s %s\n", opts[i].flag, opts[i].help);
    }
    printf("  %-22s %s\n", "--config",
           "FILE        JSON object with the "
           "keys above, e.g. {\"id\": 1, "
           "\"data_dir\": \"/var/lib/tuplekv\"}");
    printf("  %-22s %s\n", "--help", "            this text");
    printf(
        "\n--probe: a minimal client printing the reply as JSON; KEY and "
        "VALUE are JSON\n(e.g. '[\"users\",1]' '{\"name\":\"ada\"}'); "
        "it follows NOT_LEADER redirects.\n"
        "Exit codes: 0 ok, 1 runtime failure, 2 bad flags or data "
        "dir.\n");
}

int tkv_node_parse_addr(const char *s, char *host, size_t hostlen, int *port)
{
    char h[64];
    struct in_addr a;
    struct tkv_err err;
    int p;

    if (tkv_addr_split(s, strlen(s), h, sizeof h, &p, &err) != 0) {
        return TKV_EINVALID;
    }
    if (strcmp(h, "localhost") == 0) {
        strcpy(h, "127.0.0.1");
    }
    if (inet_pton(AF_INET, h, &a) != 1) {
        return TKV_EINVALID;
    }
    if (host != NULL) {
        snprintf(host, hostlen, "%s", h);
    }
    if (port != NULL) {
        *port = p;
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (*s == '\0' || *s == '-' || *s == '+') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bootstrap(struct tkv_node_config *cfg,
                           const char *s,
                           struct tkv_err *err)
{
    char copy[4096];
    char *save = NULL;
    char *item;

    if (strlen(s) >= sizeof copy) {
        return tkv_err_set(err, TKV_EINVALID, "--bootstrap: too long");
    }
    strcpy(copy, s);
    cfg->nbootstrap = 0;
    for (item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        struct tkv_replica_peer *p;
        char *eq1 = strchr(item, '=');
        char *eq2 = eq1 ? strchr(eq1 + 1, '=') : NULL;
        size_t i;
        if (cfg->nbootstrap == TKV_NODE_MAX_BOOTSTRAP) {
            return tkv_err_set(err, TKV_EINVALID,
                               "--bootstrap: at most %d members",
                               TKV_NODE_MAX_BOOTSTRAP);
        }
        p = &cfg->bootstrap[cfg->nbootstrap];
        if (eq1 == NULL || eq2 == NULL) {
            return tkv_err_set(err, TKV_EINVALID,
                               "--bootstrap: '%s' is not "
                               "ID=RAFT_ADDR=CLIENT_ADDR",
                               item);
        }
        *eq1 = '\0';
        *eq2 = '\0';
        if (parse_u64(item, &p->id) != 0 || p->id == 0) {
            return tkv_err_set(err, TKV_EINVALID,
                               "--bootstrap: bad member id '%s'", item);
        }
        if (tkv_node_parse_addr(eq1 + 1, NULL, 0, NULL) != 0 ||
            tkv_node_parse_addr(eq2 + 1, NULL, 0, NULL) != 0) {
            return tkv_err_set(err, TKV_EINVALID,
                               "--bootstrap: member %llu: addresses must be "
                               "IPV4:PORT",
                               (unsigned long long)p->id);
        }
        snprintf(p->raft_address, sizeof p->raft_address, "%s", eq1 + 1);
        snprintf(p->client_address, sizeof p->client_address, "%s", eq2 + 1);
        for (i = 0; i < cfg->nbootstrap; i++) {
            if (cfg->bootstrap[i].id == p->id) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "--bootstrap: member %llu twice",
                                   (unsigned long long)p->id);
            }
        }
        cfg->nbootstrap++;
    }
    if (cfg->nbootstrap == 0) {
        return tkv_err_set(err, TKV_EINVALID, "--bootstrap: no members");
    }
    return 0;
}

/* Store one option's textual value. */
static int set_opt(struct tkv_node_config *cfg,
                   const struct opt *o,
                   const char *v,
                   struct tkv_err *err)
{
    char *base = (char *)cfg + o->offset;
    uint64_t u;

    switch (o->kind) {
        case OPT_U64:
            if (parse_u64(v, &u) != 0 || u == 0) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "%s: '%s' is not a number > 0", o->flag, v);
            }
            *(uint64_t *)base = u;
            return 0;
        case OPT_UINT:
            if (parse_u64(v, &u) != 0 || u < o->min || u > o->max) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "%s: '%s' is not a number in %u..%u",
                                   o->flag, v, o->min, o->max);
            }
            *(unsigned *)base = (unsigned)u;
            return 0;
        case OPT_ADDR:
            if (tkv_node_parse_addr(v, NULL, 0, NULL) != 0) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "%s: '%s' is not IPV4:PORT", o->flag, v);
            }
            snprintf(base, TKV_ADDR_MAX + 1, "%s", v);
            return 0;
        case OPT_PATH:
            if (*v == '\0' || strlen(v) >= sizeof cfg->data_dir) {
                return tkv_err_set(err, TKV_EINVALID, "%s: bad path", o->flag);
            }
            snprintf(base, sizeof cfg->data_dir, "%s", v);
            return 0;
        case OPT_BOOTSTRAP:
            return parse_bootstrap(cfg, v, err);
        case OPT_LEVEL: {
            int level = tkv_log_parse_level(v);
            if (level < 0) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "%s: '%s' is not error, warn, info or "
                                   "debug",
                                   o->flag, v);
            }
            *(int *)base = level;
            return 0;
        }
        case OPT_SNAPMODE:
            if (strcmp(v, "fork") == 0) {
                *(int *)base = 0;
            } else if (strcmp(v, "inline") == 0) {
                *(int *)base = 1;
            } else if (strcmp(v, "stepped") == 0) {
                *(int *)base = 3;
            } else {
                return tkv_err_set(err, TKV_EINVALID,
                                   "%s: '%s' is not stepped, fork or inline",
                                   o->flag, v);
            }
            return 0;
        default:
            return tkv_err_set(err, TKV_EINVALID, "bad option kind");
    }
}

static const struct opt *find_flag(const char *flag)
{
    size_t i;
    for (i = 0; i < NOPTS; i++) {
        if (strcmp(opts[i].flag, flag) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

static int load_file(struct tkv_node_config *cfg,
                     const char *path,
                     struct tkv_err *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    const char *key;
    json_t *val;
    int rv = 0;

    if (root == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "--config %s: line %d: %s", path,
                           jerr.line, jerr.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return tkv_err_set(err, TKV_EINVALID,
                           "--config %s: must be a JSON object", path);
    }
    json_object_foreach(root, key, val)
    {
        const struct opt *o = NULL;
        char text[4096];
        size_t i;
        for (i = 0; i < NOPTS; i++) {
            if (strcmp(opts[i].key, key) == 0) {
                o = &opts[i];
            }
        }
        if (o == NULL) {
            rv = tkv_err_set(err, TKV_EINVALID,
                             "--config %s: unknown key \"%s\"", path, key);
            break;
        }
        if (json_is_integer(val)) {
            snprintf(text, sizeof text, "%lld",
                     (long long)json_integer_value(val));
        } else if (json_is_string(val)) {
            snprintf(text, sizeof text, "%s", json_string_value(val));
        } else {
            rv = tkv_err_set(err, TKV_EINVALID,
                             "--config %s: \"%s\" must be a string or an "
                             "integer",
                             path, key);
            break;
        }
        rv = set_opt(cfg, o, text, err);
        if (rv != 0) {
            break;
        }
    }
    json_decref(root);
    return rv;
}

static int check(struct tkv_node_config *cfg, struct tkv_err *err)
{
    size_t i;
    int self = 0;

    if (cfg->id == 0) {
        return tkv_err_set(err, TKV_EINVALID, "--id is required");
    }
    if (cfg->raft_address[0] == '\0') {
        return tkv_err_set(err, TKV_EINVALID, "--raft-address is required");
    }
    if (cfg->client_address[0] == '\0') {
        return tkv_err_set(err, TKV_EINVALID, "--client-address is required");
    }
    if (strcmp(cfg->raft_address, cfg->client_address) == 0) {
        return tkv_err_set(err, TKV_EINVALID,
                           "--raft-address and --client-address must "
                           "differ");
    }
    if (cfg->data_dir[0] == '\0') {
        return tkv_err_set(err, TKV_EINVALID, "--data-dir is required");
    }
    if (cfg->nbootstrap > 0 && cfg->join[0] != '\0') {
        return tkv_err_set(err, TKV_EINVALID,
                           "--bootstrap and --join exclude each other");
    }
    for (i = 0; i < cfg->nbootstrap; i++) {
        if (cfg->bootstrap[i].id == cfg->id) {
            self = 1;
            if (strcmp(cfg->bootstrap[i].raft_address, cfg->raft_address) !=
                0) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "--bootstrap gives member %llu raft "
                                   "address %s, but --raft-address is %s",
                                   (unsigned long long)cfg->id,
                                   cfg->bootstrap[i].raft_address,
                                   cfg->raft_address);
            }
        }
    }
    if (cfg->nbootstrap > 0 && !self) {
        return tkv_err_set(err, TKV_EINVALID,
                           "--bootstrap does not list this node (id %llu)",
                           (unsigned long long)cfg->id);
    }
    if (cfg->heartbeat_ms >= cfg->election_timeout_ms) {
        return tkv_err_set(err, TKV_EINVALID,
                           "--heartbeat-ms (%u) must be below "
                           "--election-timeout-ms (%u)",
                           cfg->heartbeat_ms, cfg->election_timeout_ms);
    }
    return 0;
}

int tkv_node_config_parse(struct tkv_node_config *cfg,
                          int argc,
                          char **argv,
                          struct tkv_err *err)
{
    struct tkv_replica_config d;
    int i;
    int rv;

    memset(cfg, 0, sizeof *cfg);
    tkv_replica_config_default(&d);
    cfg->tick_ms = d.tick_ms;
    cfg->election_timeout_ms = d.election_timeout_ms;
    cfg->heartbeat_ms = d.heartbeat_ms;
    cfg->snapshot_threshold = d.snapshot_threshold;
    cfg->snapshot_trailing = d.snapshot_trailing;
    cfg->snapshot_mode = d.snapshot_mode;
    cfg->snapshot_compression = (unsigned)d.snapshot_compression;
    cfg->huge_pages = 1;
    cfg->log_zero_fill = 1;
    cfg->max_connections = 1024;
    cfg->log_level = TKV_LOG_INFO;

    /* --help and --probe short-circuit; --config is read before the flags
     * so that flags override it. */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cfg->help = 1;
            return 0;
        }
        if (strcmp(argv[i], "--probe") == 0) {
            if (i + 1 >= argc ||
                tkv_node_parse_addr(argv[i + 1], NULL, 0, NULL) != 0) {
                return tkv_err_set(err, TKV_EINVALID,
                                   "--probe needs a client address "
                                   "IPV4:PORT");
            }
            snprintf(cfg->probe, sizeof cfg->probe, "%s", argv[i + 1]);
            cfg->probe_argc = argc - i - 2;
            cfg->probe_argv = argv + i + 2;
            return 0;
        }
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                return tkv_err_set(err, TKV_EINVALID, "--config needs a file");
            }
            rv = load_file(cfg, argv[i + 1], err);
            if (rv != 0) {
                return rv;
            }
        }
    }
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val;
        char flag[64];
        const struct opt *o;
        const char *eq = strchr(arg, '=');

        if (strncmp(arg, "--", 2) != 0) {
            return tkv_err_set(err, TKV_EINVALID, "unexpected argument '%s'",
                               arg);
        }
        /* --flag=value or --flag value */
        if (eq != NULL && (size_t)(eq - arg) < sizeof flag) {
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", arg);
            val = NULL;
        }
        if (strcmp(flag, "--config") == 0) {
            i += val == NULL;
            continue;
        }
        o = find_flag(flag);
        if (o == NULL) {
            return tkv_err_set(err, TKV_EINVALID,
                               "unknown flag '%s' (see --help)", flag);
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                return tkv_err_set(err, TKV_EINVALID, "%s needs a value", flag);
            }
            val = argv[++i];
        }
        rv = set_opt(cfg, o, val, err);
        if (rv != 0) {
            return rv;
        }
    }
    return check(cfg, err);
}
