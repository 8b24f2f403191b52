#!/usr/bin/env bash
# Slow-client attacks of bench/RESULTS.md, `httpq serve DIR` beside nginx
# (1 worker, sendfile on, default timeouts) in one run on this machine:
#   slowloris  N attackers trickle header lines       (slowhttptest -H)
#   slowpost   N attackers trickle an 8 KiB POST body (slowhttptest -B)
#   slowread   N attackers read a 4 MiB file through a tiny window and a
#              few bytes every few seconds            (slowhttptest -X)
# While an attack runs, a legitimate client (wrk, 8 connections, a 1 KiB
# file) measures p99 and throughput twice: in the absorb phase (the first
# ABSORB s, while the attackers connect and the server fills their
# buffers), settled (the next SETTLED s), and held (HELD s with the
# attacker's process paused, its connections open). Unloaded throughput is
# measured the same way before the attacks.
# The server's memory (RSS of all its processes), descriptors and
# established connections are sampled before, at the peak of, and after
# each attack (once its connections are gone, or after 30 s).
# The server runs on core 0; wrk and slowhttptest on core 1, the attacker
# at idle priority (chrt --idle) so the legitimate client comes first.
# Slow POST also runs against `httpq serve --echo` (see below).
# Env: N (attackers, 1000), ABSORB (5 s), SETTLED (10 s), ONLY (attacks),
#      SERVERS ("httpq nginx").
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
need() { command -v "$1" >/dev/null || { echo "installing $2 (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk; need nginx nginx-light; need slowhttptest slowhttptest
(cd .. && cargo build --release -q -p httpq-cli)
HTTPQ=$here/../target/release/httpq
N=${N:-1000}
ABSORB=${ABSORB:-5}
SETTLED=${SETTLED:-10}
HELD=${HELD:-5}
ONLY=${ONLY:-slowloris,slowpost,slowread}
SERVERS=${SERVERS:-httpq nginx}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true # as many descriptors as we may
work=$(mktemp -d); chmod 755 "$work"
atk=
trap '[ -n "$atk" ] && kill -CONT $atk 2>/dev/null; kill $(jobs -p) $atk 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/small.bin"
head -c $((4 << 20)) /dev/urandom >"$work/www/big.bin"
chmod -R a+rX "$work/www"

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# The server's processes: nginx's master and workers, or httpq.
pids() { echo "$pid $(pgrep -P "$pid" | tr '\n' ' ')"; }
rss_kib() { local t=0 v; for p in $(pids); do v=$(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null); t=$((t + ${v:-0})); done; echo $t; }
fds() { local t=0; for p in $(pids); do t=$((t + $(ls /proc/$p/fd 2>/dev/null | wc -l))); done; echo $t; }
conns() { ss -Htn state established "( sport = :$port )" | wc -l; }

start() {
  local name=$1
  case $name in
    httpq) taskset -c 0 "$HTTPQ" serve "$work/www" --threads 1 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
    httpq-echo) taskset -c 0 "$HTTPQ" serve --echo --threads 1 --listen 127.0.0.1:$port >/dev/null 2>&1 & ;;
    nginx)
      cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.0.1:$port backlog=4096; root $work/www; }
}
NGINX
      taskset -c 0 nginx -c "$work/nginx.conf" >/dev/null 2>&1 & ;;
  esac
  pid=$!
  wait_port "$port"
}
stop() { kill "$pid" 2>/dev/null || echo "$server had already exited" >&2; wait "$pid" 2>/dev/null || true; }

# legit SECONDS: wrk on the 1 KiB file; prints "req/s p99_ms errors".
legit() {
  taskset -c 1 wrk -t1 -c8 -d"$1"s --latency "http://127.0.0.1:$port/small.bin" 2>&1 | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) ms = v / 1000; else if (v ~ /ms$/) ms = v + 0; else ms = v * 1000 }
    /Socket errors/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
    /Non-2xx/ { err += $5 }
    END { printf "%.0f %.2f %d\n", rps, ms, err }'
}

attack() {
  local kind=$1 dur=$((ABSORB + SETTLED + HELD + 3)) url="http://127.0.0.1:$port"
  local args=(-c "$N" -r 1000 -l "$dur" -p 5)
  case $kind in
    slowloris) args+=(-H -i 10 -u "$url/small.bin") ;;
    slowpost)  args+=(-B -i 10 -s 8192 -u "$url/small.bin") ;;
    slowread)  args+=(-X -w 512 -y 1024 -n 5 -z 32 -k 1 -u "$url/big.bin") ;;
  esac
  taskset -c 1 chrt --idle 0 slowhttptest "${args[@]}" >"$work/$kind.log" 2>&1
}

printf '%-9s %-10s %5s %8s | %8s %6s %5s | %8s %6s %5s | %8s %6s | %6s %8s %8s %8s %7s | %5s %5s %5s\n' \
  attack server N unl_rps abs_p99 abs_% err set_p99 set_% err held_p99 held_% peakcn rss0_KiB peak_KiB after_KiB KiB/atk fd0 fdpk fd_af
for kind in ${ONLY//,/ }; do
  servers=$SERVERS
  # A static site answers a POST with 405 and closes at once, so slow POST
  # holds nothing there; the echo server reads the body, which is the case
  # EntityBody guards.
  [ "$kind" = slowpost ] && [[ " $SERVERS " == *" httpq "* ]] && servers="$SERVERS httpq-echo"
  for server in $servers; do
    port=$(free_port)
    start "$server"
    legit 2 >/dev/null # warm-up
    read -r unl _ _ < <(legit "$SETTLED")
    [ "${unl:-0}" -gt 0 ] || { echo "$server: the unloaded run served nothing" >&2; exit 1; }
    rss0=$(rss_kib); fd0=$(fds); cn0=$(conns)
    rm -f "$work/peak"
    attack "$kind" & apid=$!
    # Peak sampling until the attack ends.
    ( peak=0; fdp=0; cnp=0
      while kill -0 "$apid" 2>/dev/null; do
        r=$(rss_kib); f=$(fds); c=$(conns)
        (( r > peak )) && peak=$r; (( f > fdp )) && fdp=$f; (( c > cnp )) && cnp=$c
        echo "$peak $fdp $cnp" >"$work/peak"
        sleep 0.5
      done ) & spid=$!
    read -r a_rps a_p99 a_err < <(legit "$ABSORB")
    read -r s_rps s_p99 s_err < <(legit "$SETTLED")
    # Held: the attacker's process paused, its connections still open. On
    # two cores the attacker shares the legitimate client's core, so this
    # tells the server's cost of holding the connections from the tool's.
    atk=$(pgrep -P "$apid" slowhttptest || true)
    if [ -n "$atk" ]; then kill -STOP $atk 2>/dev/null || true; fi
    read -r h_rps h_p99 _ < <(legit "$HELD")
    if [ -n "$atk" ]; then kill -CONT $atk 2>/dev/null || true; fi
    atk=
    wait "$apid" || true
    wait "$spid" || true
    peak=$rss0 fdp=$fd0 cnp=$cn0
    [ -f "$work/peak" ] && read -r peak fdp cnp <"$work/peak"
    for _ in $(seq 60); do [ "$(conns)" -le "$cn0" ] && break; sleep 0.5; done
    sleep 3 # httpq hands memory back after two looks a second apart
    rss1=$(rss_kib); fd1=$(fds)
    per=$(( (peak - rss0) / N ))
    printf '%-9s %-10s %5d %8d | %8s %5d%% %5d | %8s %5d%% %5d | %8s %5d%% | %6d %8d %8d %8d %7d | %5d %5d %5d\n' \
      "$kind" "$server" "$N" "$unl" "$a_p99" $((a_rps * 100 / unl)) "$a_err" "$s_p99" $((s_rps * 100 / unl)) "$s_err" "$h_p99" $((h_rps * 100 / unl)) \
      "$cnp" "$rss0" "$peak" "$rss1" "$per" "$fd0" "$fdp" "$fd1"
    grep -E "connected|pending|closed|service available" "$work/$kind.log" | tail -n 5 | sed "s/^/    $server $kind: /" >"$work/$kind.$server.tail" || true
    stop
  done
done
echo "(p99 in ms; abs_%/set_%/held_%: legit throughput as % of unloaded; KiB/atk = (peak - rss0) / N)"
echo "slowhttptest's last lines for each run:"
cat "$work"/*.tail 2>/dev/null || true
