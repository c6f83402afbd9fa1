#!/usr/bin/env bash
# Issues one client certificate, signed by the broker's CA, for a new partner
# agency or tool: OUT_DIR/NAME.pem and OUT_DIR/NAME.key (mode 0600).
#
#   deploy/issue-agency-cert.sh CA_DIR NAME OUT_DIR [--days N]
#
# CA_DIR holds ca.pem and ca.key (as made by make-dev-certs.sh). The
# certificate's identity is the URI SAN spiffe://referral-broker/NAME (what the
# principals file maps to roles), with CN=NAME for people reading it. NAME is
# 1 to 64 characters from [a-z0-9-]. A fresh key is generated every time, so
# running this again for the same NAME rotates that agency's certificate; the
# identity, and so the principals entry, stays the same.
#
# --expired issues a certificate whose validity ended yesterday. It exists for
# tests of the broker's refusal of expired certificates; never use it for real.
set -euo pipefail

usage() {
  echo "usage: $0 CA_DIR NAME OUT_DIR [--days N]" >&2
  exit 2
}

(($# >= 3)) || usage
ca_dir=$1
name=$2
out_dir=$3
shift 3
days=365
expired=0
while (($#)); do
  case $1 in
    --days)
      (($# >= 2)) || usage
      days=$2
      shift 2
      ;;
    --expired)
      expired=1
      shift
      ;;
    *) usage ;;
  esac
done

if ! [[ $name =~ ^[a-z0-9-]{1,64}$ ]]; then
  echo "$0: NAME must be 1 to 64 characters from [a-z0-9-]" >&2
  exit 2
fi
# These names would overwrite the CA or the server's own key pair when
# OUT_DIR is the CA directory.
case $name in
  ca | server | other-ca)
    echo "$0: NAME \"$name\" is reserved" >&2
    exit 2
    ;;
esac
if ! [[ $days =~ ^[1-9][0-9]{0,4}$ ]]; then
  echo "$0: --days must be a whole number of days from 1 to 99999" >&2
  exit 2
fi
for f in "$ca_dir/ca.pem" "$ca_dir/ca.key"; do
  if [[ ! -r $f ]]; then
    echo "$0: cannot read $f" >&2
    exit 1
  fi
done

# Everything created from here on (keys, temporary files) is private.
umask 077
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `openssl ca` rather than `openssl x509 -req`: only `ca` can set a start date
# in the past (for --expired) on OpenSSL 3.0, and using it for every
# certificate keeps one issuing path. Extensions come from this file only;
# nothing the request asks for is copied (copy_extensions = none).
mkdir "$work/certs"
: >"$work/index.txt"
# -rand_serial picks the serial, but OpenSSL 3.0 still insists on the setting.
openssl rand -hex 16 >"$work/serial"
cat >"$work/ca.cnf" <<EOF
[ ca ]
default_ca = issuing_ca

[ issuing_ca ]
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work/certs
certificate = $ca_dir/ca.pem
private_key = $ca_dir/ca.key
default_md = sha256
policy = name_only
unique_subject = no
copy_extensions = none
email_in_dn = no

[ name_only ]
commonName = supplied

[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://referral-broker/$name
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out "$work/key.pem" 2>/dev/null
openssl req -new -key "$work/key.pem" -subj "/CN=$name" -out "$work/req.csr"

validity=(-days "$days")
if ((expired)); then
  validity=(-startdate "$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)"
    -enddate "$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)")
fi
openssl ca -batch -notext -config "$work/ca.cnf" -extensions client \
  -rand_serial "${validity[@]}" -in "$work/req.csr" -out "$work/cert.pem" \
  2>"$work/ca.log" || {
  cat "$work/ca.log" >&2
  exit 1
}

install -m 0600 "$work/key.pem" "$out_dir/$name.key"
install -m 0644 "$work/cert.pem" "$out_dir/$name.pem"
echo "issued $out_dir/$name.pem: identity spiffe://referral-broker/$name"
