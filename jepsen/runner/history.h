/* Writing history.jsonl (the format is jepsen/checker/history.h's).
 *
 * Every line goes out under one lock, with the next index and the time
 * taken under that lock, so the order of lines is the real-time order the
 * checkers rely on: a worker writes its invoke line just before it sends
 * the request and its completion line just after the answer (or the
 * give-up). Lines are flushed as they are written, so a history survives
 * the runner being killed. */
#ifndef TKVJ_HISTORY_H
#define TKVJ_HISTORY_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define TKVJ_PROCESS_NEMESIS (-1)

struct tkvj_history {
    FILE *f; /* owned */
    pthread_mutex_t mu;
    int64_t next_index;
    int64_t lines[4];          /* invoke, ok, fail, info counts */
    int mark_clock;            /* add "nemesis_clock" to client lines */
    const atomic_int *clock;   /* borrowed: the run's clock_touched */
};

/* 0, or -1 with errno when the file cannot be created. */
int tkvj_history_open(struct tkvj_history *h, const char *path);
void tkvj_history_close(struct tkvj_history *h);

/* Write one line. process >= 0 is a client process, TKVJ_PROCESS_NEMESIS
 * the fault injector (written as "nemesis"). type: "invoke", "ok", "fail"
 * or "info". value and extra are borrowed; value NULL writes null; extra,
 * when not NULL, is an object whose members are added to the line. Returns
 * the line's index. */
int64_t tkvj_history_write(struct tkvj_history *h, int64_t process,
                           const char *type, const char *f,
                           json_t *value, json_t *extra);

#endif /* TKVJ_HISTORY_H */
