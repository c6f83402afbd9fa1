#!/usr/bin/env bash
# Quickstart 1: install, build, and serve the broker on 127.0.0.1:50051 with
# its embedded RocksDB store in ./data. Extra arguments go to the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
# Referrals are special-category data: even in development the store is
# encrypted at rest, with a key kept beside (not inside) the data directory.
if [ ! -f data.key ]; then
  bash deploy/make-encryption-key.sh data.key
fi
# Development mode: plaintext on loopback, no client certificates (the
# broker warns on every start). Production serves mutual TLS: see
# docs/security.md.
exec build/server/referral_broker --listen=127.0.0.1:50051 --data_dir=data \
  --backup_dir=backups --metrics_listen=127.0.0.1:9464 \
  --encryption_key_file=data.key --insecure_development "$@"
