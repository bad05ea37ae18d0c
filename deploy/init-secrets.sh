#!/usr/bin/env bash
# Makes deploy/secrets for deploy/compose.yaml, keeping whatever is already there:
#   postgres_password, database_url      the database's password and the services' URL
#   keys/                                the people's key pair (signing-key.pk8 stays here, for
#                                        `qaward token --data-dir deploy/secrets`), the
#                                        services' pair and the field keys that seal personal
#                                        data, fields.json, and the audit log's checkpoint key,
#                                        audit-key.pk8 (`qaward keys init`)
#   tls/ca.crt, tls/tls.crt, tls/tls.key a private CA and one certificate for every service name
#                                        (server and client use: mutual TLS between services)
# Needs openssl, and qaward on PATH or the image (QAWARD_IMAGE, run with $CONTAINER: docker or
# podman). The directory is 0700: only its owner reads the private keys on this host; inside
# it the files the containers read are readable by the container's user (uid 10001).
set -euo pipefail
cd "$(dirname "$0")"
out=secrets
umask 077
mkdir -p "$out/keys" "$out/tls"
chmod 0700 "$out"

if [ ! -s "$out/postgres_password" ]; then
  openssl rand -hex 24 | tr -d '\n' > "$out/postgres_password"
fi
if [ ! -s "$out/database_url" ]; then
  printf 'postgres://qaward:%s@postgres:5432/qaward' "$(cat "$out/postgres_password")" > "$out/database_url"
fi

if command -v qaward >/dev/null 2>&1; then
  qaward keys init "$out"
else
  "${CONTAINER:-docker}" run --rm --user "$(id -u):$(id -g)" -v "$PWD/$out:/out" \
    "${QAWARD_IMAGE:-qaward:latest}" keys init /out
fi

tls="$out/tls"
if [ ! -s "$tls/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=qaward deployment CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
fi
if [ ! -s "$tls/tls.crt" ]; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=qaward" \
    -keyout "$tls/tls.key" -out "$tls/tls.csr" 2>/dev/null
  cat > "$tls/ext.cnf" <<'EXT'
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:gateway, DNS:applications, DNS:reviewers, DNS:scoring, DNS:notifications, DNS:localhost, IP:127.0.0.1
EXT
  openssl x509 -req -in "$tls/tls.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 825 -extfile "$tls/ext.cnf" -out "$tls/tls.crt" 2>/dev/null
  # rustls reads PKCS#8.
  openssl pkcs8 -topk8 -nocrypt -in "$tls/tls.key" -out "$tls/tls.key.pk8"
  mv "$tls/tls.key.pk8" "$tls/tls.key"
  rm -f "$tls/tls.csr" "$tls/ext.cnf"
fi

# What the containers read (compose mounts these files as they are on the host).
chmod 0444 "$out/postgres_password" "$out/database_url" "$out/keys/jwks.json" "$out/keys/service-jwks.json" \
  "$out/keys/service-key.pk8" "$out/keys/fields.json" "$out/keys/audit-key.pk8" "$out/keys/audit-key.pub" "$tls/ca.crt" "$tls/tls.crt" "$tls/tls.key"
echo "deploy/secrets is ready: the CA that clients of the gateway trust is $tls/ca.crt"
