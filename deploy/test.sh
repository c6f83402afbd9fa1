#!/usr/bin/env bash
# Quickstart 2: install, build, and run the whole test suite through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
ctest --test-dir build -j2 --output-on-failure --timeout 900
