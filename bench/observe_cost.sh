#!/usr/bin/env bash
# What metrics, state and the access log cost when nobody scrapes or logs:
# `httpq serve` built from BASE (before they existed) against this tree,
# on the fast paths (`httpq serve DIR` GET of a 1 KiB file, and
# `httpq serve --echo` POSTs pipelined x16), one worker pinned to core 0,
# wrk on core 1, alternating rounds; plus callgrind instructions per
# request for both builds. Also the same tree with --access-log, for what
# logging costs when it is on.
#
#   bash bench/observe_cost.sh            # BASE=2bc29a2 ROUNDS=5 DUR=5
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
need() { command -v "$1" >/dev/null || { echo "installing $2 (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk; need valgrind valgrind
BASE=${BASE:-2bc29a2}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
BODY="Hello, World!"
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; git -C "$here/.." worktree remove --force "$work/base" 2>/dev/null || true; rm -rf "$work"' EXIT
out=$work/samples

(cd .. && cargo build --release -p httpq-cli)
git -C .. worktree add -q --detach "$work/base" "$BASE"
(cd "$work/base" && CARGO_TARGET_DIR=${BASE_TARGET:-/tmp/httpq-base-target} cargo build --release -p httpq-cli)
declare -A BIN=([base]=${BASE_TARGET:-/tmp/httpq-base-target}/release/httpq [head]=$here/../target/release/httpq [head-log]=$here/../target/release/httpq)

mkdir -p "$work/www"; head -c 1024 /dev/urandom >"$work/www/1k.bin"
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
median() { sort -g | awk '{a[NR]=$1} END { if (NR == 0) { print 0; exit } print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }

# serve BUILD MODE PORT [WRAPPER...]: starts the server, sets $pid.
serve() {
  local build=$1 mode=$2 port=$3; shift 3
  local args=(serve --threads 1 --listen 127.0.0.1:$port)
  case $mode in static) args+=("$work/www") ;; echo) args+=(--echo) ;; esac
  [ "$build" = head-log ] && args+=(--access-log "$work/access.log")
  "$@" "${BIN[$build]}" "${args[@]}" >/dev/null 2>&1 &
  pid=$!
  wait_port "$port"
}

wrk_args() { case $1 in static) echo "/1k.bin" ;; echo) echo "/ -s pipeline.lua -- 16 $BODY" ;; esac; }

echo "== wrk: req/s, $ROUNDS rounds of ${DUR}s, builds alternating"
for round in $(seq "$ROUNDS"); do
  builds=(base head head-log); [ $((round % 2)) -eq 0 ] && builds=(head-log head base)
  for mode in static echo; do
    for b in "${builds[@]}"; do
      port=$(free_port)
      serve "$b" "$mode" "$port" taskset -c 0
      read -r path rest <<<"$(wrk_args $mode)"
      # shellcheck disable=SC2086
      res=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}"s "http://127.0.0.1:$port$path" $rest)
      kill "$pid"; wait "$pid" 2>/dev/null || true
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
      echo "  round $round $mode $b: $rps req/s"
      echo "wrk $mode $b $rps" >>"$out"
    done
  done
done

echo "== callgrind: instructions per request, net of start-up (a run with no requests is subtracted)"
# cg_run BUILD MODE SECS: prints "requests instructions".
cg_run() {
  local b=$1 mode=$2 secs=$3 port n=0 path rest res
  port=$(free_port)
  serve "$b" "$mode" "$port" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$mode.$b.$secs"
  if [ "$secs" != 0 ]; then
    read -r path rest <<<"$(wrk_args $mode)"
    # shellcheck disable=SC2086
    res=$(wrk -t1 -c16 -d"${secs}"s "http://127.0.0.1:$port$path" $rest)
    n=$(awk '/requests in/ {print $1}' <<<"$res")
  fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  echo "$n $(awk '/^summary:/ {print $2} /^totals:/ {print $2}' "$work/cg.$mode.$b.$secs" | head -1)"
}
for mode in static echo; do
  for b in base head head-log; do
    read -r _ idle < <(cg_run "$b" "$mode" 0)
    read -r n ir < <(cg_run "$b" "$mode" 5)
    per=$(awk -v i="$ir" -v z="$idle" -v n="$n" 'BEGIN { printf "%.0f", (i - z) / n }')
    echo "  $mode $b: $n requests, $per instructions per request"
    echo "cg $mode $b $per" >>"$out"
  done
done

echo
echo "== medians (ratio to base)"
for kind in wrk cg; do
  for mode in static echo; do
    b=$(awk -v k=$kind -v m=$mode '$1==k && $2==m && $3=="base" {print $4}' "$out" | median)
    for build in base head head-log; do
      v=$(awk -v k=$kind -v m=$mode -v x=$build '$1==k && $2==m && $3==x {print $4}' "$out" | median)
      awk -v k=$kind -v m=$mode -v x=$build -v v="$v" -v b="$b" 'BEGIN {
        unit = (k == "wrk") ? "req/s" : "instr/req"
        printf "  %-4s %-7s %-9s %10.0f %-9s %6.3fx base\n", k, m, x, v, unit, (b > 0 ? v / b : 0) }'
    done
  done
done
