#!/usr/bin/env bash
# The benchmarks of bench/RESULTS.md, in one run on this machine, on the
# paths a user takes, each beside the peer a user would pick instead:
#
#   echo     `httpq serve --echo --threads 1` and the README's example app
#            vs hyper 1.x: a 13-byte POST echo, plain and pipelined x16
#   static   `httpq serve DIR --threads 1` (open-file cache on, and off)
#            vs nginx (1 worker, sendfile on, access_log off; and with
#            open_file_cache on): GET of a 1 KiB file
#   large    a 1 GiB file through curl: httpq serve vs nginx
#   scaling  httpq serve --echo at --threads 1 and 2 (both cores shared
#            with wrk: this machine has two)
#   callgrind instructions per request, echo pipelined x16 and plain,
#            httpq serve --echo vs hyper
#   disconnect  wait_for_disconnect latency with 10,000 connections open
#
# Servers are pinned to core 0 and wrk/curl to core 1 (except scaling).
# Rounds interleave the servers, alternating which goes first (the
# machine drifts between fast and slow phases); ratios are of medians.
# Env: ROUNDS (5), DUR (5 s), ONLY (comma list of sections).
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
need() { command -v "$1" >/dev/null || { echo "installing $2 (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk; need nginx nginx-light; need curl curl; need valgrind valgrind
(cd .. && cargo build --release -p httpq-cli && cargo build --release -p httpq-server --example echo)
cargo build --release --bins
ROUNDS=${ROUNDS:-5}
BODY="Hello, World!" # the echo's 13-byte POST body
DUR=${DUR:-5}
ONLY=${ONLY:-echo,static,large,scaling,callgrind,disconnect}
on() { [[ ",$ONLY," == *",$1,"* ]]; }
HTTPQ=$here/../target/release/httpq
EXAMPLE=$here/../target/release/examples/echo
work=$(mktemp -d); chmod 755 "$work"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=$work/samples

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
median() { sort -g | awk '{a[NR]=$1} END { if (NR == 0) { print 0; exit } print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start NAME PORT: starts server NAME on PORT (pinned to core 0 unless
# PIN is empty), sets $pid.
start() {
  local name=$1 port=$2 pin=${PIN-0}
  local run=(); [ -n "$pin" ] && run=(taskset -c "$pin")
  case $name in
    httpq-echo)    "${run[@]}" "$HTTPQ" serve --echo --threads 1 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
    httpq-echo-2)  "$HTTPQ" serve --echo --threads 2 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
    readme-app)    "${run[@]}" "$EXAMPLE" $port >/dev/null 2>&1 & ;;
    hyper-echo)    "${run[@]}" ./target/release/echo-hyper $port >/dev/null 2>&1 & ;;
    httpq-static)  "${run[@]}" "$HTTPQ" serve "$work/www" --threads 1 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
    httpq-static-nocache) "${run[@]}" "$HTTPQ" serve "$work/www" --threads 1 --file-cache 0 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
    nginx|nginx-ofc)
      local conf=$work/$name.conf cache=""
      [ "$name" = nginx-ofc ] && cache="open_file_cache max=1000 inactive=60s; open_file_cache_valid 1s;"
      cat >"$conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/$name.pid;
error_log $work/$name.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  $cache
  server { listen 127.0.0.1:$port; root $work/www; }
}
NGINX
      "${run[@]}" nginx -c "$conf" >/dev/null 2>&1 & ;;
  esac
  pid=$!
  wait_port "$port"
  # CPU is read from the process that serves: nginx's worker, not its master.
  cpid=$pid
  if [[ $name == nginx* ]]; then cpid=$(pgrep -P "$pid" | head -1); fi
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }

# load SECTION SERVER MODE PATH: one wrk run against a running server;
# records req/s and server CPU per request.
load() {
  local section=$1 srv=$2 mode=$3 path=$4 port=$5 args=()
  case $mode in
    post) args=(-s pipeline.lua -- 1 "$BODY") ;;
    post16) args=(-s pipeline.lua -- 16 "$BODY") ;;
    get) args=() ;;
  esac
  local wrkpin=(taskset -c 1); [ -z "${PIN-0}" ] && wrkpin=()
  local t0 t1 res rps n us
  t0=$(cpu_ticks "$cpid")
  res=$("${wrkpin[@]}" wrk -t1 -c64 -d"${DUR}"s "http://127.0.0.1:$port$path" "${args[@]}")
  t1=$(cpu_ticks "$cpid")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
  n=$(awk '/requests in/ {print $1}' <<<"$res")
  us=$(awk -v t=$((t1 - t0)) -v n="$n" 'BEGIN { printf "%.2f", t / 100 / n * 1e6 }')
  grep -q "Non-2xx\|Socket errors" <<<"$res" && echo "  (wrk: $(grep -E 'Non-2xx|Socket errors' <<<"$res" | tr -s ' '))"
  echo "  $section $srv $mode: $rps req/s, server cpu $us us/req"
  echo "$section $srv $mode $rps $us" >>"$out"
}

# rounds SECTION "SERVERS" "MODES" PATH
rounds() {
  local section=$1 servers=($2) modes=($3) path=$4
  for round in $(seq "$ROUNDS"); do
    local order=("${servers[@]}")
    if [ $((round % 2)) -eq 0 ]; then order=(); for ((i=${#servers[@]}-1; i>=0; i--)); do order+=("${servers[$i]}"); done; fi
    echo "round $round"
    for srv in "${order[@]}"; do
      local port; port=$(free_port)
      start "$srv" "$port"
      for mode in "${modes[@]}"; do load "$section" "$srv" "$mode" "$path" "$port"; done
      stop
    done
  done
}

# report SECTION MODE PEER SERVERS...: medians and ratios to PEER.
report() {
  local section=$1 mode=$2 peer=$3; shift 3
  local p; p=$(awk -v s=$section -v m=$mode -v v=$peer '$1==s && $2==v && $3==m {print $4}' "$out" | median)
  for srv in "$@"; do
    local q c; q=$(awk -v s=$section -v m=$mode -v v=$srv '$1==s && $2==v && $3==m {print $4}' "$out" | median)
    c=$(awk -v s=$section -v m=$mode -v v=$srv '$1==s && $2==v && $3==m {print $5}' "$out" | median)
    awk -v s=$section -v m=$mode -v v=$srv -v q="$q" -v c="$c" -v p="$p" -v peer=$peer 'BEGIN {
      printf "  %-8s %-7s %-22s %9.0f req/s  (%5.2f us cpu/req)  %5.2fx %s\n", s, m, v, q, c, (p > 0 ? q / p : 0), peer }'
  done
}

mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k.bin"
summary=()

if on echo; then
  echo "== echo: 13-byte POST, plain and pipelined x16"
  rounds echo "httpq-echo readme-app hyper-echo" "post post16" /
  summary+=("$(report echo post hyper-echo httpq-echo readme-app hyper-echo)")
  summary+=("$(report echo post16 hyper-echo httpq-echo readme-app hyper-echo)")
fi

if on static; then
  echo "== static: GET of a 1 KiB file"
  rounds static "httpq-static httpq-static-nocache nginx nginx-ofc" "get" /1k.bin
  summary+=("$(report static get nginx httpq-static httpq-static-nocache nginx nginx-ofc)")
  summary+=("$(report static get nginx-ofc httpq-static)")
fi

if on large; then
  echo "== large: 1 GiB through curl"
  truncate -s 1G "$work/www/1g.bin"
  cat "$work/www/1g.bin" >/dev/null # the page cache is filled before anyone is timed
  for round in $(seq "$ROUNDS"); do
    order="httpq-static nginx"; [ $((round % 2)) -eq 0 ] && order="nginx httpq-static"
    for srv in $order; do
      port=$(free_port); start "$srv" "$port"
      bps=$(taskset -c 1 curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/1g.bin")
      echo "  large $srv: $(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }') GB/s"
      echo "large $srv get $bps 0" >>"$out"
      stop
    done
  done
  summary+=("$(report large get nginx httpq-static nginx | sed 's/req\/s/B\/s  /')")
  rm -f "$work/www/1g.bin"
fi

if on scaling; then
  echo "== scaling: httpq serve --echo, 1 and 2 workers (not pinned; wrk shares the cores)"
  PIN="" rounds scaling "httpq-echo httpq-echo-2" "post post16" /
  summary+=("$(report scaling post httpq-echo httpq-echo httpq-echo-2)")
  summary+=("$(report scaling post16 httpq-echo httpq-echo httpq-echo-2)")
fi

if on callgrind; then
  echo "== callgrind: instructions per request (user space, whole run / requests)"
  for mode in post16 post; do
    for srv in httpq-echo hyper-echo; do
      port=$(free_port)
      case $srv in
        httpq-echo) valgrind --tool=callgrind --callgrind-out-file="$work/cg.$srv.$mode" "$HTTPQ" serve --echo --threads 1 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
        hyper-echo) valgrind --tool=callgrind --callgrind-out-file="$work/cg.$srv.$mode" ./target/release/echo-hyper $port >/dev/null 2>&1 & ;;
      esac
      pid=$!; wait_port "$port"
      args=(-s pipeline.lua -- 1 "$BODY"); [ $mode = post16 ] && args=(-s pipeline.lua -- 16 "$BODY")
      res=$(wrk -t1 -c16 -d5s "http://127.0.0.1:$port/" "${args[@]}")
      n=$(awk '/requests in/ {print $1}' <<<"$res")
      kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
      ir=$(awk '/^summary:/ {print $2} /^totals:/ {print $2}' "$work/cg.$srv.$mode" | head -1)
      echo "  callgrind $srv $mode: $n requests, $ir instructions, $(awk -v i="$ir" -v n="$n" 'BEGIN { printf "%.0f", i / n }') per request"
      echo "callgrind $srv $mode $(awk -v i="$ir" -v n="$n" 'BEGIN { printf "%.0f", i / n }') 0" >>"$out"
    done
  done
  summary+=("$(report callgrind post16 hyper-echo httpq-echo | sed 's/req\/s/instr\/req/')")
  summary+=("$(report callgrind post hyper-echo httpq-echo | sed 's/req\/s/instr\/req/')")
fi

echo
echo "== medians over $ROUNDS rounds (ratio to the peer named on each line)"
printf '%s\n' "${summary[@]}"

if on disconnect; then
  echo
  echo "== disconnect latency, 10,000 connections open, workers on both cores"
  ulimit -n 65536 2>/dev/null || true
  ./target/release/disconnect-latency 10000 2000
fi
