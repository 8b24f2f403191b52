#!/usr/bin/env bash
# Client benchmarks of bench/RESULTS.md, in one run on this machine:
#  1. download a 1 GiB file from nginx and from `httpq serve` with curl,
#     `httpq get`, the httpq-client library and reqwest;
#  2. 20,000 small keep-alive GETs, one after another on one connection,
#     with curl (URL globbing reuses the connection), the library and reqwest.
# Servers are pinned to core 0, clients to core 1. Prints medians of ROUNDS.
set -euo pipefail
cd "$(dirname "$0")"
need() { command -v "$1" >/dev/null || { echo "installing $2 (apt-get)"; apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx
need curl curl
ROUNDS=${ROUNDS:-3}
SMALL=${SMALL:-20000}
SIZE=${SIZE:-1G}
(cd .. && cargo build --release -q -p httpq-cli)
cargo build --release -q --bins
HTTPQ=../target/release/httpq
work=$(mktemp -d /tmp/httpq-client-bench.XXXX)
chmod 755 "$work"
mkdir -p "$work/www"
truncate -s "$SIZE" "$work/www/big.bin"
printf 'Hello, World!' > "$work/www/small.txt"
chmod -R a+rX "$work/www"

NGINX_PORT=$((19100 + RANDOM % 400)); HTTPQ_PORT=$((19600 + RANDOM % 400))
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$NGINX_PORT; root $work/www; }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf" &
NGINX_PID=$!
taskset -c 0 "$HTTPQ" serve "$work/www" --listen "127.0.0.1:$HTTPQ_PORT" >/dev/null &
HTTPQ_PID=$!
cleanup() { kill "$NGINX_PID" "$HTTPQ_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up"; return 1; }
wait_port "$NGINX_PORT"; wait_port "$HTTPQ_PORT"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bytes=$(stat -c %s "$work/www/big.bin")

# seconds -> GB/s for the big file
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.3f", b/s/1e9}'; }

declare -A results
for server in nginx httpq; do
  port=$NGINX_PORT; [ "$server" = httpq ] && port=$HTTPQ_PORT
  big="http://127.0.0.1:$port/big.bin"
  small="http://127.0.0.1:$port/small.txt"
  for client in curl httpq-get httpq-lib reqwest; do
    for r in $(seq "$ROUNDS"); do
      t0=$(now)
      case $client in
        curl) taskset -c 1 curl -s "$big" > /dev/null ;;
        httpq-get) taskset -c 1 "$HTTPQ" get -s "$big" > /dev/null ;;
        httpq-lib) taskset -c 1 ./target/release/client-httpq download "$big" > /dev/null ;;
        reqwest) taskset -c 1 ./target/release/client-reqwest download "$big" > /dev/null ;;
      esac
      t1=$(now)
      rate "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')"; echo
    done > "$work/dl"
    results["dl,$server,$client"]=$(median < "$work/dl")
    echo "download  from $server  $client: $(tr '\n' ' ' < "$work/dl") GB/s  median ${results["dl,$server,$client"]}"
  done
  for client in curl httpq-lib reqwest; do
    for r in $(seq "$ROUNDS"); do
      t0=$(now)
      case $client in
        curl) taskset -c 1 curl -s "$small?[1-$SMALL]" > /dev/null ;;
        httpq-lib) taskset -c 1 ./target/release/client-httpq small "$small" "$SMALL" > /dev/null ;;
        reqwest) taskset -c 1 ./target/release/client-reqwest small "$small" "$SMALL" > /dev/null ;;
      esac
      t1=$(now)
      awk -v n="$SMALL" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f\n", n/(b-a)}'
    done > "$work/sm"
    results["sm,$server,$client"]=$(median < "$work/sm")
    echo "small GETs to $server  $client: $(tr '\n' ' ' < "$work/sm") req/s  median ${results["sm,$server,$client"]}"
  done
done
echo
echo "ratios (median, httpq / peer):"
for server in nginx httpq; do
  awk -v s="$server" -v g="${results["dl,$server,httpq-get"]}" -v l="${results["dl,$server,httpq-lib"]}" \
      -v c="${results["dl,$server,curl"]}" -v q="${results["dl,$server,reqwest"]}" \
      'BEGIN {printf "  download from %s: httpq get / curl %.2f, library / reqwest %.2f\n", s, g/c, l/q}'
  awk -v s="$server" -v l="${results["sm,$server,httpq-lib"]}" -v c="${results["sm,$server,curl"]}" \
      -v q="${results["sm,$server,reqwest"]}" \
      'BEGIN {printf "  small GETs to %s: library / reqwest %.2f, library / curl %.2f\n", s, l/q, l/c}'
done
