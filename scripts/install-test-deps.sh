#!/usr/bin/env bash
# Installs the Debian packages mqttctl's tests use (openssl, mosquitto,
# mosquitto-clients, default-jre-headless for keytool, chromium and
# libnss3-tools for the browser test, rabbitmq-server for the cluster test,
# cmake and the -dev libraries that build mosquitto 2.1.2, jq for the --help
# examples)
# when any is missing. Runs apt-get as root, or via sudo.
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
# keytool reads the PKCS#12 files pki export writes, as Java and Android do.
command -v keytool >/dev/null 2>&1 || need+=(default-jre-headless)
# jq reads the JSON of the --help examples (pki inspect -o json, pki list -o json).
command -v jq >/dev/null 2>&1 || need+=(jq)
# A real browser runs mqtt.js against serve's wss listener; certutil puts
# the test CA in its NSS database.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
# A live two-node RabbitMQ cluster from `config rabbitmq`.
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
# mosquitto 2.1.2 is built from the workplace's release source
# (../shared/reference/build-mosquitto-2.1.sh) for the 2.1 tests.
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || need+=(build-essential)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ -f /usr/include/cjson/cJSON.h ] || need+=(libcjson-dev)
[ -f /usr/include/argon2.h ] || need+=(libargon2-dev)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${need[*]} and no apt-get here: install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-test-deps: missing ${need[*]}; run as root or install sudo" >&2; exit 1
  fi
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a system mosquitto on port 1883 where an init system runs;
# tests use their own ports and configs, so leave it be.
