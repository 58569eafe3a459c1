#!/usr/bin/env bash
# Times the classic openssl recipe that `mqttctl pki init` replaces (RSA 2048:
# genrsa + req for the CA, then genrsa + req + x509 -req for a server and a
# client) and `mqttctl pki init` itself, each RUNS times, on this machine.
# Usage: scripts/bench-openssl-recipe.sh [RUNS]   (builds bin/mqttctl first)
set -euo pipefail
runs=${1:-20}
cd "$(dirname "$0")/.."
make -s build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

recipe() {
  local d=$1
  mkdir -p "$d" && cd "$d"
  openssl genrsa -out ca.key 2048 2>/dev/null
  openssl req -new -x509 -days 3650 -key ca.key -out ca.crt -subj "/CN=Recipe CA" 2>/dev/null
  for n in server client; do
    openssl genrsa -out $n.key 2048 2>/dev/null
    openssl req -out $n.csr -key $n.key -new -subj "/CN=$n" 2>/dev/null
    openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 365 2>/dev/null
  done
  cd - >/dev/null
}

time_it() { # name, command...
  local name=$1; shift
  local start end
  start=$(date +%s%N)
  for i in $(seq "$runs"); do "$@" "$work/$name-$i"; done
  end=$(date +%s%N)
  awk -v n="$name" -v s="$start" -v e="$end" -v r="$runs" 'BEGIN { printf "%-34s %8.1f ms per run (%d runs)\n", n, (e - s) / 1e6 / r, r }'
}

mq() { ./bin/mqttctl pki init --dir "$1" --key-type "$KT" --client client --host localhost >/dev/null; }

time_it "openssl recipe (rsa2048)" recipe
for KT in rsa2048 ec-p256; do
  export KT
  time_it "mqttctl pki init ($KT)" mq
done
