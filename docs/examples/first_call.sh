#!/usr/bin/env sh
# A first call to qaward over HTTP/JSON with curl: the registry, then an error.
#   docs/examples/first_call.sh http://127.0.0.1:8080 "$TOKEN"
set -eu
base="$1"
token="$2"
curl -sS -H "Authorization: Bearer $token" "$base/v1/reviewers?pageSize=10"
echo
curl -sS -H "Authorization: Bearer $token" "$base/v1/reviewers/NO-SUCH-ONE"
echo
