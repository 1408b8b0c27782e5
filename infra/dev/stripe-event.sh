#!/usr/bin/env bash
# Send a Stripe event to the local webhook route of `make dev`, signed as Stripe signs it
# (Stripe-Signature: t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")).
#
#   infra/dev/stripe-event.sh events/stripe/invoice.paid.json
#
# `created` is set to now unless KEEP_CREATED=1.
# Settings, each from the environment, else from the running `make dev`'s .dev/env (DEV_DIR/env),
# else the default:
#   DEVGW_URL              the gateway (default http://127.0.0.1:$PORT, PORT default 9000)
#   STRIPE_SIGNING_SECRET  default whsec_local_demo, as make dev sets it
#   STRIPE_WEBHOOK_PATH    default: the sale-webhook function's POST route with "stripe" in it, else /webhooks/stripe
# It prints where it sent the event.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
file="${1:?usage: $0 events/stripe/EVENT.json}"
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" - "$file" "$root/${DEV_DIR:-.dev}/env" <<'PY'
import hashlib, hmac, json, os, shlex, sys, time, urllib.error, urllib.request
file, env_file = sys.argv[1], sys.argv[2]
dev_env = {}  # `export NAME=value` lines written by infra/dev.sh
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
secret = setting("STRIPE_SIGNING_SECRET", "whsec_local_demo")
path = setting("STRIPE_WEBHOOK_PATH")
if not path:
    path = "/webhooks/stripe"
    try:
        fns = json.load(urllib.request.urlopen(f"{base}/dev/functions", timeout=5))["functions"]
        for f in fns:
            if f["name"] == "sale-webhook":
                posts = [r.split(" ", 1)[1] for r in f["routes"]
                         if r.startswith("POST ") and "stripe" in r]
                if posts:
                    path = posts[0]
    except OSError:
        pass
body = open(file, "rb").read()
t = str(int(time.time()))
# The event happens now: `created` (the business time of the sale) is set to the current time, so
# that a sale follows the click and sign-up of the walkthrough. KEEP_CREATED=1 sends the file as is.
if os.environ.get("KEEP_CREATED") != "1":
    event = json.loads(body)
    event["created"] = int(t)
    body = json.dumps(event, indent=2).encode()
sig = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
req = urllib.request.Request(
    base + path, data=body, method="POST",
    headers={"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={sig}"},
)
print(f"POST {base}{path}", file=sys.stderr)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace"))
    sys.exit(1)
except urllib.error.URLError as e:
    print(f"cannot reach {base}: {e.reason} (is `make dev` running? DEVGW_URL/PORT set it)", file=sys.stderr)
    sys.exit(1)
PY
