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
DUR=${DUR:-10}
run_server() { taskset -c 0 "./target/release/$1" "$2" >/dev/null & echo $!; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
for round in $(seq "${ROUNDS:-3}"); do
  for srv in plaintext-httpq plaintext-hyper; do
    port=$((18100 + RANDOM % 800))
    pid=$(run_server "$srv" "$port"); wait_port "$port"
    plain=$(taskset -c 1 wrk -t1 -c64 -d${DUR}s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    piped=$(taskset -c 1 wrk -t1 -c64 -d${DUR}s -s pipeline.lua "http://127.0.0.1:$port/" -- 16 | awk '/Requests\/sec/ {print $2}')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "round $round  $srv  plain=$plain req/s  pipelined16=$piped req/s"
  done
done
./target/release/disconnect-latency 10000 2000
