#!/usr/bin/env bash
# Quickstart 2: install, build, and run the whole test suite through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
# playwright-core for the console's end-to-end test (tests/console), from
# the committed lock file; skipped when the locked version is installed.
console_tests=tests/console
want=$(node -p "require('./$console_tests/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "require('./$console_tests/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [[ $want != "$have" ]]; then
  (cd "$console_tests" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
fi
ctest --test-dir build -j2 --output-on-failure --timeout 900
