#!/usr/bin/env bash
# tuplekv against etcd 3.4 and Redis 7 on this machine, in one command.
#
#   bench/compare.sh            everything: install, build, start, measure,
#                               stop, write bench/results/<date>.md + .png
#
# What it does:
#   1. installs from Debian what is missing: tuplekv's build deps
#      (deploy/install-deps.sh), etcd-server, etcd-client, golang-go,
#      golang-etcd-server-dev, dpkg-dev, redis-server, redis-tools,
#      gnuplot-nox (no service is started by the install);
#   2. builds tuplekv-node and tuplekv-bench in $BUILD_DIR (build-bench), and
#      etcd's own benchmark tool (tools/benchmark of Debian's etcd source
#      package, fetched with `apt-get source --download-only` through a
#      private deb-src list made from this machine's Debian URI) offline, in
#      GOPATH mode, against golang-etcd-server-dev; cached in $CACHE_DIR;
#   3. starts, on 127.0.0.1 with all data in one scratch dir on one disk: a
#      three-node tuplekv cluster (deploy/cluster.sh), a three-member etcd
#      cluster, Redis with appendonly + appendfsync always, and Redis with
#      no persistence;
#   4. for each concurrency and workload runs the systems back to back (so
#      each ratio compares figures taken moments apart): tuplekv-bench, then
#      etcd's benchmark with the same flags, then redis-benchmark twice with
#      the same number in flight: -c C -P 1 (unpipelined) and -c CONNS
#      -P C/CONNS (pipelined per connection as tuplekv-bench's client is);
#   5. stops everything it started (also on error or ^C) and writes the
#      table, the target check and the plot.
#
# Workloads: put (256-byte values, 100k keys), range --consistency l
# (strong / linearizable reads of one key), range --consistency s (eventual
# / serializable). Redis: SET for put, GET for reads.
#
# Knobs (environment):
#   CONCURRENCY="1 16 64 256"   requests in flight (--clients, redis -c)
#   WORKLOADS="put range-l range-s"
#   POINT_SECONDS=4             length of one measured run
#   REPEAT=2                    runs per point (order reversed every other)
#   CONNS=1                     --conns for tuplekv-bench and etcd (a number,
#                               or "auto": one per 64 in flight)
#   VAL_SIZE=256 KEY_SIZE=8 KEY_SPACE=100000
#   SYSTEMS="tuplekv etcd redis-aof-always redis-no-persist"
#   BUILD_DIR=<repo>/build-bench  CACHE_DIR=~/.cache/tuplekv-bench
#   SCRATCH=<dir>               data dirs (default: a new dir in /var/tmp)
#   KEEP_SCRATCH=1              keep data and logs after the run
#   RESULTS_DIR=<repo>/bench/results
#   TKV_NODE_FLAGS="..."        extra tuplekv-node flags (cluster.sh)
# Ports: tuplekv clients 31001-31003, raft 31101-31103; etcd clients
# 32379/32381/32383, peers 32380/32382/32384; Redis 36379 and 36380.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# debian_uri comes from lib.sh
# shellcheck source=deploy/lib.sh
. "$ROOT/deploy/lib.sh"
CONCURRENCY=${CONCURRENCY:-"1 16 64 256"}
WORKLOADS=${WORKLOADS:-"put range-l range-s"}
POINT_SECONDS=${POINT_SECONDS:-4}
REPEAT=${REPEAT:-2}
CONNS=${CONNS:-1}
VAL_SIZE=${VAL_SIZE:-256}
KEY_SIZE=${KEY_SIZE:-8}
KEY_SPACE=${KEY_SPACE:-100000}
SYSTEMS=${SYSTEMS:-"tuplekv etcd redis-aof-always redis-no-persist"}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tuplekv-bench}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}

TKV_CPORT=31001
TKV_RPORT=31101
ETCD_PORTS=(32379 32381 32383) # client ports; peer = client + 1
REDIS_AOF_PORT=36379
REDIS_MEM_PORT=36380

STAMP=$(date +%Y-%m-%d-%H%M)
OUT_MD=$RESULTS_DIR/$STAMP.md
OUT_PNG=$RESULTS_DIR/$STAMP.png
RAW=$RESULTS_DIR/$STAMP # raw outputs, one file per run, and the TSV
T0=$SECONDS

log() { printf '[compare %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $SYSTEMS " == *" $1 "* ]]; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# ---- 1. packages -------------------------------------------------------------

have_pkg() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

install_packages() {
    local pkgs=(etcd-server etcd-client golang-go golang-etcd-server-dev
                dpkg-dev redis-server redis-tools gnuplot-nox python3)
    local missing=() p made_policy=0
    "$ROOT/deploy/install-deps.sh" >&2
    for p in "${pkgs[@]}"; do
        have_pkg "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    log "installing ${missing[*]}"
    # Debian starts etcd and redis services on install; we start our own.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null || {
        [ $made_policy = 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
        die "apt-get install failed"
    }
    [ $made_policy = 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
}

# ---- 2. builds ----------------------------------------------------------------

build_tuplekv() {
    log "building tuplekv-node and tuplekv-bench in $BUILD_DIR"
    # -Wno-error=maybe-uninitialized: gcc 12 -O2 false positives elsewhere in
    # the tree must not stop a measurement.
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_FLAGS="-Wno-error=maybe-uninitialized" >/dev/null
    cmake --build "$BUILD_DIR" -j "$(nproc)" \
        --target tuplekv-node tuplekv-bench >"$RAW/build-tuplekv.log" 2>&1 ||
        { tail -n 30 "$RAW/build-tuplekv.log" >&2; die "tuplekv build failed"; }
}

# etcd's tools/benchmark, from the source package matching etcd-server.
build_etcd_benchmark() {
    local srcver upver dir codename uri apt_opts gp
    srcver=$(dpkg-query -W -f='${source:Version}' etcd-server)
    upver=${srcver%-*}
    dir=$CACHE_DIR/etcd-$srcver
    ETCD_BENCH=$dir/bin/etcd-benchmark
    if [ -x "$ETCD_BENCH" ]; then
        log "etcd benchmark: cached $ETCD_BENCH"
        return
    fi
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/dl"
    # shellcheck disable=SC1091
    . /etc/os-release
    codename=${VERSION_CODENAME:-bookworm}
    uri=$(debian_uri)
    [ -n "$uri" ] || die "no Debian source entry to derive a deb-src entry from"
    # A private source list: the machine's apt configuration is not touched.
    cat >"$dir/apt/deb-src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_opts=(-o "Dir::Etc::SourceList=$dir/apt/deb-src.sources"
              -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$dir/apt/lists"
              -o "Dir::Cache=$dir/apt/cache"
              -o "APT::Sandbox::User=root")
    log "etcd benchmark: fetching source etcd $srcver from $uri ($codename)"
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$dir/dl" && apt-get "${apt_opts[@]}" source --download-only \
        "etcd=$srcver" >"$dir/fetch.log" 2>&1) ||
        { tail -n 5 "$dir/fetch.log" >&2; die "apt-get source etcd failed"; }
    rm -rf "$dir/src"
    dpkg-source -x "$dir/dl/etcd_$srcver.dsc" "$dir/src" >/dev/null 2>&1 ||
        tar -xzf "$dir/dl/etcd_$upver.orig.tar.gz" -C "$dir" --transform "s,^[^/]*,src,"
    [ -d "$dir/src/tools/benchmark" ] || die "no tools/benchmark in etcd $srcver"
    # GOPATH mode: the tool's own packages first, everything else from
    # Debian's /usr/share/gocode (golang-etcd-server-dev and its deps).
    gp=$dir/gopath
    rm -rf "$gp"
    mkdir -p "$gp/src/go.etcd.io/etcd/tools" "$dir/bin"
    cp -r "$dir/src/tools/benchmark" "$gp/src/go.etcd.io/etcd/tools/"
    log "etcd benchmark: go build (offline, GOPATH mode)"
    (cd "$gp/src/go.etcd.io/etcd/tools/benchmark" &&
        env GOPATH="$gp:/usr/share/gocode" GO111MODULE=off GOPROXY=off \
            GOFLAGS= GOCACHE="$dir/gocache" go build -o "$ETCD_BENCH" . ) \
        >"$dir/build.log" 2>&1 ||
        { tail -n 20 "$dir/build.log" >&2; die "building etcd's benchmark failed"; }
}

# ---- 3. systems -------------------------------------------------------------------

PIDS=()        # etcd and redis processes we started
TKV_UP=0

tkv_env() {
    env TUPLEKV_CLUSTER_DIR="$SCRATCH/tuplekv" TUPLEKV_CLIENT_PORT=$TKV_CPORT \
        TUPLEKV_RAFT_PORT=$TKV_RPORT TUPLEKV_BIN="$BUILD_DIR/bin/tuplekv-node" \
        TUPLEKV_NODE_FLAGS="${TKV_NODE_FLAGS:-}" "$@"
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    if [ $TKV_UP = 1 ]; then
        tkv_env "$ROOT/deploy/cluster.sh" down >/dev/null 2>&1 || true
    fi
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do # 10 s in all for a clean stop, then SIGKILL
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ -n "${SCRATCH:-}" ] && [ -d "$SCRATCH" ]; then
        if [ "${KEEP_SCRATCH:-0}" = 1 ] || [ $rc -ne 0 ]; then
            log "data and logs kept in $SCRATCH"
        else
            rm -rf "$SCRATCH"
        fi
    fi
    exit $rc
}

port_free() { ! ss -Htln "sport = :$1" | grep -q .; }

start_tuplekv() {
    local p
    for p in $TKV_CPORT $((TKV_CPORT + 1)) $((TKV_CPORT + 2)) \
             $TKV_RPORT $((TKV_RPORT + 1)) $((TKV_RPORT + 2)); do
        port_free "$p" || die "port $p is in use"
    done
    log "starting tuplekv (3 nodes)"
    TKV_UP=1
    tkv_env "$ROOT/deploy/cluster.sh" up 3 >"$RAW/tuplekv-up.log" 2>&1 ||
        { cat "$RAW/tuplekv-up.log" >&2; die "tuplekv cluster did not start"; }
    TKV_ENDPOINTS="127.0.0.1:$TKV_CPORT,127.0.0.1:$((TKV_CPORT + 1)),127.0.0.1:$((TKV_CPORT + 2))"
}

start_etcd() {
    local i c cluster="" eps=""
    for i in 0 1 2; do
        c=${ETCD_PORTS[$i]}
        if ! port_free "$c" || ! port_free $((c + 1)); then
            die "port $c or $((c + 1)) is in use"
        fi
        cluster="$cluster${cluster:+,}m$i=http://127.0.0.1:$((c + 1))"
        eps="$eps${eps:+,}127.0.0.1:$c"
    done
    log "starting etcd (3 members)"
    for i in 0 1 2; do
        c=${ETCD_PORTS[$i]}
        mkdir -p "$SCRATCH/etcd"
        etcd --name "m$i" --data-dir "$SCRATCH/etcd/m$i" \
            --listen-client-urls "http://127.0.0.1:$c" \
            --advertise-client-urls "http://127.0.0.1:$c" \
            --listen-peer-urls "http://127.0.0.1:$((c + 1))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((c + 1))" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token tuplekv-compare \
            --logger zap --log-level warn \
            >"$SCRATCH/etcd/m$i.log" 2>&1 </dev/null &
        PIDS+=($!)
        disown $! # stopped by pid in cleanup; no job notices
    done
    ETCD_ENDPOINTS=$eps
    for _ in $(seq 100); do
        if ETCDCTL_API=3 etcdctl --endpoints="$eps" endpoint health >/dev/null 2>&1; then
            return
        fi
        sleep 0.3
    done
    tail -n 5 "$SCRATCH"/etcd/m*.log >&2
    die "etcd cluster not healthy after 30 s"
}

start_redis() { # NAME PORT persistence-flags...
    local name=$1 port=$2
    shift 2
    port_free "$port" || die "port $port is in use"
    mkdir -p "$SCRATCH/$name"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$SCRATCH/$name" \
        --daemonize no --protected-mode no --save '' "$@" \
        >"$SCRATCH/$name/log" 2>&1 </dev/null &
    PIDS+=($!)
    disown $!
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "redis ($name) did not start"
}

# ---- 4. measuring --------------------------------------------------------------

# One result line: repetition system workload concurrency ops/s p50_ms p99_ms
# raw-file
TSV=""
REP=1
emit() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$REP" "$@" >>"$TSV"; }

conns_for() {
    local c=$1
    if [ "$CONNS" = auto ]; then
        echo $(( c >= 64 ? c / 64 : 1 ))
    else
        echo $(( CONNS < c ? CONNS : c ))
    fi
}

# etcd-style summary (tuplekv-bench and etcd's tool print the same one)
parse_summary() { # FILE -> "ops/s p50_ms p99_ms"
    awk '
        /Requests\/sec:/ { rps = $2 }
        /^ *50% in/ { p50 = $3 * 1000 }
        /^ *99% in/ { p99 = $3 * 1000 }
        END { if (rps == "") rps = "-"; if (p50 == "") p50 = "-"; if (p99 == "") p99 = "-";
              printf "%s %s %s\n", rps, p50, p99 }' "$1"
}

run_tuplekv() { # WORKLOAD C
    local wl=$1 c=$2 f args
    f=$RAW/tuplekv__${wl}__c$c.r$REP.txt
    args=(--endpoints="$TKV_ENDPOINTS" --conns="$(conns_for "$c")" --clients="$c")
    case $wl in
        put) args+=(put --key-size="$KEY_SIZE" --val-size="$VAL_SIZE" --key-space-size="$KEY_SPACE") ;;
        range-l) args+=(range --consistency=l --key-size="$KEY_SIZE" --val-size="$VAL_SIZE") ;;
        range-s) args+=(range --consistency=s --key-size="$KEY_SIZE" --val-size="$VAL_SIZE") ;;
    esac
    "$BUILD_DIR/bin/tuplekv-bench" "${args[@]}" --precise --duration="${POINT_SECONDS}s" \
        --json="${f%.txt}.json" >"$f" 2>"${f%.txt}.err" || log "tuplekv-bench $wl c=$c failed"
    # shellcheck disable=SC2046
    emit tuplekv "$wl" "$c" $(parse_summary "$f") "$(basename "$f")"
}

ETCD_KEY=""
etcd_prepare_key() {
    # the key the range runs read: --key-size bytes, a --val-size value
    ETCD_KEY=$(printf '%*s' "$KEY_SIZE" '' | tr ' ' 'k')
    head -c "$VAL_SIZE" /dev/zero | tr '\0' 'v' |
        ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" put "$ETCD_KEY" >/dev/null
}

etcd_cmd() { # WORKLOAD C TOTAL -> runs etcd's benchmark
    local wl=$1 c=$2 total=$3
    local g=(--endpoints="$ETCD_ENDPOINTS" --target-leader --precise
             --conns="$(conns_for "$c")" --clients="$c")
    case $wl in
        put) "$ETCD_BENCH" "${g[@]}" put --key-size="$KEY_SIZE" --val-size="$VAL_SIZE" \
                 --key-space-size="$KEY_SPACE" --total="$total" ;;
        range-l) "$ETCD_BENCH" "${g[@]}" range "$ETCD_KEY" --consistency=l --total="$total" ;;
        range-s) "$ETCD_BENCH" "${g[@]}" range "$ETCD_KEY" --consistency=s --total="$total" ;;
    esac
}

# etcd's tool has no --duration: a short probe run sizes --total so the run
# takes about POINT_SECONDS.
run_etcd() { # WORKLOAD C
    local wl=$1 c=$2 f probe total rps
    f=$RAW/etcd__${wl}__c$c.r$REP.txt
    probe=$(( c * 20 > 200 ? c * 20 : 200 ))
    rps=$(etcd_cmd "$wl" "$c" "$probe" 2>/dev/null | awk '/Requests\/sec:/ { print int($2) }')
    total=$(( ${rps:-100} * POINT_SECONDS ))
    [ "$total" -ge $((c * 10)) ] || total=$((c * 10))
    etcd_cmd "$wl" "$c" "$total" >"$f" 2>"${f%.txt}.err" || log "etcd benchmark $wl c=$c failed"
    # the tool's progress bar writes \r-separated updates to stdout
    tr '\r' '\n' <"$f" | grep -v -e 'Bom' -e '^ *[0-9]* / [0-9]*' >"$f.tmp" && mv "$f.tmp" "$f"
    # shellcheck disable=SC2046
    emit etcd "$wl" "$c" $(parse_summary "$f") "$(basename "$f")"
}

redis_cmd() { # PORT TEST CONNECTIONS PIPELINE N
    redis-benchmark -h 127.0.0.1 -p "$1" -t "$2" -c "$3" -P "$4" -n "$5" \
        -d "$VAL_SIZE" -r "$KEY_SPACE" --csv 2>/dev/null
}

# Two shapes of the same C in flight: unpipelined (-c C -P 1, system NAME)
# and pipelined like tuplekv-bench (-c conns -P C/conns, NAME-pipelined;
# the same run as the unpipelined one when C/conns is 1).
run_redis() { # NAME PORT WORKLOAD C
    local name=$1 port=$2 wl=$3 c=$4 op shape conns pipe sys f probe rps total line
    op="set"
    [ "$wl" = put ] || op="get"
    conns=$(conns_for "$c")
    for shape in unpipelined pipelined; do
        if [ $shape = unpipelined ]; then
            sys=$name; pipe=1; f=$RAW/${name}__${op}__c$c.r$REP.txt
            set -- "$c" 1
        else
            sys=$name-pipelined; pipe=$((c / conns))
            f=$RAW/${name}__${op}__c${conns}xP$pipe.r$REP.txt
            if [ "$pipe" -le 1 ]; then
                # shellcheck disable=SC2046
                emit "$sys" "$op" "$c" $(tail -n 1 "$TSV" | cut -f5-8)
                continue
            fi
            set -- "$conns" "$pipe"
        fi
        probe=$(( c * 20 > 200 ? c * 20 : 200 ))
        rps=$(redis_cmd "$port" "$op" "$1" "$2" "$probe" | awk -F'"' 'NR == 2 { print int($4) }')
        total=$(( ${rps:-1000} * POINT_SECONDS ))
        [ "$total" -ge $((c * 10)) ] || total=$((c * 10))
        redis_cmd "$port" "$op" "$1" "$2" "$total" >"$f" ||
            log "redis-benchmark $name $op -c $1 -P $2 failed"
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        line=$(awk -F'"' 'NR == 2 { printf "%s %s %s", $4, $10, $14 }' "$f")
        # shellcheck disable=SC2086
        emit "$sys" "$op" "$c" ${line:-- - -} "$(basename "$f")"
    done
}

# ---- 5. report ----------------------------------------------------------------

write_report() {
    local md=$1 png=$2 meta=$3
    python3 - "$TSV" "$RAW" "$md" "$png" "$meta" <<'PY'
import os, sys
tsv, raw, md, png, meta = sys.argv[1:6]
runs = []
for line in open(tsv):
    rp, s, w, c, ops, p50, p99, f = line.rstrip("\n").split("\t")
    num = lambda x: float(x) if x not in ("-", "") else None
    runs.append(dict(rep=int(rp), sys=s, wl=w, c=int(c), ops=num(ops), p50=num(p50), p99=num(p99), f=f))

# one row per system, workload and concurrency: the mean of its runs, and
# the runs themselves (by repetition) for the per-run ratios
def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
rows = []
for key in sorted({(r["sys"], r["wl"], r["c"]) for r in runs}):
    rs = [r for r in runs if (r["sys"], r["wl"], r["c"]) == key]
    rows.append(dict(sys=key[0], wl=key[1], c=key[2], ops=mean(r["ops"] for r in rs),
                     p50=mean(r["p50"] for r in rs), p99=mean(r["p99"] for r in rs),
                     by_rep={r["rep"]: r for r in rs}))

def get(s, w, c):
    for r in rows:
        if r["sys"] == s and r["wl"] == w and r["c"] == c:
            return r
    return None

def per_run(t, p):
    """tuplekv ÷ other ops/s in each repetition both ran in."""
    out = []
    for k in sorted(t["by_rep"]):
        a, b = t["by_rep"][k]["ops"], p["by_rep"].get(k, {}).get("ops")
        if a is not None and b:
            out.append(a / b)
    return out

# what each tuplekv workload is compared with: (system, its workload)
peers = {
    "put": [("etcd", "put"), ("redis-aof-always", "set"), ("redis-aof-always-pipelined", "set"),
            ("redis-no-persist", "set"), ("redis-no-persist-pipelined", "set")],
    "range-l": [("etcd", "range-l"), ("redis-no-persist", "get"), ("redis-no-persist-pipelined", "get")],
    "range-s": [("etcd", "range-s"), ("redis-no-persist", "get"), ("redis-no-persist-pipelined", "get")],
}
wl_name = {"put": "put", "range-l": "range, strong (l)", "range-s": "range, eventual (s)",
           "set": "SET", "get": "GET"}
def peer_wl(s, pw):
    if not s.startswith("redis"):
        return pw
    return wl_name[pw] + (" -c conns -P C/conns" if s.endswith("-pipelined") else " -c C -P 1")
fmt = lambda x, d=1: "-" if x is None else f"{x:,.{d}f}"
def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"

concs = sorted({r["c"] for r in rows})
out = []
out.append(open(meta).read())
out.append("\n## Results\n")
reps = max(r["rep"] for r in runs)
out.append(f"Each figure is the mean of {reps} run(s) per point; `tuplekv ÷` is tuplekv's "
           "figure divided by this row's (ops/s: above 1 favours tuplekv; p99: below 1 "
           "favours tuplekv); `per run` gives the ops/s ratio of each pair of runs made "
           "back to back, so its spread shows the noise.\n")
for wl in ["put", "range-l", "range-s"]:
    if not any(r["sys"] == "tuplekv" and r["wl"] == wl for r in rows):
        continue
    out.append(f"\n### {wl_name[wl]}\n")
    out.append("| system | workload | concurrency | ops/s | p50 ms | p99 ms | tuplekv ÷ ops/s | per run | tuplekv ÷ p99 |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in concs:
        t = get("tuplekv", wl, c)
        if t is None:
            continue
        out.append(f"| **tuplekv** | {wl} | {c} | {fmt(t['ops'], 0)} | {fmt(t['p50'], 3)} | {fmt(t['p99'], 3)} | | | |")
        for s, pw in peers[wl]:
            p = get(s, pw, c)
            if p is None:
                continue
            out.append(f"| {s} | {peer_wl(s, pw)} | {c} | {fmt(p['ops'], 0)} | "
                       f"{fmt(p['p50'], 3)} | {fmt(p['p99'], 3)} | {ratio(t['ops'], p['ops'])} | "
                       f"{' / '.join(f'{x:.2f}' for x in per_run(t, p))} | {ratio(t['p99'], p['p99'])} |")

# the targets of issue 6
out.append("\n## Targets (issue 6)\n")
out.append("| target | concurrency: tuplekv ÷ other, mean (per-run range) | verdict (on the means) |")
out.append("|---|---|---|")
def target(label, wl, peer, pwl, want, cs, p99=False):
    parts, ok = [], True
    for c in cs:
        t, p = get("tuplekv", wl, c), get(peer, pwl, c)
        if t is None or p is None or t["ops"] is None or p["ops"] is None:
            parts.append(f"{c}: n/a"); ok = False; continue
        r = t["ops"] / p["ops"]
        pr = per_run(t, p)
        s = f"{c}: {r:.2f}x" + (f" ({min(pr):.2f}-{max(pr):.2f})" if len(pr) > 1 else "")
        good = r >= want
        if p99:
            s += f" (p99 {fmt(t['p99'], 2)} vs {fmt(p['p99'], 2)} ms)"
            good = good and t["p99"] is not None and p["p99"] is not None and t["p99"] <= p["p99"]
        parts.append(s); ok = ok and good
    verdict = "**met**" if ok else "not met"
    if all(x.endswith("n/a") for x in parts):
        verdict = "n/a"
    if not cs:
        parts, verdict = ["not measured"], "n/a"
    out.append(f"| {label} | {'; '.join(parts)} | {verdict} |")
big = [c for c in concs if c >= 64]
target("puts/s >= 5x etcd, p99 <= etcd's (64, 256 in flight)", "put", "etcd", "put", 5, big, p99=True)
target("puts/s >= 1x Redis appendfsync always, unpipelined", "put", "redis-aof-always", "set", 1, concs)
target("(for reference) puts/s >= 1x Redis appendfsync always, pipelined as tuplekv-bench", "put", "redis-aof-always-pipelined", "set", 1, concs)
target("strong reads/s >= 5x etcd linearizable", "range-l", "etcd", "range-l", 5, concs)
target("eventual reads/s >= 1x Redis GET, unpipelined (-c C -P 1)", "range-s", "redis-no-persist", "get", 1, concs)
target("eventual reads/s >= 1x Redis GET, pipelined as tuplekv-bench (-c conns -P C/conns)", "range-s", "redis-no-persist-pipelined", "get", 1, concs)

out.append(f"\n![throughput and p99 against concurrency]({os.path.basename(png)})\n")
out.append(f"\nRaw outputs (each tool's own summary, tuplekv-bench's JSON): `{os.path.basename(raw)}/`.\n")
open(md, "w").write("\n".join(out) + "\n")

# gnuplot data: <system>__<workload>.dat (Redis GET under both reads)
dat = os.path.join(raw, "plot")
os.makedirs(dat, exist_ok=True)
series = {}
for r in rows:  # the means
    keys = [r["wl"]]
    if r["wl"] == "set": keys = ["put"]
    if r["wl"] == "get": keys = ["range-l", "range-s"]
    for k in keys:
        series.setdefault((r["sys"], k), []).append(r)
for s in ["tuplekv", "etcd", "redis-aof-always", "redis-aof-always-pipelined",
          "redis-no-persist", "redis-no-persist-pipelined"]:
    for w in ["put", "range-l", "range-s"]:
        pts = sorted(series.get((s, w), []), key=lambda r: r["c"])
        with open(os.path.join(dat, f"{s}__{w}.dat"), "w") as fh:
            fh.write("# concurrency ops_per_s p50_ms p99_ms\n")
            if not pts:
                fh.write("1 - - -\n")
            for r in pts:
                fh.write(f"{r['c']} {r['ops'] if r['ops'] is not None else '-'} "
                         f"{r['p50'] if r['p50'] is not None else '-'} {r['p99'] if r['p99'] is not None else '-'}\n")
PY
    gnuplot -c "$ROOT/bench/plot.gp" "$RAW/plot" "$png" "tuplekv vs etcd 3.4 vs Redis 7 ($STAMP, $(nproc) cores)" 2>"$RAW/gnuplot.log" ||
        log "gnuplot failed (see $RAW/gnuplot.log)"
}

write_meta() {
    local meta=$1 rev dirty
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
    dirty=$(git -C "$ROOT" status --porcelain -- raft node statemachine proto client common 2>/dev/null | wc -l)
    {
        echo "# tuplekv vs etcd vs Redis: $STAMP"
        echo
        echo "Made by \`bench/compare.sh\`. Conditions:"
        echo
        echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); data of every system in one scratch dir on $(df --output=source "$SCRATCH" | tail -n 1) ($(df --output=fstype "$SCRATCH" | tail -n 1))"
        echo "- load average (1 min) before the run: $LOAD_BEFORE; during it: $(sort -n "$RAW/loadavg.txt" | head -n 1) to $(sort -n "$RAW/loadavg.txt" | tail -n 1) (other processes share these cores: the machine is noisy, so compare ratios within one run)"
        echo "- tuplekv $rev$([ "$dirty" -gt 0 ] && echo " + $dirty uncommitted changes in the node's folders"), 3 nodes via deploy/cluster.sh (node defaults${TKV_NODE_FLAGS:+ except: $TKV_NODE_FLAGS}), libraft $(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null), measured with tuplekv-bench"
        echo "- etcd $(etcd --version | awk '/etcd Version/ {print $3}') (Debian etcd-server $(dpkg-query -W -f='${Version}' etcd-server)), 3 members with default settings, measured with its own tools/benchmark (--target-leader)"
        echo "- Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') (Debian redis-server), single node: appendonly yes + appendfsync always, and no persistence; measured with redis-benchmark -r $KEY_SPACE -d $VAL_SIZE, unpipelined (-c C -P 1) and pipelined (-c CONNS -P C/CONNS, rows *-pipelined)"
        echo "- workloads: put with ${VAL_SIZE}-byte values, ${KEY_SIZE}-byte keys, $KEY_SPACE-key space; range = reads of one existing key; concurrency = requests in flight (--clients C, --conns $CONNS); about ${POINT_SECONDS} s per run (etcd and Redis: --total sized by a short probe run)"
        echo "- order: each point $REPEAT time(s), back to back: tuplekv, etcd, Redis; then Redis, etcd, tuplekv; ..."
    } >"$meta"
}

# ---- main -------------------------------------------------------------------------

mkdir -p "$RESULTS_DIR" "$RAW"
TSV=$RAW/results.tsv
: >"$TSV"
trap cleanup EXIT INT TERM

install_packages
build_tuplekv
has etcd && build_etcd_benchmark

SCRATCH=${SCRATCH:-$(mktemp -d /var/tmp/tuplekv-compare.XXXXXX)}
mkdir -p "$SCRATCH"
has tuplekv && start_tuplekv
has etcd && { start_etcd; etcd_prepare_key; }
has redis-aof-always && start_redis redis-aof-always $REDIS_AOF_PORT --appendonly yes --appendfsync always
has redis-no-persist && start_redis redis-no-persist $REDIS_MEM_PORT --appendonly no
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
: >"$RAW/loadavg.txt"

run_redis_all() { # WORKLOAD C: Redis SET with put, GET with range-s
    case $1 in
        put) has redis-aof-always && run_redis redis-aof-always $REDIS_AOF_PORT "$1" "$2"
             has redis-no-persist && run_redis redis-no-persist $REDIS_MEM_PORT "$1" "$2" ;;
        range-s) has redis-no-persist && run_redis redis-no-persist $REDIS_MEM_PORT "$1" "$2" ;;
    esac
    true
}

# Each point REPEAT times, the order reversed every other time (tuplekv,
# etcd, Redis, then Redis, etcd, tuplekv): drifts in the machine's load
# hit both sides alike, and the spread of the ratios shows the noise.
for c in $CONCURRENCY; do
    for wl in $WORKLOADS; do
        for REP in $(seq "$REPEAT"); do
            log "c=$c $wl, run $REP of $REPEAT (load $(cut -d' ' -f1 /proc/loadavg))"
            cut -d' ' -f1 /proc/loadavg >>"$RAW/loadavg.txt"
            if [ $((REP % 2)) = 1 ]; then
                has tuplekv && run_tuplekv "$wl" "$c"
                has etcd && run_etcd "$wl" "$c"
                run_redis_all "$wl" "$c"
            else
                run_redis_all "$wl" "$c"
                has etcd && run_etcd "$wl" "$c"
                has tuplekv && run_tuplekv "$wl" "$c"
            fi
            awk -F'\t' -v r="$REP" -v c="$c" -v w="$wl" '$1 == r && $4 == c && ($3 == w || (w == "put" && $3 == "set") || (w == "range-s" && $3 == "get"))' "$TSV" |
                cut -f2-7 | sed 's/^/    /' >&2
        done
    done
done

cut -d' ' -f1 /proc/loadavg >>"$RAW/loadavg.txt"
write_meta "$RAW/meta.md"
write_report "$OUT_MD" "$OUT_PNG" "$RAW/meta.md"
log "wrote $OUT_MD and $OUT_PNG"
