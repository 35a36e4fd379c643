#!/usr/bin/env bash
# Measure issue 6's snapshot, restart and failover targets on a fresh
# three-node cluster with 1M keys, and write results/<date>-targets.md.
#
#   bench/targets.sh
#
# Steps (about 3-4 minutes here):
#   build tuplekv-node and tuplekv-recovery (BUILD_DIR), copy the node binary
#   into the scratch dir (a rebuild during the run cannot swap it), start the
#   cluster with deploy/cluster.sh on 127.0.0.1, then with tuplekv-recovery:
#   1. load KEYS keys (KEY_SIZE-byte keys, VAL_SIZE-byte values)
#   2. restart: the whole cluster, SIGKILL, before any snapshot (log only)
#   3. snapshot: CLIENTS writers for SNAP_SECONDS; write p99 inside the
#      nodes' snapshot windows against outside     (target: <= 2x)
#   4. restart: a follower (SIGKILL, SIGTERM), the whole cluster (SIGTERM,
#      SIGKILL), now with a snapshot on disk     (target: serves in <= 2 s)
#   5. failover: CLIENTS writers, SIGKILL the leader FAILOVER_ROUNDS times
#                                                (target: writes in <= 1.5 s)
# Everything it started is stopped on exit (success, error or ^C).
#
# Knobs (environment): KEYS, KEY_SIZE, VAL_SIZE, CLIENTS, SNAP_SECONDS,
# FAILOVER_ROUNDS, STEPS (a subset of "cold snapshot restart failover"; the
# load always runs), KEEP_TRACES=1 (per-write traces of the snapshot and
# failover steps into the results, ~4 MB), TKV_NODE_FLAGS (extra
# tuplekv-node flags, e.g. "--election-timeout-ms 500"), BASE_PORT (clients
# BASE_PORT.., raft BASE_PORT+100..; default 27001), BUILD_DIR, SCRATCH (a
# dir under /dev/shm takes the disk out), KEEP_SCRATCH=1, RESULTS_DIR,
# LIBRAFT_TRACE=1 (raft's own trace into the node logs; slows the nodes:
# for diagnosis, not for figures).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-rec}
KEYS=${KEYS:-1000000}
KEY_SIZE=${KEY_SIZE:-25}
VAL_SIZE=${VAL_SIZE:-100}
CLIENTS=${CLIENTS:-32}
SNAP_SECONDS=${SNAP_SECONDS:-100}
FAILOVER_ROUNDS=${FAILOVER_ROUNDS:-5}
STEPS=${STEPS:-cold snapshot restart failover}
BASE_PORT=${BASE_PORT:-27001}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
STAMP=$(date -u +%Y-%m-%d-%H%M)
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/tuplekv-targets.XXXXXX)}
OUT=$RESULTS_DIR/$STAMP-targets
MD=$RESULTS_DIR/$STAMP-targets.md

export TUPLEKV_CLUSTER_DIR=$SCRATCH/cluster
export TUPLEKV_CLIENT_PORT=$BASE_PORT
export TUPLEKV_RAFT_PORT=$((BASE_PORT + 100))
export TUPLEKV_BIN=$SCRATCH/bin/tuplekv-node
export TUPLEKV_NODE_FLAGS=${TKV_NODE_FLAGS:-}
CLUSTER=$ROOT/deploy/cluster.sh
REC=$BUILD_DIR/bin/tuplekv-recovery

cleanup() {
    "$CLUSTER" down >/dev/null 2>&1 || true
    if [ "${KEEP_SCRATCH:-0}" != 1 ]; then
        rm -rf "$SCRATCH"
    else
        echo "scratch kept in $SCRATCH"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*"; }

log "build in $BUILD_DIR"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD_DIR" -j 2 --target tuplekv-node tuplekv-recovery >/dev/null
mkdir -p "$SCRATCH/bin" "$OUT"
cp "$BUILD_DIR/bin/tuplekv-node" "$TUPLEKV_BIN"

# Every tuplekv-recovery run: its stdout to the terminal and OUT/NAME.txt,
# its figures to OUT/NAME.json.
rec() {
    local name=$1
    shift
    log "$name"
    # a missed target is a figure, not a failure: carry on
    if ! "$REC" --cluster-dir "$TUPLEKV_CLUSTER_DIR" --client-port "$BASE_PORT" \
        --cluster-sh "$CLUSTER" --keys "$KEYS" --key-size "$KEY_SIZE" \
        --val-size "$VAL_SIZE" --json "$OUT/$name.json" "$@" |
        tee "$OUT/$name.txt"; then
        log "$name: tuplekv-recovery exited non-zero (see above)"
    fi
}

T0=$SECONDS
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "changed files in the tree: $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)"
    echo "cpus: $(nproc); memory: $(free -m | awk '/^Mem/ {print $2}') MB"
    echo "node flags: ${TUPLEKV_NODE_FLAGS:-(defaults)}"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/meta.txt"

log "cluster up in $TUPLEKV_CLUSTER_DIR (clients $BASE_PORT.., raft $TUPLEKV_RAFT_PORT..)"
"$CLUSTER" up 3 > "$OUT/cluster-up.txt" 2>&1

step() { [[ " $STEPS " == *" $1 "* ]]; }
rec load load
if step cold; then
    rec restart-cold-all-kill restart --target all --signal KILL --timeout 90
fi
if step snapshot; then
    rec snapshot snapshot --clients "$CLIENTS" --duration "$SNAP_SECONDS" \
        --trace "$SCRATCH/snapshot-trace.txt"
fi
if step restart; then
    rec restart-follower-kill restart --target follower --signal KILL
    rec restart-follower-term restart --target follower --signal TERM
    rec restart-all-term restart --target all --signal TERM
    rec restart-all-kill restart --target all --signal KILL
fi
if step failover; then
    rec failover failover --clients "$CLIENTS" --repeat "$FAILOVER_ROUNDS" \
        --trace "$SCRATCH/failover-trace.txt"
fi

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/meta.txt"
echo "run time: $((SECONDS - T0)) s" >> "$OUT/meta.txt"
for i in 1 2 3; do
    cp "$TUPLEKV_CLUSTER_DIR/node$i/log" "$OUT/node$i.log"
done
gzip -f "$OUT"/node*.log
if [ "${KEEP_TRACES:-0}" = 1 ]; then
    for f in "$SCRATCH"/*-trace.txt; do
        [ -e "$f" ] && gzip -c "$f" > "$OUT/$(basename "$f").gz"
    done
fi

python3 - "$OUT" "$MD" <<'PY'
import json, os, sys

out, md = sys.argv[1], sys.argv[2]
def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def la(d):
    a, b = d.get("loadavg_start"), d.get("loadavg_end")
    return f"{a[0]:.1f}-{b[0]:.1f}" if a and b else "?"
def s(v):
    return "not reached" if v is None or v < 0 else f"{v:.2f} s"

meta = open(os.path.join(out, "meta.txt")).read().strip().splitlines()
L = [f"# Issue 6 targets: snapshot, restart, failover ({os.path.basename(out)})", ""]
L += ["Made by `bench/targets.sh` (tuplekv-recovery, `bench/recovery.c`); raw "
      f"outputs and node logs in `{os.path.basename(out)}/`.", ""]
L += ["| condition | value |", "|---|---|"]
for m in meta:
    k, _, v = m.partition(": ")
    L.append(f"| {k} | {v} |")
ld = load("load")
if ld:
    l = ld["load"]
    L.append(f"| data | {l['keys']:,} keys, {ld['key_size']}-byte keys "
             f"(one-part, tuplekv-bench put's), {ld['val_size']}-byte values; loaded "
             f"at {l['keys_per_s']:,.0f} keys/s in atomic batches of 500 |")
L.append("| cluster | 3 nodes on 127.0.0.1, one data dir each on the same disk, "
         "node defaults unless `node flags` says otherwise |")
L.append("")

sn = load("snapshot")
if sn:
    r = sn["snapshot"]
    ps = r["per_second_p99_ms"]
    L += ["## (a) Write p99 while a snapshot of 1M keys runs (target: at most 2x)", ""]
    L += [f"{sn['clients']} writers in flight (closed loop, one client handle), "
          f"uniform over the {sn['keys']:,} keys, {sn['duration_s']:.0f} s, "
          f"load average {la(sn)}. A snapshot window runs from the fork to the "
          "end of raft's put (file written, fsynced, old files deleted), on any "
          "node; writes overlapping one count as during, writes within 0.2 s "
          "before / 1 s after one are left out, the rest is the baseline. "
          f"Leader elections during the run: {r['leader_elections']}.", ""]
    L += ["| writes | ok | p50 | p99 | max |", "|---|---|---|---|---|"]
    for name in ("baseline", "during_snapshot", "near_snapshot"):
        x = r[name]
        L.append(f"| {name.replace('_', ' ')} | {x['ok']:,} | {x['p50_ms']:.2f} ms "
                 f"| {x['p99_ms']:.2f} ms | {x['max_ms']:.1f} ms |")
    verdict = ("no snapshot during the run: raise SNAP_SECONDS"
               if r["merged_windows"] == 0 else
               "met" if r["p99_ratio"] <= 2 else "missed")
    L += ["", f"**p99 during / baseline: {r['p99_ratio']:.1f}x** "
          f"({verdict}). Per second: "
          f"median p99 {ps['baseline']['median']:.1f} ms in "
          f"{ps['baseline']['seconds']} clean seconds, "
          f"{ps['during_snapshot']['median']:.1f} ms in "
          f"{ps['during_snapshot']['seconds']} seconds with a snapshot "
          f"(ratio {ps['during_snapshot']['median'] / max(ps['baseline']['median'], 1e-9):.1f}x).", ""]
    L += ["| node | index | at | fork pause | hand-over | file written | put done |",
          "|---|---|---|---|---|---|---|"]
    for w in r["windows"]:
        L.append(f"| {w['node']} | {w['index']} | {w['start_s']:.1f} s | "
                 f"{w['fork_pause_ms']:.0f} ms | {s(w['handover_s'])} | "
                 f"{s(w['written_s'])} | {s(w['put_done_s'])} |")
    L.append("")

rows = []
for name, what in (("restart-cold-all-kill", "whole cluster, SIGKILL, log only (no snapshot yet)"),
                   ("restart-follower-kill", "follower, SIGKILL"),
                   ("restart-follower-term", "follower, SIGTERM"),
                   ("restart-all-term", "whole cluster, SIGTERM"),
                   ("restart-all-kill", "whole cluster, SIGKILL")):
    d = load(name)
    if not d:
        continue
    bf = d["before"]
    for n in d["nodes"]:
        rows.append(f"| {what} | {n['node']} | {bf['commit_index'] - bf['snapshot_index']} "
                    f"| {s(n['stop_s'])} | {s(n['raft_started_s'])} | {s(n['listening_s'])} "
                    f"| {s(n['eventual_any_s'])} | {s(n['leader_known_s'])} "
                    f"| {s(n['caught_up_s'])} | {s(n['strong_read_s'])} | {s(n['write_s'])} | {la(d)} |")
if rows:
    L += ["## (b) A restarted node with 1M keys serves again (target: within 2 s)", ""]
    L += ["No client load. Times from the node process's start (/proc, 10 ms "
          "resolution): raft started (snapshot and log loaded, state restored; "
          "from the node log), answering (first status reply), eventual read "
          "(first eventual get of a loaded key answered *found* by that node), "
          "leader known (node log), caught up (applied the leader's commit "
          "index from before the stop, incl. a marker write made just before), "
          "strong read / write (first to succeed through that node's endpoint "
          "alone, redirects followed). Entries to replay: leader's commit "
          "index minus its last snapshot index before the stop.", ""]
    L += ["| what | node | entries after snapshot | stop took | raft started | answering | "
          "eventual read | leader known | caught up | strong read | write | load avg |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows + [""]

fo = load("failover")
if fo:
    f = fo["failover"]
    L += ["## (c) Writes after SIGKILL of the leader (target: within 1.5 s)", ""]
    L += [f"{fo['clients']} writers in flight, SIGKILL of the leader "
          f"{len(f['rounds'])} times, the old leader restarted and caught up "
          f"between rounds, load average {la(fo)}. First write: the first "
          "acknowledged more than 100 ms after the kill (earlier acks were "
          "answered by the old leader before it died: no election is that fast).", ""]
    fa, el = f["first_ack_s"], f["elected_s"]
    L += [f"**kill -> first write acknowledged: min {fa['min']:.2f} s, median "
          f"{fa['median']:.2f} s, max {fa['max']:.2f} s** "
          f"({'met' if 0 <= fa['max'] <= 1.5 else 'missed'}); kill -> new leader "
          f"(its log line): min {el['min']:.2f} s, median {el['median']:.2f} s, "
          f"max {el['max']:.2f} s.", ""]
    L += ["| round | killed | new leader | elected | leader seen by poll | first write | "
          "slowest write across the kill | old leader: raft started | caught up |",
          "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(f["rounds"], 1):
        rs = r["restart"]
        L.append(f"| {i} | {r['killed']} | {r['new_leader']} | {s(r['elected_s'])} | "
                 f"{s(r['leader_seen_s'])} | {s(r['first_ack_s'])} | "
                 f"{r['slowest_write_s']:.2f} s | {s(rs['raft_started_s'])} | "
                 f"{s(rs['caught_up_s'])} |")
    L.append("")
open(md, "w").write("\n".join(L) + "\n")
print("wrote", md)
PY
log "done in $((SECONDS - T0)) s: $MD"
