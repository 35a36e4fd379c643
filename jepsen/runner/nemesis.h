/* The nemesis: faults on a schedule, each healed before the next, all
 * healed at the end.
 *
 * One thread runs partition, kill, pause and clock faults one at a time:
 * a quiet gap, a fault, a window of a few seconds (--interval), the heal.
 * With "member" a second thread removes a node from the cluster, wipes it
 * and adds it back, independently of the first, so membership changes
 * happen during the other faults. Faults pick their targets among the nodes
 * no other fault holds (struct tkvj_node.owner).
 *
 *   partition  iptables DROP inside the namespaces, one of: isolate-one,
 *              isolate-leader, halves (majority/minority), majorities-ring
 *              (every node sees a majority, no two the same), bridge (two
 *              halves joined by one node)
 *   kill       SIGKILL one node, the leader, a minority, a majority or all;
 *              restart with the same data dir
 *   pause      SIGSTOP one node, the leader, a minority or a majority;
 *              SIGCONT
 *   clock      restart a node (often the leader) under libfaketime with its
 *              clock moved 5-60 s forwards or backwards, then hand it
 *              leadership; restart it with the true clock
 *   member     remove a node (confirmed through the members list), kill and
 *              wipe it, start it again with --join
 *
 * Every start and stop is a history line of process "nemesis", type
 * "info", f "start-<fault>" / "stop-<fault>", with what was done as value;
 * the final heal is f "heal". */
#ifndef TKVJ_NEMESIS_H
#define TKVJ_NEMESIS_H

struct tkvj_run;

/* "partition,kill" -> TKVJ_NEM_* bits; "none" or "" is 0. 0 or -1 (an
 * unknown name, printed to stderr). */
int tkvj_nemesis_parse(const char *list, unsigned *mask);

/* Start the nemesis threads for r->o.nemesis. 0 or -1. */
int tkvj_nemesis_start(struct tkvj_run *r);

/* After r->stop: wait for the threads (each heals its own fault), then
 * heal everything: network, paused nodes, stopped nodes, skewed clocks,
 * removed members. Returns 0 when every node is back as a voter. */
int tkvj_nemesis_heal(struct tkvj_run *r);

#endif /* TKVJ_NEMESIS_H */
