#!/usr/bin/env bash
# Creates the key that encrypts the broker's RocksDB files at rest: 32 random
# bytes written as 64 hexadecimal characters and a newline, mode 0600.
#
#   deploy/make-encryption-key.sh PATH
#
# Keep PATH outside the data directory (and out of its backups): the data
# is only protected while the key is stored elsewhere. Refuses to replace an
# existing file, because a lost key means every referral in the store is
# unreadable for good.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 PATH" >&2
  exit 2
fi
path=$1
if [[ -e $path || -L $path ]]; then
  echo "$0: $path already exists; not replacing an encryption key" >&2
  exit 1
fi

umask 077
dir=$(dirname "$path")
mkdir -p "$dir"
tmp=$(mktemp "$dir/.encryption-key.XXXXXX")
trap 'rm -f "$tmp"' EXIT
openssl rand -hex 32 >"$tmp"
chmod 0600 "$tmp"
# link(2) fails if PATH appeared meanwhile, so a key is never overwritten.
if ! ln "$tmp" "$path" 2>/dev/null; then
  echo "$0: could not create $path (does it exist already?)" >&2
  exit 1
fi
echo "encryption key written to $path"
