"""Send a signed event to `make dev`: what infra/dev/stripe-event.sh and sale-event.sh run.

    send_signed.py stripe FILE ENV_FILE   # Stripe-Signature, POST to the Stripe webhook route
    send_signed.py sale FILE ENV_FILE     # Sale-Source + Sale-Signature, POST /webhooks/sale

Both sign as Stripe does: t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>"). Settings come from the
environment, else from ENV_FILE (`export NAME=value` lines written by infra/dev.sh), else the
defaults of make dev. The event happens now (`created` / `occurred_at` set to the current time)
unless KEEP_CREATED=1 (stripe) or KEEP_TIME=1 (sale). A 4xx or 5xx answer exits 1.
"""
import datetime, hashlib, hmac, json, os, shlex, sys, time, urllib.error, urllib.request

kind, file, env_file = sys.argv[1], sys.argv[2], sys.argv[3]
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
body = open(file, "rb").read()
t = str(int(time.time()))
headers = {"Content-Type": "application/json"}

if kind == "stripe":
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
    # The sale happens now, so that it follows the click and sign-up of the walkthrough.
    if os.environ.get("KEEP_CREATED") != "1":
        event = json.loads(body)
        event["created"] = int(t)
        body = json.dumps(event, indent=2).encode()
    header, what = "Stripe-Signature", ""
elif kind == "sale":
    secret = setting("SALE_FEED_SECRET", "whsec_local_sale_feed")
    source = setting("SALE_SOURCE", "billing")
    path = "/webhooks/sale"
    if os.environ.get("KEEP_TIME") != "1":
        event = json.loads(body)
        now = datetime.datetime.now(datetime.timezone.utc)
        event["occurred_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps(event, indent=2).encode()
    headers["Sale-Source"] = source
    header, what = "Sale-Signature", f" (source {source})"
else:
    sys.exit(f"unknown kind {kind!r}: stripe or sale")

sig = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
headers[header] = f"t={t},v1={sig}"
req = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
print(f"POST {base}{path}{what}", file=sys.stderr)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace"))
    sys.exit(1)
except urllib.error.URLError as e:
    print(f"cannot reach {base}: {e.reason} (is `make dev` running? DEVGW_URL/PORT set it)", file=sys.stderr)
    sys.exit(1)
