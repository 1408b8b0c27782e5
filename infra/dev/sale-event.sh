#!/usr/bin/env bash
# Send a sale feed event to `make dev`'s POST /webhooks/sale, signed as docs/integration.md
# says a sender signs it (Sale-Signature: t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")).
#
#   infra/dev/sale-event.sh events/sale-feed/sale.json
#
# `occurred_at` is set to now unless KEEP_TIME=1. Settings, each from the environment, else from
# the running `make dev`'s .dev/env (DEV_DIR/env), else the default:
#   DEVGW_URL          the gateway (default http://127.0.0.1:$PORT, PORT default 9000)
#   SALE_SOURCE        default billing (make dev's one source)
#   SALE_FEED_SECRET   default whsec_local_sale_feed, as make dev sets it
# It prints the answer; a 4xx or 5xx exits 1.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
file="${1:?usage: $0 events/sale-feed/EVENT.json}"
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" - "$file" "$root/${DEV_DIR:-.dev}/env" <<'PY'
import datetime, hashlib, hmac, json, os, shlex, sys, time, urllib.error, urllib.request
file, env_file = sys.argv[1], sys.argv[2]
dev_env = {}
if os.path.isfile(env_file):
    for line in open(env_file):
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            dev_env[name] = value
def setting(name, default=None):
    return os.environ.get(name) or dev_env.get(name) or default
def gateway(env):
    return env.get("DEVGW_URL") or (env.get("PORT") and f"http://127.0.0.1:{env['PORT']}")
base = gateway(os.environ) or gateway(dev_env) or "http://127.0.0.1:9000"
secret = setting("SALE_FEED_SECRET", "whsec_local_sale_feed")
source = setting("SALE_SOURCE", "billing")
body = open(file, "rb").read()
t = str(int(time.time()))
if os.environ.get("KEEP_TIME") != "1":
    event = json.loads(body)
    event["occurred_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(event, indent=2).encode()
sig = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
req = urllib.request.Request(
    base + "/webhooks/sale", data=body, method="POST",
    headers={"Content-Type": "application/json", "Sale-Source": source,
             "Sale-Signature": f"t={t},v1={sig}"},
)
print(f"POST {base}/webhooks/sale (source {source})", file=sys.stderr)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace"))
    sys.exit(1)
except urllib.error.URLError as e:
    print(f"cannot reach {base}: {e.reason} (is `make dev` running?)", file=sys.stderr)
    sys.exit(1)
PY
