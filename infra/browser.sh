#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the browser tests (never a browser download).
#
#   infra/browser.sh install   # apt-get install chromium chromium-driver, when either is missing
#   infra/browser.sh check     # exit 1 unless both are there
#
# The system test tests/tests/integrations.rs drives /usr/bin/chromium through chromedriver
# (CHROMEDRIVER and CHROMIUM override the paths).
set -euo pipefail
chromium="${CHROMIUM:-/usr/bin/chromium}"
driver="${CHROMEDRIVER:-/usr/bin/chromedriver}"
present() { [ -x "$chromium" ] && [ -x "$driver" ]; }
case "${1:-install}" in
  check)
    present || { echo "chromium or chromedriver missing: run infra/browser.sh install" >&2; exit 1; }
    ;;
  install)
    if present; then exit 0; fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "==> installing Debian's chromium and chromium-driver (browser tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    present || { echo "chromium/chromedriver still missing after apt-get" >&2; exit 1; }
    "$chromium" --version >&2
    ;;
  *)
    echo "usage: $0 install|check" >&2
    exit 2
    ;;
esac
