/* history.jsonl writer: one compact JSON object per line, under one lock
 * (see history.h for why the lock matters). */
#include "history.h"

#include <string.h>

#include "runner.h"

int tkvj_history_open(struct tkvj_history *h, const char *path)
{
    memset(h, 0, sizeof *h);
    h->f = fopen(path, "w");
    if (h->f == NULL) {
        return -1;
    }
    pthread_mutex_init(&h->mu, NULL);
    return 0;
}

void tkvj_history_close(struct tkvj_history *h)
{
    if (h->f != NULL) {
        fclose(h->f);
        h->f = NULL;
        pthread_mutex_destroy(&h->mu);
    }
}

static int type_slot(const char *type)
{
    if (strcmp(type, "invoke") == 0) {
        return 0;
    }
    if (strcmp(type, "ok") == 0) {
        return 1;
    }
    if (strcmp(type, "fail") == 0) {
        return 2;
    }
    return 3;
}

int64_t tkvj_history_write(struct tkvj_history *h, int64_t process,
                           const char *type, const char *f, json_t *value,
                           json_t *extra)
{
    json_t *line = json_object();
    int64_t index;
    char *text;

    pthread_mutex_lock(&h->mu);
    index = h->next_index++;
    json_object_set_new(line, "index", json_integer(index));
    if (process == TKVJ_PROCESS_NEMESIS) {
        json_object_set_new(line, "process", json_string("nemesis"));
    } else {
        json_object_set_new(line, "process", json_integer(process));
    }
    json_object_set_new(line, "type", json_string(type));
    json_object_set_new(line, "f", json_string(f));
    json_object_set(line, "value", value != NULL ? value : json_null());
    json_object_set_new(line, "time", json_integer(tkvj_now_ns()));
    if (h->mark_clock && process != TKVJ_PROCESS_NEMESIS) {
        json_object_set_new(line, "nemesis_clock",
                            json_boolean(atomic_load(h->clock) != 0));
    }
    if (extra != NULL) {
        json_object_update(line, extra);
    }
    text = json_dumps(line, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text != NULL && h->f != NULL) {
        fputs(text, h->f);
        fputc('\n', h->f);
        fflush(h->f);
    }
    h->lines[type_slot(type)]++;
    pthread_mutex_unlock(&h->mu);
    free(text);
    json_decref(line);
    return index;
}
