#!/usr/bin/env bash
# Send a Stripe event to the local webhook route of `make dev`, signed as Stripe signs it
# (Stripe-Signature: t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")).
#
#   infra/dev/stripe-event.sh events/stripe/invoice.paid.json
#
# `created` is set to now unless KEEP_CREATED=1.
# Settings: STRIPE_SIGNING_SECRET (whsec_local_demo, as make dev exports), PORT (9000),
# STRIPE_WEBHOOK_PATH (default: the POST route of the sale-webhook function, else /webhooks/stripe).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
file="${1:?usage: $0 events/stripe/EVENT.json}"
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" - "$file" <<'PY'
import hashlib, hmac, json, os, sys, time, urllib.error, urllib.request
file = sys.argv[1]
port = os.environ.get("PORT", "9000")
base = f"http://127.0.0.1:{port}"
secret = os.environ.get("STRIPE_SIGNING_SECRET", "whsec_local_demo")
path = os.environ.get("STRIPE_WEBHOOK_PATH")
if not path:
    path = "/webhooks/stripe"
    try:
        fns = json.load(urllib.request.urlopen(f"{base}/dev/functions", timeout=5))["functions"]
        for f in fns:
            if f["name"] == "sale-webhook":
                posts = [r.split(" ", 1)[1] for r in f["routes"] if r.startswith("POST ")]
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
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace"))
    sys.exit(1)
PY
