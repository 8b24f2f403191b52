#!/usr/bin/env bash
# The C face's cost: the same hello-world server written against the HTTP
# Server API in C (bench/capi/hello.c, built with the C-API contract's
# command line) and against httpq-server's blocking Rust calls
# (crates/httpq-server/examples/hello_blocking.rs), each with THREADS
# consumer threads, measured in one run as ratios:
#   wrk      req/s, wrk -t1 -c50, rounds interleaved, servers on core 0
#   callgrind instructions per request (server process, N keep-alive
#            requests from one client)
# Env: ROUNDS (5), DUR (5 s), THREADS (2), N (20000).
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
need() { command -v "$1" >/dev/null || { echo "installing $2 (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk; need valgrind valgrind; need cc gcc
(cd .. && cargo build --release -p httpq-capi && cargo build --release -p httpq-server --example hello_blocking)
ROUNDS=${ROUNDS:-5}; DUR=${DUR:-5}; THREADS=${THREADS:-2}; N=${N:-20000}
lib=$here/../target/release
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cc -O2 -fshort-wchar -I ../crates/httpq-capi/include capi/hello.c -L "$lib" -lhttpq_capi -lpthread -ldl -lm \
   -Wl,-rpath,"$lib" -o "$work/hello-c"
RUST=$lib/examples/hello_blocking
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
median() { sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
start() { # NAME PORT [wrapper...]: starts a server pinned to core 0
  local name=$1 port=$2; shift 2
  case $name in c) taskset -c 0 "$@" "$work/hello-c" "$port" "$THREADS" >/dev/null 2>&1 & ;;
                rust) taskset -c 0 "$@" "$RUST" "$port" "$THREADS" >/dev/null 2>&1 & ;; esac
  wait_port "$port"
}
stop() { pkill -f "$work/hello-c" 2>/dev/null || true; pkill -f "$RUST" 2>/dev/null || true; sleep 0.3; }

echo "== wrk: hello, $THREADS consumer threads, $ROUNDS rounds of ${DUR}s"
for r in $(seq "$ROUNDS"); do
  order="c rust"; (( r % 2 == 0 )) && order="rust c"
  for s in $order; do
    port=$(free_port); start "$s" "$port"
    rps=$(taskset -c 1 wrk -t1 -c50 -d"${DUR}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    echo "$s $rps" | tee -a "$work/rps"
    stop
  done
done
c=$(awk '$1=="c"{print $2}' "$work/rps" | median); rust=$(awk '$1=="rust"{print $2}' "$work/rps" | median)
echo "median req/s: C $c, Rust $rust, C/Rust $(awk -v a="$c" -v b="$rust" 'BEGIN{printf "%.3f", a/b}')"

echo "== callgrind: instructions per request, $N keep-alive requests"
client() { python3 - "$1" "$N" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(req)
    while b"Hello, World!" not in buf:
        buf += s.recv(65536)
    buf = buf.split(b"Hello, World!", 1)[1]
PY
}
for s in c rust; do
  for n in 0 "$N"; do
    port=$(free_port)
    start "$s" "$port" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$s.$n" 2>/dev/null
    [[ $n -gt 0 ]] && N=$n client "$port"
    stop
    sleep 1
  done
  a=$(grep -h '^summary:' "$work/cg.$s.0" | awk '{print $2}'); b=$(grep -h '^summary:' "$work/cg.$s.$N" | awk '{print $2}')
  echo "$s $(( (b - a) / N ))" | tee -a "$work/ir"
done
c=$(awk '$1=="c"{print $2}' "$work/ir"); rust=$(awk '$1=="rust"{print $2}' "$work/ir")
echo "instructions/request: C $c, Rust $rust, C/Rust $(awk -v a="$c" -v b="$rust" 'BEGIN{printf "%.3f", a/b}')"
