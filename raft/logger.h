/* One-line-per-event logging on stderr, shared by raft/ and node/.
 *
 * Every line is "<UTC time with ms> <LEVEL> [<prefix>] <message>". The level
 * is set once at startup (--log-level); lines above it cost one comparison.
 * Single-threaded use is the norm (the loop thread); the join thread logs
 * too, and stdio's own locking keeps each line whole. */
#ifndef TKV_LOGGER_H
#define TKV_LOGGER_H

enum {
    TKV_LOG_ERROR = 0,
    TKV_LOG_WARN = 1,
    TKV_LOG_INFO = 2,
    TKV_LOG_DEBUG = 3,
};

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int tkv_log_parse_level(const char *name);
void tkv_log_set_level(int level);
int tkv_log_level(void);
/* Short tag printed on every line, e.g. "node 1" (copied). */
void tkv_log_set_prefix(const char *prefix);

void tkv_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tkv_errorf(...) tkv_log(TKV_LOG_ERROR, __VA_ARGS__)
#define tkv_warnf(...) tkv_log(TKV_LOG_WARN, __VA_ARGS__)
#define tkv_infof(...) tkv_log(TKV_LOG_INFO, __VA_ARGS__)
#define tkv_debugf(...)                          \
    do {                                         \
        if (tkv_log_level() >= TKV_LOG_DEBUG) {  \
            tkv_log(TKV_LOG_DEBUG, __VA_ARGS__); \
        }                                        \
    } while (0)

#endif /* TKV_LOGGER_H */
