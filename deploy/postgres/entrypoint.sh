#!/bin/sh
# First start: a cluster owned by POSTGRES_USER with database POSTGRES_DB and the password from
# POSTGRES_PASSWORD_FILE, password authentication for every network client. Then the server,
# in the foreground (SIGINT: fast shutdown).
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  password=$(cat "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE is required}")
  printf '%s' "$password" > /tmp/pwfile
  initdb --username="$user" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -w -o "-c listen_addresses=''" start >/dev/null
  if [ "$db" != postgres ]; then
    createdb --username="$user" "$db"
  fi
  pg_ctl -w stop >/dev/null
fi
exec postgres -c listen_addresses='*'
