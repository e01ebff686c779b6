#!/usr/bin/env bash
# libshmbus.so exports the public API and nothing else:
#   1. every defined dynamic symbol is named shmbus_* (no shmpool_, bus_, reg_, helpers);
#   2. every function a public header declares SHMBUS_API is exported (nothing forgotten).
#   usage: check_symbols.sh LIBSHMBUS.so PUBLIC_INCLUDE_DIR
set -euo pipefail
lib=$1 inc=$2
exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u)
[ -n "$exported" ] || { echo "FAIL: $lib exports nothing"; exit 1; }
bad=$(grep -v '^shmbus_' <<<"$exported" || true)
if [ -n "$bad" ]; then
  echo "FAIL: $lib exports symbols outside shmbus_*:"
  echo "$bad"
  exit 1
fi
declared=$(grep -hv '#define SHMBUS_API' "$inc"/shmbus/*.h | tr '\n' ' ' | grep -o 'SHMBUS_API[^(;]*(' |
  sed 's/($//; s/.*[ *]//' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ]; then
  echo "FAIL: declared SHMBUS_API but not exported:"
  echo "$missing"
  exit 1
fi
echo "$(wc -l <<<"$exported") symbols exported, all shmbus_*; $(wc -l <<<"$declared") declared, all exported"
