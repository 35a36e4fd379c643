/* Logging (see log.h): formats one line per call and writes it with a single
 * fputs so concurrent writers (the join thread) never interleave inside a
 * line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int tkv__log_level = TKV_LOG_INFO;
static char tkv__log_prefix[64] = "";

static const char *const tkv__log_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int tkv_log_parse_level(const char *name)
{
    static const char *const lower[] = {"error", "warn", "info", "debug"};
    int i;
    for (i = 0; i < 4; i++) {
        if (strcmp(name, lower[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void tkv_log_set_level(int level)
{
    tkv__log_level = level;
}

int tkv_log_level(void)
{
    return tkv__log_level;
}

void tkv_log_set_prefix(const char *prefix)
{
    snprintf(tkv__log_prefix, sizeof tkv__log_prefix, "%s", prefix);
}

void tkv_log_write(int level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (level > tkv__log_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof line,
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 tkv__log_names[level], tkv__log_prefix);
    if (n < 0 || (size_t)n >= sizeof line) {
        n = 0;
    }
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (int)strlen(line);
    line[n] = '\n';
    line[n + 1] = '\0';
    fputs(line, stderr);
}
