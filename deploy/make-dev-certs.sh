#!/usr/bin/env bash
# Creates a development PKI for mutual TLS in OUT_DIR. Never use it in
# production: the CA key sits next to the certificates it signs.
#
#   deploy/make-dev-certs.sh OUT_DIR [--days N]
#
# Writes (keys mode 0600, certificates 0644; existing files are replaced,
# which also replaces the CA, so earlier certificates stop verifying):
#   ca.pem, ca.key            the development CA the broker trusts
#   server.pem, server.key    the broker (SAN DNS:localhost, IP:127.0.0.1)
#   <name>.pem, <name>.key    client certificates, identity URI SAN
#                             spiffe://referral-broker/<name>, CN=<name>, for
#                             cambs-police, peterborough-school-1,
#                             nwangliaft-hospital, triage-console, triage-cli,
#                             ops and admin (server/config/principals.txtpb)
# and, for tests of what the broker must refuse:
#   other-ca.pem, other-ca.key  a second CA the broker does not trust
#   intruder.pem, intruder.key  a client certificate signed by other-ca
#   expired.pem, expired.key    a client certificate of ca.pem, already expired
#
# --days N sets how long the server and client certificates are valid
# (default 365); the CAs are valid for 10 years, or N days if that is longer.
set -euo pipefail

usage() {
  echo "usage: $0 OUT_DIR [--days N]" >&2
  exit 2
}

(($# >= 1)) || usage
out_dir=$1
shift
days=365
while (($#)); do
  case $1 in
    --days)
      (($# >= 2)) || usage
      days=$2
      shift 2
      ;;
    *) usage ;;
  esac
done
if ! [[ $days =~ ^[1-9][0-9]{0,4}$ ]]; then
  echo "$0: --days must be a whole number of days from 1 to 99999" >&2
  exit 2
fi
ca_days=$((days > 3650 ? days : 3650))

here=$(cd "$(dirname "$0")" && pwd)
umask 077
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" \
    2>/dev/null
}

# make_ca DIR CN: a self-signed CA in DIR/ca.pem, DIR/ca.key.
make_ca() {
  mkdir -p "$1"
  new_key "$1/ca.key"
  openssl req -new -x509 -key "$1/ca.key" -subj "/CN=$2" -days "$ca_days" \
    -sha256 -out "$1/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}

# The broker's CA, and the server certificate gRPC clients check against it.
make_ca "$work/ca" "referral-broker development CA"
new_key "$work/server.key"
openssl req -new -key "$work/server.key" -subj "/CN=localhost" \
  -out "$work/server.csr"
cat >"$work/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl x509 -req -in "$work/server.csr" -CA "$work/ca/ca.pem" \
  -CAkey "$work/ca/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -sha256 -extfile "$work/server.ext" -out "$work/server.pem" \
  2>/dev/null

# Clients go through issue-agency-cert.sh so that the profile tested here is
# the one operators use for new agencies.
for name in cambs-police peterborough-school-1 nwangliaft-hospital \
  triage-console triage-cli ops admin; do
  bash "$here/issue-agency-cert.sh" "$work/ca" "$name" "$work/clients" \
    --days "$days" >/dev/null
done
bash "$here/issue-agency-cert.sh" "$work/ca" expired "$work/clients" \
  --expired >/dev/null

# A look-alike certificate from a CA the broker does not trust.
make_ca "$work/other-ca" "untrusted development CA"
bash "$here/issue-agency-cert.sh" "$work/other-ca" intruder "$work/clients" \
  --days "$days" >/dev/null

# Everything was built aside, so a failure above leaves OUT_DIR as it was.
install -m 0600 "$work/ca/ca.key" "$out_dir/ca.key"
install -m 0644 "$work/ca/ca.pem" "$out_dir/ca.pem"
install -m 0600 "$work/other-ca/ca.key" "$out_dir/other-ca.key"
install -m 0644 "$work/other-ca/ca.pem" "$out_dir/other-ca.pem"
install -m 0600 "$work/server.key" "$out_dir/server.key"
install -m 0644 "$work/server.pem" "$out_dir/server.pem"
for f in "$work"/clients/*.key; do install -m 0600 "$f" "$out_dir/"; done
for f in "$work"/clients/*.pem; do install -m 0644 "$f" "$out_dir/"; done
echo "development certificates written to $out_dir"
