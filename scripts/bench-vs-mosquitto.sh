#!/usr/bin/env bash
# Runs the same load against `mqttctl serve` and mosquitto: same certificates,
# the same generated mosquitto.conf (mutual TLS, P-256, loopback,
# max_connections -1), and prints each figure for both with the ratio
# serve/mosquitto, in one table:
#   - broker memory per idle connection, for each N in BENCH_IDLE (default
#     "5000 50000"): a fresh broker each time, VmRSS growth from its reading
#     after it started, taken BENCH_SETTLE (5) seconds after the N
#     connections are all open, / N; the time to connect them all; the load
#     generator's own memory per connection
#   - broker CPU per full handshake + CONNECT (utime+stime from /proc / count)
#     and full handshakes/s, 16 connectors
#     against the crypto floor (BenchmarkHandshakeCryptoFloor in ./broker:
#     the public-key work the broker's side of one cannot avoid)
#   - the same for resumed handshakes (TLS session tickets)
#   - QoS 1 messages/s, 4 publishers x 4 subscribers, 64-byte payloads, with
#     the messages acknowledged but never delivered, persistence off and on
# The load generator is `mqttctl bench` (package loadgen), a separate process;
# to a loopback broker it spreads its connections over source addresses
# 127.0.0.2, ... (bench idle --source-addrs), so the ephemeral port range is no
# limit. Each process needs an open files limit above the largest N: the
# script raises it, and stops before measuring if the hard limit is too low.
# Usage: [BENCH_IDLE="5000 50000 100000"] scripts/bench-vs-mosquitto.sh [SECONDS_PER_MEASUREMENT [IDLE_CONNECTIONS]]
set -euo pipefail
secs=${1:-5}
idle_ns=${BENCH_IDLE:-${2:-5000 50000}}
settle=${BENCH_SETTLE:-5}
maxn=0
for n in $idle_ns; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_IDLE=\"$idle_ns\": $n is not a number of connections (e.g. BENCH_IDLE=\"5000 50000\")" >&2; exit 1; }
  if ((n > maxn)); then maxn=$n; fi
done
need=$((maxn + 256)) # the connections and the broker's own files
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && ((hard < need)) && ! ulimit -Hn "$need" 2>/dev/null; then
  echo "BENCH_IDLE=\"$idle_ns\" needs $need open files in the broker and in the load generator; the hard limit here is $hard and this shell may not raise it (that takes root with CAP_SYS_RESOURCE): raise it (ulimit -Hn $need as root, LimitNOFILE= in a unit, /etc/security/limits.conf) or measure at most $((hard - 256)) connections, e.g. BENCH_IDLE=\"5000 $((hard - 256))\"" >&2
  exit 1
fi
ulimit -n "$(ulimit -Hn)" # mosquitto and serve inherit it
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
make -s build
bin=$PWD/bin/mqttctl
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)

work=$(mktemp -d)
chmod 711 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { # a port on 127.0.0.1 nothing listens on
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; return 1; }

"$bin" pki init --dir "$work/pki" --client bench --host localhost --host 127.0.0.1 >/dev/null
mkdir -p "$work/mdata" "$work/sdata"
chown mosquitto "$work/mdata" 2>/dev/null || true
gen() { # port, data dir, file, extra flags; the listener (the last section) takes any number of connections
  "$bin" config mosquitto --pki "$work/pki" --mode mtls --listen "127.0.0.1:$1" --data-dir "$2" --out "$work/$3" "${@:4}" >/dev/null
  grep -q '^max_connections' "$work/$3" && { echo "$work/$3 sets max_connections: the idle runs need it unlimited" >&2; exit 1; }
  echo "max_connections -1" >>"$work/$3"
}
declare -A port pid
start() { # name, persistence dir or "", broker
  port[$1]=$(free_port)
  if [ "$3" = mosquitto ]; then
    gen "${port[$1]}" "$2" "$1.conf"
    "$mosquitto" -c "$work/$1.conf" >"$work/$1.log" 2>&1 &
  else
    gen "${port[$1]}" "$2" "$1.conf" --broker-group none
    "$bin" serve -c "$work/$1.conf" >"$work/$1.log" 2>&1 &
  fi
  pid[$1]=$!; pids+=($!)
  wait_port "${port[$1]}" || { echo "$3 ($1) did not start:" >&2; cat "$work/$1.log" >&2; [ "${4:-}" = optional ] && return 1; exit 1; }
}
stop() { kill "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; }

auth=(--cafile "$work/pki/ca.crt" --cert "$work/pki/clients/bench.crt" --key "$work/pki/clients/bench.key")
url() { echo "mqtts://localhost:${port[$1]}"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

idle=() # KB of broker VmRSS per connection, seconds to connect them all, generator kB per connection, failures
idle_run() { # broker (mosquitto or serve), N -> sets idle; a fresh broker, stopped after
  local name=i$1$2 before after out line b
  start "$name" "" "$1"
  sleep 1
  before=$(rss_kb "${pid[$name]}")
  out=$work/idle-$name.out
  : >"$out"
  "$bin" bench idle "$(url "$name")" "${auth[@]}" --conns "$2" --parallel 32 --duration "$((settle + 3))s" >"$out" 2>"$out.err" &
  b=$!
  while kill -0 "$b" 2>/dev/null && ! grep -Eq '^open [0-9]+ of' "$out"; do sleep 0.5; done
  grep -Eq '^open [0-9]+ of' "$out" || { echo "bench idle against $1 did not open $2 connections:" >&2; cat "$out" "$out.err" >&2; exit 1; }
  sleep "$settle"
  after=$(rss_kb "${pid[$name]}")
  wait "$b" || true # exit 1 when some failed: counted below
  line=$(grep -E '^open [0-9]+ of' "$out") # open X of N in T s (R/s), F failed[: reasons]
  read -r opened secs_open failed <<<"$(sed -E 's/^open ([0-9]+) of [0-9]+ in ([0-9.]+) s .*, ([0-9]+) failed.*/\1 \2 \3/' <<<"$line")"
  idle=("$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')"
    "$secs_open" "$(sed -E 's/^generator RSS ([0-9.]+) kB.*/\1/' <<<"$(grep '^generator RSS' "$out")")" "$failed")
  [ "$failed" = 0 ] || echo "bench idle against $1, $2 connections: $(sed -E 's/.*\), //' <<<"$line")" >&2
  stop "$name"
}
hs=() # handshakes/s, CPU us per handshake
handshakes() { # broker, extra args -> sets hs
  local t0 t1 out
  t0=$(cpu_ticks "${pid[$1]}")
  out=$("$bin" bench handshakes "$(url "$1")" "${auth[@]}" --workers 16 --duration "${secs}s" "${@:2}")
  t1=$(cpu_ticks "${pid[$1]}")
  local rate count
  rate=$(awk '{print $1}' <<<"$out"); count=$(sed -E 's/.*\(([0-9]+) in .*/\1/' <<<"$out")
  hs=("$rate" "$(awk -v d="$((t1 - t0))" -v hz="$hz" -v n="$count" 'BEGIN { if (n > 0) printf "%.0f", d * 1e6 / hz / n; else print "-" }')")
}
pubsub() { # broker -> "msg/s lost"
  local out
  out=$("$bin" bench pubsub "$(url "$1")" "${auth[@]}" --qos 1 --publishers 4 --subscribers 4 --size 64 --duration "${secs}s")
  echo "$(awk '{print $1}' <<<"$out") $(sed -E 's/.* ([0-9]+) lost.*/\1/' <<<"$out")"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2fx", a / b; else print "-" }'; }
row() { printf '%-52s %14s %14s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }

echo "mqttctl $("$bin" version | awk '{print $2}') vs $("$mosquitto" -h 2>/dev/null | head -1); $(nproc) cores; mutual TLS (P-256) on loopback; ${secs}s each"
printf '%-52s %14s %14s %8s\n' "measurement" "mqttctl serve" "mosquitto" "ratio"
for n in $idle_ns; do
  idle_run serve "$n"; s_idle=("${idle[@]}"); idle_run mosquitto "$n"; m_idle=("${idle[@]}")
  row "RSS per idle mTLS connection, $n conns (KB)" "${s_idle[0]}" "${m_idle[0]}"
  row "  time to connect the $n (s)" "${s_idle[1]}" "${m_idle[1]}"
  row "  load generator's RSS per connection (KB)" "${s_idle[2]}" "${m_idle[2]}"
  [ "${s_idle[3]}${m_idle[3]}" = 00 ] || row "  connections that failed (see above)" "${s_idle[3]}" "${m_idle[3]}"
done
start m "" mosquitto; start s "" serve
start mp "$work/mdata" mosquitto; sp_up=true; start sp "$work/sdata" serve optional || sp_up=false
handshakes s; s_full=("${hs[@]}"); handshakes m; m_full=("${hs[@]}")
row "broker CPU per full handshake + CONNECT (us)" "${s_full[1]}" "${m_full[1]}"
floor=$(go test -count=1 -run '^$' -bench 'HandshakeCryptoFloor$' -benchtime 1s ./broker |
  awk '/^BenchmarkHandshakeCryptoFloor\// { ns += $3 } END { if (ns > 0) printf "%.0f", ns / 1000; else print "-" }')
printf '%-52s %14s %14s %8s\n' "  crypto floor of it; ratio: serve / floor (us)" "$floor" "-" "$(ratio "${s_full[1]}" "$floor")"
row "full handshakes/s, 16 connectors" "${s_full[0]}" "${m_full[0]}"
handshakes s --resume; s_res=("${hs[@]}"); handshakes m --resume; m_res=("${hs[@]}")
row "broker CPU per resumed handshake + CONNECT (us)" "${s_res[1]}" "${m_res[1]}"
row "resumed handshakes/s, 16 connectors" "${s_res[0]}" "${m_res[0]}"
read -r s_q s_lost <<<"$(pubsub s)"; read -r m_q m_lost <<<"$(pubsub m)"
row "QoS 1 msg/s, 4 pub x 4 sub, 64 B, persistence off" "$s_q" "$m_q"
row "  acknowledged but not delivered" "$s_lost" "$m_lost"
s_q="-" s_lost="-"
if $sp_up; then read -r s_q s_lost <<<"$(pubsub sp)"; fi
read -r m_q m_lost <<<"$(pubsub mp)"
row "QoS 1 msg/s, same, persistence true" "$s_q" "$m_q"
row "  acknowledged but not delivered" "$s_lost" "$m_lost"
