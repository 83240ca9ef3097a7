#!/usr/bin/env bash
# Installs what streamlearn needs to build and test, from Debian's packages,
# skipping everything already installed. Used by the README, CI and deploy/Dockerfile.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --runtime  only what the binary needs to run
set -euo pipefail

# The binary's shared libraries only: Redis and Kafka are services it connects to.
runtime=(librdkafka1 libmsgpackc2 libopenblas0-pthread libhiredis0.14 libinih1 libcjson1
         libxxhash0 libmicrohttpd12 libprotobuf-c1)
build=(build-essential cmake pkg-config librdkafka-dev libmsgpack-dev libopenblas-dev
       libhiredis-dev libcmocka-dev libinih-dev libcjson-dev libxxhash-dev
       libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler redis-server kcat clang-14
       libclang-rt-14-dev clang-format python3 python3-msgpack python3-numpy python3-yaml
       yamllint python3-redis python3-torch python3-onnx python3-sklearn
       python3-confluent-kafka)

want=("${build[@]}")
[ "${1:-}" = "--runtime" ] && want=("${runtime[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
