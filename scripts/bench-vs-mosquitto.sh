#!/usr/bin/env bash
# Runs the same load against `mqttctl serve` and mosquitto: same certificates,
# the same generated mosquitto.conf (mutual TLS, P-256, loopback), and prints
# each figure for both with the ratio serve/mosquitto:
#   - broker memory per idle connection (VmRSS growth / N, N=5000 by default)
#   - broker CPU per full handshake + CONNECT (utime+stime from /proc / count)
#     and full handshakes/s, 16 connectors
#   - the same for resumed handshakes (TLS session tickets)
#   - QoS 1 messages/s, 4 publishers x 4 subscribers, 64-byte payloads, with
#     the messages acknowledged but never delivered, persistence off and on
# The load generator is `mqttctl bench` (package loadgen), a separate process.
# Usage: scripts/bench-vs-mosquitto.sh [SECONDS_PER_MEASUREMENT [IDLE_CONNECTIONS]]
set -euo pipefail
secs=${1:-5}
idle=${2:-5000}
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
make -s build
bin=$PWD/bin/mqttctl
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
ulimit -n "$(ulimit -Hn)"

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
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

"$bin" pki init --dir "$work/pki" --client bench --host localhost --host 127.0.0.1 >/dev/null
mkdir -p "$work/mdata" "$work/sdata"
chown mosquitto "$work/mdata" 2>/dev/null || true
gen() { "$bin" config mosquitto --pki "$work/pki" --mode mtls --listen "127.0.0.1:$1" --data-dir "$2" --out "$work/$3" "${@:4}" >/dev/null; }
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
  wait_port "${port[$1]}"
}
start m "" mosquitto; start s "" serve
start mp "$work/mdata" mosquitto; start sp "$work/sdata" serve

auth=(--cafile "$work/pki/ca.crt" --cert "$work/pki/clients/bench.crt" --key "$work/pki/clients/bench.key")
url() { echo "mqtts://localhost:${port[$1]}"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

idle_kb() { # broker -> KB of VmRSS per idle connection
  local before after out
  before=$(rss_kb "${pid[$1]}")
  out=$work/idle-$1.out
  "$bin" bench idle "$(url "$1")" "${auth[@]}" --conns "$idle" --duration 3s >"$out" 2>&1 &
  local b=$!
  for _ in $(seq 600); do grep -q '^open' "$out" && break; sleep 0.1; done
  grep -q '^open' "$out" || { echo "bench idle against $1 did not open $idle connections:" >&2; cat "$out" >&2; exit 1; }
  sleep 1
  after=$(rss_kb "${pid[$1]}")
  wait "$b"
  awk -v a="$after" -v b="$before" -v n="$idle" 'BEGIN { printf "%.1f", (a - b) / n }'
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
row() { printf '%-52s %14s %14s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }

echo "mqttctl $("$bin" version | awk '{print $2}') vs $("$mosquitto" -h 2>/dev/null | head -1); $(nproc) cores; mutual TLS (P-256) on loopback; ${secs}s each"
printf '%-52s %14s %14s %8s\n' "measurement" "mqttctl serve" "mosquitto" "ratio"
row "RSS per idle mTLS connection, $idle conns (KB)" "$(idle_kb s)" "$(idle_kb m)"
handshakes s; s_full=("${hs[@]}"); handshakes m; m_full=("${hs[@]}")
row "broker CPU per full handshake + CONNECT (us)" "${s_full[1]}" "${m_full[1]}"
row "full handshakes/s, 16 connectors" "${s_full[0]}" "${m_full[0]}"
handshakes s --resume; s_res=("${hs[@]}"); handshakes m --resume; m_res=("${hs[@]}")
row "broker CPU per resumed handshake + CONNECT (us)" "${s_res[1]}" "${m_res[1]}"
row "resumed handshakes/s, 16 connectors" "${s_res[0]}" "${m_res[0]}"
read -r s_q s_lost <<<"$(pubsub s)"; read -r m_q m_lost <<<"$(pubsub m)"
row "QoS 1 msg/s, 4 pub x 4 sub, 64 B, persistence off" "$s_q" "$m_q"
row "  acknowledged but not delivered" "$s_lost" "$m_lost"
read -r s_q s_lost <<<"$(pubsub sp)"; read -r m_q m_lost <<<"$(pubsub mp)"
row "QoS 1 msg/s, same, persistence true" "$s_q" "$m_q"
row "  acknowledged but not delivered" "$s_lost" "$m_lost"
