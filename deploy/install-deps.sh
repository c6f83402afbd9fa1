#!/usr/bin/env bash
# Installs the Debian 12 packages the broker builds, runs and tests with.
# Idempotent: packages already present are not fetched again.
# REFERRAL_DEPS=build (the Dockerfile's build stage) installs only what
# building needs: no test tools, no browser, no Node.js.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libprotobuf-dev protobuf-compiler
  librocksdb-dev libabsl-dev
  libgtest-dev libgmock-dev googletest
  libssl-dev tzdata
  prometheus-cpp-dev
  # The triage console (referral_console): HTTPS, password hashes, JSON.
  libcpp-httplib-dev libargon2-dev nlohmann-json3-dev
)
test_packages=(
  # Tests: promtool checks the /metrics output and the alert rules;
  # systemd-analyze verifies the unit file; the console's end-to-end test
  # drives Debian's headless Chromium from Node (playwright-core, npm ci).
  prometheus systemd python3-yaml chromium nodejs
)
building_only=false
[[ ${REFERRAL_DEPS:-} == build ]] && building_only=true
$building_only || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

$building_only && exit 0

# npm: Debian's package, unless npm is already there (a Node.js build that
# bundles its own, such as NodeSource's, conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: installing npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
