#!/usr/bin/env bash
# Run a local tuplekv cluster on 127.0.0.1.
#
#   deploy/cluster.sh up [N]     build if needed, start N nodes (default 3):
#                                bootstrap on first start, plain restart after
#   deploy/cluster.sh down       SIGTERM every node, SIGKILL after 10 s
#   deploy/cluster.sh wipe       down, then delete the data
#   deploy/cluster.sh status     one line per node
#   deploy/cluster.sh start I | stop I | kill I | pause I | resume I | logs I
#   deploy/cluster.sh add I      start node I and join it to the cluster
#   deploy/cluster.sh remove I   remove node I from the membership, stop it
#
# Node I has id I, client port TUPLEKV_CLIENT_PORT+I-1 (default 7001...),
# raft port TUPLEKV_RAFT_PORT+I-1 (default 9001...), and keeps its data, log
# and pid in $TUPLEKV_CLUSTER_DIR/nodeI (default ./.cluster/nodeI).
# Status and the first command use `tuplekv-node --probe`, a minimal client
# built into the node binary that prints replies as JSON.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${TUPLEKV_CLUSTER_DIR:-./.cluster}
CPORT=${TUPLEKV_CLIENT_PORT:-7001}
RPORT=${TUPLEKV_RAFT_PORT:-9001}
BIN=${TUPLEKV_BIN:-$ROOT/build/bin/tuplekv-node}
EXTRA=${TUPLEKV_NODE_FLAGS:-}

die() { echo "cluster.sh: $*" >&2; exit 1; }
client_addr() { echo "127.0.0.1:$((CPORT + $1 - 1))"; }
raft_addr() { echo "127.0.0.1:$((RPORT + $1 - 1))"; }
node_dir() { echo "$DIR/node$1"; }
check_index() { [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] || die "need a node number, got '${1:-}'"; }

known_nodes() {
    local d
    for d in "$DIR"/node*; do
        if [ -d "$d" ] && [ ! -e "$d/removed" ]; then
            echo "${d##*/node}"
        fi
    done | sort -n
}

# PID of node I if it is running (and really is our node process).
node_pid() {
    local f pid
    f="$(node_dir "$1")/pid"
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--id $1 " || return 1
    echo "$pid"
}

build() {
    if [ ! -x "$BIN" ]; then
        "$ROOT/deploy/install-deps.sh"
        (cd "$ROOT" && cmake -S . -B build >/dev/null && cmake --build build -j "$(nproc)")
    fi
    [ -x "$BIN" ] || die "no $BIN after building"
}

# start_node I [extra flags...]
start_node() {
    local i=$1 d pid
    shift
    if pid=$(node_pid "$i"); then
        echo "node $i already running (pid $pid)"
        return 0
    fi
    d=$(node_dir "$i")
    mkdir -p "$d"
    # shellcheck disable=SC2086
    nohup "$BIN" --id "$i" --raft-address "$(raft_addr "$i")" \
        --client-address "$(client_addr "$i")" --data-dir "$d/data" \
        $EXTRA "$@" >>"$d/log" 2>&1 </dev/null &
    echo $! > "$d/pid"
    sleep 0.2
    if ! node_pid "$i" >/dev/null; then
        tail -n 5 "$d/log" >&2
        die "node $i did not start (see $d/log)"
    fi
    echo "node $i started (pid $(cat "$d/pid")), clients on $(client_addr "$i")"
}

signal_node() {
    local pid
    if pid=$(node_pid "$1"); then
        kill "-$2" "$pid"
        return 0
    fi
    return 1
}

stop_node() {
    local i=$1 pid n=0
    pid=$(node_pid "$i") || { echo "node $i not running"; return 0; }
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        n=$((n + 1))
        if [ "$n" -ge 100 ]; then
            echo "node $i did not stop in 10 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$(node_dir "$i")/pid"
    echo "node $i stopped"
}

probe() { "$BIN" --probe "$@"; }

status_line() {
    local i=$1 pid json
    if ! pid=$(node_pid "$i"); then
        echo "node $i: down"
        return
    fi
    if json=$(timeout 5 "$BIN" --probe "$(client_addr "$i")" status 2>/dev/null); then
        python3 - "$i" "$pid" "$json" <<'PY'
import json, sys
i, pid, s = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"node {i}: pid {pid} {s['role']:<9} term {s['term']} leader {s['leader_id']} "
      f"({s['leader_address']}) commit {s['commit_index']} applied {s['applied_index']} "
      f"snapshot {s['snapshot_index']} keys {s['keys']} conns {s['connections']}")
PY
    else
        echo "node $i: pid $pid, not answering"
    fi
}

# Wait until every running node answers and agrees on a leader.
wait_ready() {
    local deadline=$((SECONDS + ${1:-60})) i ok leader l
    while [ $SECONDS -lt $deadline ]; do
        ok=1
        leader=""
        for i in $(known_nodes); do
            node_pid "$i" >/dev/null || continue
            l=$(timeout 5 "$BIN" --probe "$(client_addr "$i")" status 2>/dev/null |
                python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["leader_address"] or "")' 2>/dev/null) || l=""
            if [ -z "$l" ] || { [ -n "$leader" ] && [ "$l" != "$leader" ]; }; then
                ok=0
            fi
            leader=$l
        done
        if [ $ok = 1 ] && [ -n "$leader" ]; then
            echo "$leader"
            return 0
        fi
        sleep 0.3
    done
    return 1
}

any_client() {
    local i
    for i in $(known_nodes); do
        if node_pid "$i" >/dev/null; then
            client_addr "$i"
            return 0
        fi
    done
    return 1
}

cmd=${1:-}
shift || true
case "$cmd" in
    up)
        n=${1:-3}
        [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "up: N must be a number"
        build
        existing=$(known_nodes)
        if [ -n "$existing" ]; then
            # A cluster lives here already: restart its members as they are.
            [ -z "${1:-}" ] || echo "cluster exists in $DIR: restarting its nodes (N ignored)"
            for i in $existing; do
                start_node "$i"
            done
            n=$(echo "$existing" | wc -l)
        else
            boot=""
            for i in $(seq 1 "$n"); do
                boot="$boot${boot:+,}$i=$(raft_addr "$i")=$(client_addr "$i")"
            done
            for i in $(seq 1 "$n"); do
                start_node "$i" --bootstrap "$boot"
            done
            existing=$(seq 1 "$n")
        fi
        leader=$(wait_ready 60) || die "no leader after 60 s (see $DIR/node*/log)"
        echo
        echo "cluster up: $n nodes, leader at $leader"
        for i in $existing; do
            echo "  node $i: clients $(client_addr "$i"), raft $(raft_addr "$i"), data $(node_dir "$i")/data"
        done
        echo
        first=$(echo "$existing" | head -n 1)
        last=$(echo "$existing" | tail -n 1)
        echo "try:"
        ctl="$(dirname "$BIN")/tuplekvctl"
        if [ -x "$ctl" ]; then
            eps=""
            for i in $(known_nodes); do eps="$eps${eps:+,}$(client_addr "$i")"; done
            echo "  $ctl -e $eps set '[\"hello\",1]' '{\"msg\":\"world\"}'"
            echo "  $ctl -e $eps get '[\"hello\",1]'"
        else
            echo "  $BIN --probe $(client_addr "$first") set '[\"hello\",1]' '{\"msg\":\"world\"}'"
            echo "  $BIN --probe $(client_addr "$last") get '[\"hello\",1]'"
        fi
        echo "  $0 status"
        ;;
    down)
        for i in $(known_nodes); do
            node_pid "$i" >/dev/null && stop_node "$i"
        done
        true
        ;;
    wipe)
        "$0" down
        rm -rf "$DIR"
        echo "wiped $DIR"
        ;;
    status)
        for i in $(known_nodes); do
            status_line "$i"
        done
        ;;
    start)
        check_index "${1:-}"
        build
        start_node "$1"
        ;;
    stop)
        check_index "${1:-}"
        stop_node "$1"
        ;;
    kill)
        check_index "${1:-}"
        signal_node "$1" KILL && rm -f "$(node_dir "$1")/pid" && echo "node $1 killed" || echo "node $1 not running"
        ;;
    pause)
        check_index "${1:-}"
        signal_node "$1" STOP && echo "node $1 paused" || echo "node $1 not running"
        ;;
    resume)
        check_index "${1:-}"
        signal_node "$1" CONT && echo "node $1 resumed" || echo "node $1 not running"
        ;;
    logs)
        check_index "${1:-}"
        tail -n "${LINES_SHOWN:-100}" "$(node_dir "$1")/log"
        ;;
    add)
        check_index "${1:-}"
        build
        via=$(any_client) || die "add: no running node to join"
        if [ -e "$(node_dir "$1")/removed" ]; then
            # a removed member comes back as a new one: fresh data
            rm -rf "$(node_dir "$1")"
        fi
        start_node "$1" --join "$via"
        deadline=$((SECONDS + 120))
        until probe "$(client_addr "$1")" members 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)["members"]
sys.exit(0 if any(x["id"] == int(sys.argv[1]) and x["role"] == "voter" and x["client_address"] for x in m) else 1)' "$1"; do
            [ $SECONDS -lt $deadline ] || die "node $1 did not become a voter in 120 s"
            sleep 0.5
        done
        echo "node $1 joined as a voter"
        ;;
    remove)
        check_index "${1:-}"
        via=""
        for i in $(known_nodes); do
            if [ "$i" != "$1" ] && node_pid "$i" >/dev/null; then
                via=$(client_addr "$i")
                break
            fi
        done
        [ -n "$via" ] || die "remove: no other running node"
        probe "$via" remove "$1" >/dev/null || die "remove $1 failed"
        stop_node "$1"
        touch "$(node_dir "$1")/removed"
        echo "node $1 removed"
        ;;
    *)
        sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
        [ -z "$cmd" ] || exit 2
        ;;
esac
