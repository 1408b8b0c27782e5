#!/usr/bin/env bash
# Local AWS for tests and `make dev`: moto's server, installed into a project-local virtualenv
# when missing, started on a free loopback port.
#
#   infra/moto.sh install          install moto[server] into .venv (idempotent; reinstalls another
#                                  version: infra/moto_serial.py patches MOTO_VERSION's internals)
#   infra/moto.sh run -- CMD...    start moto, run CMD with AWS_ENDPOINT_URL set, stop moto
#                                  (also when CMD fails); exits with CMD's status
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"

# The one moto version the launcher's patches were checked against (infra/moto_serial.py).
moto_version="$(sed -n 's/^MOTO_VERSION = "\([^"]*\)".*/\1/p' "$root/infra/moto_serial.py")"

install() {
  if [ -x "$venv/bin/moto_server" ] && [ "$("$venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$moto_version" ]; then
    return 0
  fi
  echo "installing moto[server]==$moto_version into $venv ..." >&2
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local port="$1" log="$2"
  # moto's own app, one request at a time (see infra/moto_serial.py for why)
  "$venv/bin/python" "$root/infra/moto_serial.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  echo $!
}

wait_ready() {
  local port="$1" pid="$2"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "moto exited before it served port $port" >&2; return 1; }
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "moto did not start on port $port" >&2
  return 1
}

case "${1:-}" in
  install) install ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    install
    port="${MOTO_PORT:-$(free_port)}"
    log="$(mktemp -t moto.XXXXXX.log)"
    pid="$(start "$port" "$log")"
    trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
    wait_ready "$port" "$pid" || { cat "$log" >&2; exit 1; }
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    echo "moto on $AWS_ENDPOINT_URL (pid $pid)" >&2
    set +e
    "$@"
    status=$?
    set -e
    exit $status
    ;;
  *) echo "usage: $0 install | run -- CMD..." >&2; exit 2 ;;
esac
