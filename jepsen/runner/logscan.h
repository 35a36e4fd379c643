/* Scanning node logs for crashes: assertion failures, sanitizer reports,
 * fatal signals, glibc heap aborts. Each hit is a "node-log" finding with
 * the node, the line number and the line (a few per node at most). */
#ifndef TKVJ_LOGSCAN_H
#define TKVJ_LOGSCAN_H

struct tkvj_run;

/* Scan every node's log; returns the number of hits. */
int tkvj_logscan(struct tkvj_run *r);

#endif /* TKVJ_LOGSCAN_H */
