# Throughput and p99 latency against concurrency, one row per workload.
#
#   gnuplot -c bench/plot.gp DATA_DIR OUT.png "TITLE"
#
# DATA_DIR holds one file per system and workload, named
# <system>__<workload>.dat, written by bench/compare.sh, with the columns
#   concurrency  ops_per_s  p50_ms  p99_ms
# Workloads: put, range-l (strong reads), range-s (eventual reads); Redis's
# SET is plotted with put and its GET with both reads; Redis's pipelined
# runs (-c conns -P C/conns) are dashed.
dir = ARG1
out = ARG2
title = (ARGC >= 3) ? ARG3 : "tuplekv vs etcd vs Redis"

set terminal pngcairo size 1400,1200 font ",10"
set output out
set datafile missing "-"
set logscale x 2
set xtics (1, 4, 16, 64, 256)
set xrange [0.8:320]
set grid
set key top left font ",8"

systems = "tuplekv etcd redis-aof-always redis-aof-always-pipelined redis-no-persist redis-no-persist-pipelined"
labels  = "tuplekv(3-node) etcd(3-node) redis(fsync-always,-P1) redis(fsync-always,pipelined) redis(no-persistence,-P1) redis(no-persistence,pipelined)"
workloads = "put range-l range-s"
wtitles = "puts reads-strong/linearizable reads-eventual/serializable"

# the file of system s for workload w
file(s, w) = dir . "/" . s . "__" . w . ".dat"
# pipelined Redis runs dashed
dash(j) = (j > 2 && j % 2 == 0) ? 2 : 1

set multiplot layout 3,2 title title
do for [i = 1:3] {
    w = word(workloads, i)
    set title word(wtitles, i) . ": throughput"
    set ylabel "ops/s"
    set logscale y 10
    set xlabel "requests in flight"
    plot for [j = 1:6] file(word(systems, j), w) using 1:2 \
         with linespoints lw 2 dt dash(j) title word(labels, j)
    set title word(wtitles, i) . ": p99 latency"
    set ylabel "p99 ms"
    plot for [j = 1:6] file(word(systems, j), w) using 1:4 \
         with linespoints lw 2 dt dash(j) title word(labels, j)
}
unset multiplot
