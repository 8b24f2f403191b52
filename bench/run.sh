#!/usr/bin/env bash
# Runs the server benchmarks of bench/RESULTS.md in one go on this machine:
# plaintext (wrk, with and without pipelining depth 16, server pinned to
# core 0 and wrk to core 1) for httpq through the request-queue API and for
# a minimal hyper 1.x server built in the same run; then disconnect latency
# with 10,000 connections open.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)"; apt-get update -qq && apt-get install -y -qq wrk
fi
cargo build --release --bins
DUR=${DUR:-5}
run_server() { taskset -c 0 "./target/release/$1" "$2" >/dev/null & echo $!; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# Rounds interleave the two servers, alternating which goes first (the
# machine drifts between fast and slow phases lasting seconds); ratios are
# of medians over all rounds. Server CPU time per request (user+sys, from
# /proc) is reported beside throughput.
out=$(mktemp)
cpu_us() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "${ROUNDS:-8}"); do
  order="plaintext-httpq plaintext-hyper"
  [ $((round % 2)) -eq 0 ] && order="plaintext-hyper plaintext-httpq"
  for srv in $order; do
    port=$((18100 + RANDOM % 800))
    pid=$(run_server "$srv" "$port"); wait_port "$port"
    for mode in plain pipelined16; do
      script=(); [ "$mode" = pipelined16 ] && script=(-s pipeline.lua)
      t0=$(cpu_us "$pid")
      res=$(taskset -c 1 wrk -t1 -c64 -d${DUR}s "${script[@]}" "http://127.0.0.1:$port/" ${script:+-- 16})
      t1=$(cpu_us "$pid")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
      n=$(awk '/requests in/ {print $1}' <<<"$res")
      us=$(awk -v t=$((t1 - t0)) -v n="$n" 'BEGIN { printf "%.2f", t / 100 / n * 1e6 }')
      echo "round $round  $srv  $mode  $rps req/s  cpu ${us} us/req"
      echo "$srv $mode $rps $us" >>"$out"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
median() { sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
echo "medians over ${ROUNDS:-8} rounds:"
for mode in plain pipelined16; do
  q=$(awk -v m=$mode '$1=="plaintext-httpq" && $2==m {print $3}' "$out" | median)
  h=$(awk -v m=$mode '$1=="plaintext-hyper" && $2==m {print $3}' "$out" | median)
  qc=$(awk -v m=$mode '$1=="plaintext-httpq" && $2==m {print $4}' "$out" | median)
  hc=$(awk -v m=$mode '$1=="plaintext-hyper" && $2==m {print $4}' "$out" | median)
  awk -v m=$mode -v q="$q" -v h="$h" -v qc="$qc" -v hc="$hc" 'BEGIN {
    printf "  %-12s httpq %9.0f req/s (%.2f us cpu)  hyper %9.0f req/s (%.2f us cpu)  throughput ratio %.2fx  cpu ratio %.2fx\n", m, q, qc, h, hc, q / h, hc / qc }'
done
rm -f "$out"
./target/release/disconnect-latency 10000 2000
