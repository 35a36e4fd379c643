/* Folding the harness's findings into the checker's results.
 *
 * tuplekv-check writes <dir>/results.json from the history alone; the
 * runner writes <dir>/harness.json with what it saw itself (node crashes,
 * sanitizer reports in node logs, state-machine time going backwards, no
 * recovery after healing). tkvj_merge() adds each finding type to
 * results.json as an anomaly type (anomalies, anomaly_counts,
 * anomaly_types, kept sorted), makes "valid" false when there is any,
 * "unknown" when the harness itself failed, and keeps the whole
 * harness.json under "harness". A missing or unreadable results.json
 * counts as "unknown" ("the checker wrote no results"). */
#ifndef TKVJ_MERGE_H
#define TKVJ_MERGE_H

/* Rewrite <dir>/results.json. Returns 0 valid, 1 invalid, 2 unknown, 3 when
 * results.json cannot be written. */
int tkvj_merge(const char *dir);

#endif /* TKVJ_MERGE_H */
