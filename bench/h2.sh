#!/usr/bin/env bash
# HTTPS and HTTP/2 serving against the peers a user would pick instead,
# in one run, as ratios (issue 14). Every server runs on core 0 with one
# worker (httpq serve DIR --threads 1, nghttpd, nginx worker_processes 1);
# the load runs on core 1.
#   h2       h2load -n N -c 64 -m 16 -t 1, GET of a 99-byte file, over h2c
#            (prior knowledge) and over TLS: httpq vs nghttpd vs nginx
#   https    wrk -t1 -c64, keep-alive HTTPS GET of a 1 KiB file (HTTP/1.1
#            over TLS): httpq vs nginx
#   hs       full TLS handshakes: h2load --h1 -n H -c H (one request per
#            connection, no resumption): httpq vs nginx
#   cg       callgrind instructions per h2c request (server process,
#            CG_N requests, minus an idle start): httpq vs nghttpd
# Env: ROUNDS (3), N (1000000), H (2000), DUR (5), CG_N (50000),
#      ONLY (h2,https,hs,cg).
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
need() { command -v "$1" >/dev/null || { echo "installing $2 (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need h2load nghttp2-client; need nghttpd nghttp2-server; need nginx nginx-light
need wrk wrk; need valgrind valgrind; need openssl openssl
(cd .. && cargo build --release -p httpq-cli)
HTTPQ=$here/../target/release/httpq
ROUNDS=${ROUNDS:-3}; N=${N:-1000000}; H=${H:-2000}; DUR=${DUR:-5}; CG_N=${CG_N:-50000}
ONLY=${ONLY:-h2,https,hs,cg}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
chmod 755 "$work"  # nginx workers run as another user
head -c 99 /dev/zero | tr '\0' 'a' > "$work/www/f99.txt"
head -c 1024 /dev/zero | tr '\0' 'b' > "$work/www/f1k.txt"
# One certificate for every server: EC P-256, as most sites use now.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
median() { sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
nginx_conf() { # PORT MODE(h2c|tls)
  local listen="$1 http2"; [[ $2 == tls ]] && listen="$1 ssl http2"
  cat > "$work/nginx-$1.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx-$1.pid;
error_log /dev/null;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  http2_max_requests 100000000;
  server {
    listen 127.0.0.1:$listen;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_session_cache off;
    ssl_session_tickets off;
    root $work/www;
  }
}
EOF
  echo "$work/nginx-$1.conf"
}
start() { # SERVER MODE PORT [wrapper...]
  local srv=$1 mode=$2 port=$3; shift 3
  case $srv/$mode in
    httpq/h2c) taskset -c 0 "$@" "$HTTPQ" serve "$work/www" --listen "127.0.0.1:$port" --threads 1 >/dev/null 2>&1 & ;;
    httpq/tls) taskset -c 0 "$@" "$HTTPQ" serve "$work/www" --listen "127.0.0.1:$port" --threads 1 \
                 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >/dev/null 2>&1 & ;;
    nghttpd/h2c) taskset -c 0 "$@" nghttpd --no-tls -d "$work/www" "$port" >/dev/null 2>&1 & ;;
    nghttpd/tls) taskset -c 0 "$@" nghttpd -d "$work/www" "$port" "$work/key.pem" "$work/cert.pem" >/dev/null 2>&1 & ;;
    nginx/*) taskset -c 0 nginx -c "$(nginx_conf "$port" "$mode")" >/dev/null 2>&1 & ;;
  esac
  wait_port "$port"
}
stop() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; sleep 0.3; }
url() { [[ $1 == tls ]] && echo "https://127.0.0.1:$2" || echo "http://127.0.0.1:$2"; }
summary=()

if want h2; then
  for mode in h2c tls; do
    echo "== h2load -n $N -c 64 -m 16 -t 1, 99-byte file, $mode, $ROUNDS rounds"
    : > "$work/h2.$mode"
    for r in $(seq "$ROUNDS"); do
      for srv in httpq nghttpd nginx; do
        port=$(free_port); start "$srv" "$mode" "$port"
        rps=$(taskset -c 1 h2load -n "$N" -c 64 -m 16 -t 1 "$(url "$mode" "$port")/f99.txt" 2>&1 |
              awk '/^finished in/ {print $4} /^requests:/ {if ($8+0 != '"$N"') print "FAILED", $0 > "/dev/stderr"}')
        echo "$srv $rps" | tee -a "$work/h2.$mode"; stop
      done
    done
    m() { awk -v s="$1" '$1==s {print $2}' "$work/h2.$mode" | median; }
    q=$(m httpq); g=$(m nghttpd); x=$(m nginx)
    summary+=("h2 $mode req/s median: httpq $q, nghttpd $g, nginx $x; httpq/nghttpd $(awk -v a="$q" -v b="$g" 'BEGIN{printf "%.2f", a/b}'), httpq/nginx $(awk -v a="$q" -v b="$x" 'BEGIN{printf "%.2f", a/b}')")
  done
fi

if want https; then
  echo "== wrk -t1 -c64 -d${DUR}s, HTTPS keep-alive GET of 1 KiB, $ROUNDS rounds"
  : > "$work/https"
  for r in $(seq "$ROUNDS"); do
    for srv in httpq nginx; do
      port=$(free_port); start "$srv" tls "$port"
      rps=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "https://127.0.0.1:$port/f1k.txt" | awk '/Requests\/sec/ {print $2}')
      echo "$srv $rps" | tee -a "$work/https"; stop
    done
  done
  q=$(awk '$1=="httpq"{print $2}' "$work/https" | median); x=$(awk '$1=="nginx"{print $2}' "$work/https" | median)
  summary+=("https 1 KiB keep-alive req/s median: httpq $q, nginx $x; httpq/nginx $(awk -v a="$q" -v b="$x" 'BEGIN{printf "%.2f", a/b}')")
fi

# CPU seconds (every thread) of the processes whose command line matches $1.
cpu_of() { local t=0; for pid in $(pgrep -f "$1"); do for f in /proc/$pid/task/*/schedstat; do
  t=$((t + $(cut -d' ' -f1 "$f" 2>/dev/null || echo 0))); done; done; echo "$t"; }
if want hs; then
  echo "== full handshakes: h2load --h1 -n $H -c $H -t 1 (one request per connection), $ROUNDS rounds"
  echo "   (the load generator's half of each handshake costs about the server's, so the"
  echo "    wall rate is the client's; handshakes per server CPU second is the server's)"
  : > "$work/hs"
  for r in $(seq "$ROUNDS"); do
    for srv in httpq nginx; do
      port=$(free_port); start "$srv" tls "$port"
      pat="$HTTPQ serve"; [[ $srv == nginx ]] && pat="nginx: worker process"
      c0=$(cpu_of "$pat")
      rps=$(taskset -c 1 h2load --h1 -n "$H" -c "$H" -t 1 "https://127.0.0.1:$port/f99.txt" 2>&1 | awk '/^finished in/ {print $4}')
      c1=$(cpu_of "$pat")
      per_cpu=$(awk -v n="$H" -v ns=$((c1 - c0)) 'BEGIN{printf "%.0f", n / (ns / 1e9)}')
      echo "$srv $rps $per_cpu" | tee -a "$work/hs"; stop
    done
  done
  q=$(awk '$1=="httpq"{print $2}' "$work/hs" | median); x=$(awk '$1=="nginx"{print $2}' "$work/hs" | median)
  qc=$(awk '$1=="httpq"{print $3}' "$work/hs" | median); xc=$(awk '$1=="nginx"{print $3}' "$work/hs" | median)
  summary+=("full handshakes/s (wall, client-bound) median: httpq $q, nginx $x; httpq/nginx $(awk -v a="$q" -v b="$x" 'BEGIN{printf "%.2f", a/b}')")
  summary+=("full handshakes per server CPU second median: httpq $qc, nginx $xc; httpq/nginx $(awk -v a="$qc" -v b="$xc" 'BEGIN{printf "%.2f", a/b}')")
fi

if want cg; then
  echo "== callgrind: instructions per h2c request ($CG_N requests, -c 8 -m 16)"
  for srv in httpq nghttpd; do
    for n in 0 "$CG_N"; do
      port=$(free_port)
      start "$srv" h2c "$port" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$srv.$n"
      if (( n > 0 )); then h2load -n "$n" -c 8 -m 16 -t 1 "http://127.0.0.1:$port/f99.txt" >/dev/null 2>&1; fi
      # httpq ends on SIGINT; nghttpd only on SIGTERM. Either way callgrind
      # writes its counts at the exit.
      pkill -INT -f "callgrind-out-file=$work/cg.$srv.$n" || true; sleep 1
      pkill -TERM -f "callgrind-out-file=$work/cg.$srv.$n" || true; wait 2>/dev/null || true
    done
    total() { grep -h '^summary:' "$work"/cg."$srv"."$1"* | awk '{s+=$2} END {print s}'; }
    echo "$srv $(( ($(total "$CG_N") - $(total 0)) / CG_N ))" | tee -a "$work/cg"
  done
  q=$(awk '$1=="httpq"{print $2}' "$work/cg"); g=$(awk '$1=="nghttpd"{print $2}' "$work/cg")
  summary+=("h2c instructions/request: httpq $q, nghttpd $g; httpq/nghttpd $(awk -v a="$q" -v b="$g" 'BEGIN{printf "%.2f", a/b}')")
fi

echo "== summary"
printf '%s\n' "${summary[@]}"
