#!/usr/bin/env bash
# Runs the same load against `mqttctl serve` and mosquitto: same certificates,
# the same generated mosquitto.conf (mutual TLS, loopback), one after the
# other, and prints full handshakes/s and QoS 0 / QoS 1 messages/s (4
# publishers -> 1 subscriber, 100-byte payloads) for both, with the ratio.
# The load generator is `mqttctl bench` (package loadgen). The generated
# config has persistence on: mosquitto then snapshots every autosave_interval
# (60 s), mqttctl serve keeps every acknowledged message (see broker/store.go),
# so the last row repeats QoS 1 with persistence off on both.
# Usage: scripts/bench-vs-mosquitto.sh [SECONDS_PER_MEASUREMENT]
set -euo pipefail
secs=${1:-5}
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
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

"$bin" pki init --dir "$work/pki" --client bench --host localhost --host 127.0.0.1 >/dev/null
mkdir -p "$work/mdata" "$work/sdata"
chown mosquitto "$work/mdata" 2>/dev/null || true
pm=$(free_port); ps=$(free_port); pm0=$(free_port); ps0=$(free_port)
gen() { "$bin" config mosquitto --pki "$work/pki" --mode mtls --listen "127.0.0.1:$1" --data-dir "$2" --out "$work/$3" "${@:4}" >/dev/null; }
gen "$pm" "$work/mdata" mosquitto.conf
gen "$ps" "$work/sdata" serve.conf --broker-group none
gen "$pm0" "" mosquitto-nopersist.conf
gen "$ps0" "" serve-nopersist.conf --broker-group none

"$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
"$bin" serve -c "$work/serve.conf" >"$work/serve.log" 2>&1 & pids+=($!)
"$mosquitto" -c "$work/mosquitto-nopersist.conf" >"$work/mosquitto0.log" 2>&1 & pids+=($!)
"$bin" serve -c "$work/serve-nopersist.conf" >"$work/serve0.log" 2>&1 & pids+=($!)
wait_port "$pm"; wait_port "$ps"; wait_port "$pm0"; wait_port "$ps0"

auth=(--cafile "$work/pki/ca.crt" --cert "$work/pki/clients/bench.crt" --key "$work/pki/clients/bench.key" --duration "${secs}s")
measure() { # broker-port, bench args... -> the number
  local port=$1; shift
  "$bin" bench "$@" "mqtts://localhost:$port" "${auth[@]}" | awk '{print $1}'
}

echo "mqttctl $("$bin" version | awk '{print $2}') vs $("$mosquitto" -h 2>/dev/null | head -1); $(nproc) cores; mutual TLS on loopback; ${secs}s each"
printf '%-34s %14s %14s %8s\n' "measurement" "mqttctl serve" "mosquitto" "ratio"
row() { # label, serve-port, mosquitto-port, bench args...
  local label=$1 sp=$2 mp=$3; shift 3
  local a b
  a=$(measure "$sp" "$@"); b=$(measure "$mp" "$@")
  printf '%-34s %14s %14s %8s\n' "$label" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
}
row "full TLS handshakes/s (4 clients)" "$ps" "$pm" handshakes --workers 4
row "QoS 0 msg/s (4 pub -> 1 sub)" "$ps" "$pm" pubsub --qos 0
row "QoS 1 msg/s (4 pub -> 1 sub)" "$ps" "$pm" pubsub --qos 1
row "QoS 1 msg/s, persistence off" "$ps0" "$pm0" pubsub --qos 1
