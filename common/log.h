/* One-line-per-event logging on stderr, shared by raft/ and node/ (and the
 * simulation test, which turns it down).
 *
 * Every line is "<UTC time with ms> <LEVEL> [<prefix>] <message>". The level
 * is set once at startup (--log-level); lines above it cost one comparison.
 * Single-threaded use is the norm (the loop thread); the join thread logs
 * too, and stdio's own locking keeps each line whole. */
#ifndef TKV_LOG_H
#define TKV_LOG_H

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

/* Write one line at level (dropped when above the set level). */
void tkv_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tkv_log_error(...) tkv_log_write(TKV_LOG_ERROR, __VA_ARGS__)
#define tkv_log_warn(...) tkv_log_write(TKV_LOG_WARN, __VA_ARGS__)
#define tkv_log_info(...) tkv_log_write(TKV_LOG_INFO, __VA_ARGS__)
/* Debug lines skip formatting their arguments when debug is off. */
#define tkv_log_debug(...)                             \
    do {                                               \
        if (tkv_log_level() >= TKV_LOG_DEBUG) {        \
            tkv_log_write(TKV_LOG_DEBUG, __VA_ARGS__); \
        }                                              \
    } while (0)

#endif /* TKV_LOG_H */
