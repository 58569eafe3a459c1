#!/usr/bin/env bash
# Times `mqttctl pki issue client --batch` of DEVICES P-256 clients (with a
# bundle directory per device and the manifest) against the openssl loop it
# replaces (genpkey, req, x509 -req per device, signed by the same CA), in
# the same run on this machine, and prints both and the ratio (issue 18's
# goal: at least 100x). The openssl loop runs for OPENSSL_DEVICES devices
# (default 50) and is scaled to DEVICES, as the output says; mqttctl runs
# RUNS times (default 3), each into a new pki directory, and its fastest
# and slowest runs are printed (the ratio uses the fastest: this machine is
# shared, and other work only ever slows a run down).
# Usage: scripts/bench-batch.sh [DEVICES [OPENSSL_DEVICES [RUNS]]]   (builds bin/mqttctl first)
set -euo pipefail
devices=${1:-1000}
ossl=${2:-50}
runs=${3:-3}
cd "$(dirname "$0")/.."
go build -o bin/mqttctl ./cmd/mqttctl
mq=$PWD/bin/mqttctl
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-batch.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

for i in $(seq -w 1 "$devices"); do echo "sensor-$i"; done >devices.csv

ns() { date +%s%N; }

mq_ns= mq_max=0
for r in $(seq "$runs"); do
  rm -rf pki out
  "$mq" pki init --dir pki --host localhost >/dev/null
  start=$(ns)
  "$mq" pki issue client --dir pki --batch devices.csv --bundle-dir out >/dev/null 2>&1
  end=$(ns)
  t=$((end - start))
  if [ -z "$mq_ns" ] || [ "$t" -lt "$mq_ns" ]; then mq_ns=$t; fi
  if [ "$t" -gt "$mq_max" ]; then mq_max=$t; fi
  got=$(grep -c '"name"' out/manifest.json)
  [ "$got" -eq "$devices" ] || { echo "mqttctl issued $got devices, not $devices" >&2; exit 1; }
done

printf 'extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature\nbasicConstraints = critical, CA:FALSE\n' >client.ext
mkdir -p ossl
start=$(ns)
for i in $(seq -w 1 "$ossl"); do
  n=ossl/sensor-$i
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$n.key" 2>/dev/null
  openssl req -new -key "$n.key" -subj "/O=mqttctl/OU=MQTT Clients/CN=sensor-$i" -out "$n.csr" 2>/dev/null
  openssl x509 -req -in "$n.csr" -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial -days 365 -sha256 -extfile client.ext -out "$n.crt" 2>/dev/null
done
end=$(ns)
ossl_ns=$((end - start))

awk -v d="$devices" -v o="$ossl" -v m="$mq_ns" -v mx="$mq_max" -v r="$runs" -v s="$ossl_ns" 'BEGIN {
  scaled = s / o * d
  printf "mqttctl pki issue client --batch: %d devices in %.3f s, fastest of %d runs (slowest %.3f s; %.2f ms a device: keys, certificates, bundles, manifest, index)\n", d, m / 1e9, r, mx / 1e9, m / 1e6 / d
  printf "openssl genpkey+req+x509 loop:    %d devices in %.3f s (%.2f ms a device); scaled to %d devices: %.1f s\n", o, s / 1e9, s / 1e6 / o, d, scaled / 1e9
  printf "ratio: mqttctl is %.0fx faster (goal: at least 100x)\n", scaled / m
}'
