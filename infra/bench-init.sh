#!/usr/bin/env bash
# `make bench-init`: init time and size of the function binaries, as a markdown table.
#
# Init = from exec until the process first asks the Runtime API for an event
# (GET /2018-06-01/runtime/invocation/next), timed by `devgw bench-init` against its own local
# Runtime API: the part of Lambda's "Init Duration" that the binary controls (no sandbox or
# download). Both binaries are built with the workspace's release profile (stripped).
# The redirect function runs against a local moto server (its init builds the AWS SDK client and,
# with WARM_UP=true, makes one GetItem there; plain HTTP, so no TLS handshake is counted).
#
# Settings: RUNS=50 (counted runs per row), WARMUP=2 (uncounted runs first).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"

if [ "${1:-}" != "--inside-moto" ]; then
  echo "==> release builds (the workspace's release profile; slow the first time)" >&2
  $cargo build --release -p bench-hello
  if [ -f functions/redirect/Cargo.toml ]; then
    $cargo build --release -p redirect || echo "redirect did not build; benchmarking bench-hello only" >&2
  fi
  echo "==> devgw and partnerctl (debug: they only measure and set up)" >&2
  $cargo build -p devgw -p partnerctl
  exec infra/moto.sh run -- "$0" --inside-moto
fi

runs="${RUNS:-50}"
warmup="${WARMUP:-2}"
export TABLE_NAME="${TABLE_NAME:-partner-engine-bench}"
export TRACKING_KEY="${TRACKING_KEY:-local-tracking-key}"
export RUST_LOG="${RUST_LOG:-warn}" DEVGW_LOG="${DEVGW_LOG:-warn}"
target/debug/partnerctl setup-local >/dev/null
if [ -f infra/dev/demo.yaml ]; then
  target/debug/partnerctl apply infra/dev/demo.yaml >/dev/null || true
fi
hello_event="$(mktemp -t hello.XXXXXX.json)"
trap 'rm -f "$hello_event"' EXIT
echo '{"hello":"world"}' >"$hello_event"

bench() { # label binary event [KEY=VALUE...]
  local label="$1" bin="$2" event="$3"
  shift 3
  local envs=()
  for kv in "$@"; do envs+=(--env "$kv"); done
  target/debug/devgw bench-init --bin "$bin" --label "$label" --runs "$runs" --warmup "$warmup" \
    --event "$event" --markdown "${envs[@]}"
}

echo
echo "Init: exec until the first GET /runtime/invocation/next, $runs runs each (after $warmup uncounted); $(nproc) cores, $(uname -m)."
echo
echo "| binary | runs | min ms | p50 ms | p95 ms | max ms | size (release, stripped) | first invocation p50 / p95 ms |"
echo "|---|---|---|---|---|---|---|---|"
bench bench-hello target/release/bench-hello "$hello_event"
if [ -x target/release/redirect ]; then
  bench "redirect (WARM_UP=false)" target/release/redirect events/redirect/click.json WARM_UP=false
  bench "redirect (WARM_UP=true, GetItem on moto)" target/release/redirect events/redirect/click.json WARM_UP=true
fi
echo
echo "rustc: $(rustc --version)"
