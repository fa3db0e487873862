#!/usr/bin/env bash
# Runs the core's Rust tests (unit tests and tests/reactor.rs) under valgrind memcheck.
#   scripts/valgrind-core.sh [test args, e.g. --skip NAME]   # exit 0 only if every binary passes with no memcheck error
# Set CARGO_TARGET_DIR to build elsewhere (e.g. not to contend with another build).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 2; }
mapfile -t bins < <(cargo test -p reactor-core --no-run --message-format=json 2>/dev/null \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){if(!l)continue;const m=JSON.parse(l);if(m.reason==="compiler-artifact"&&m.executable&&m.profile&&m.profile.test)console.log(m.executable)}})')
[ "${#bins[@]}" -gt 0 ] || { echo "no test binaries built"; exit 2; }
status=0
for b in "${bins[@]}"; do
  echo "== valgrind memcheck: $b"
  if valgrind --error-exitcode=1 --leak-check=full --suppressions=scripts/valgrind-rust.supp \
      --quiet "$b" --test-threads=2 "$@" 2>&1 | tail -n 40; then
    echo "== clean: $b"
  else
    echo "== FAILED: $b"
    status=1
  fi
done
exit $status
