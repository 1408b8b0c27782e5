#!/usr/bin/env bash
# `make dev`: the whole system on this machine, no AWS account.
#
#   1. cargo build --bins         every function of the workspace, partnerctl and devgw
#   2. moto                       local DynamoDB, SQS, SES (infra/moto.sh run; stopped on exit)
#   3. partnerctl setup-local     the table and every queue of template.yaml; the SSM parameters
#                                 of infra/dev/ssm-parameters.txt with their local values; the
#                                 demo's mail domain verified in SES (partnerctl mail verify)
#   4. partnerctl apply SEED      the demo program (infra/dev/demo.yaml)
#   5. devgw serve                every function of template.yaml on http://127.0.0.1:$PORT:
#                                 HTTP API routes, the Lambda invoke API, SQS pollers, schedules
#
# Ctrl-C stops the functions, devgw and moto.
#
# Settings (environment or `make dev NAME=value`):
#   PORT=9000                 gateway port (loopback only)
#   SEED=infra/dev/demo.yaml  program file to apply; SEED=none seeds nothing
#   MOTO_PORT=<free port>     fixed port for moto (e.g. to reuse the endpoint in another shell)
#   DEVGW_SCHEDULES=auto      auto: schedules fire by their expressions; manual: only on demand
#   DEVGW_CONCURRENCY=4       instances of each function that may run at once (started when
#                             invocations queue); 1: one invocation of a function at a time
#   DEVGW_LOG=info            devgw's own log filter; RUST_LOG is the functions'
#   DEV_DIR=.dev              where the second shell's settings go (DEV_DIR/env, DEV_DIR/queues.env)
#   MAIL_DOMAIN=              another sender domain to verify in local SES (example.com always is)
# Any function variable below (e.g. STRIPE_SIGNING_SECRET) can be overridden the same way.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ "${1:-}" != "--inside-moto" ]; then
  echo "==> building every binary of the workspace (cargo build --bins)" >&2
  ${CARGO:-cargo} build --bins
  for bin in partnerctl devgw fakerails; do
    [ -x "target/debug/$bin" ] || { echo "target/debug/$bin was not built" >&2; exit 1; }
  done
  exec infra/moto.sh run -- "$0" --inside-moto
fi

# --- inside `infra/moto.sh run`: AWS_ENDPOINT_URL, region and static credentials are set ---
export PORT="${PORT:-9000}"
export TABLE_NAME="${TABLE_NAME:-partner-engine-local}"
export STRIPE_SIGNING_SECRET="${STRIPE_SIGNING_SECRET:-whsec_local_demo}"
# The sale feed's local source `billing` (/partner-engine/sale-feed/billing in moto's SSM).
export SALE_FEED_SECRET="${SALE_FEED_SECRET:-whsec_local_sale_feed}"
export TRACKING_KEY="${TRACKING_KEY:-local-tracking-key}"
# Stripe CLI and the sample events are test mode; a deployment defaults to live (template.yaml).
export STRIPE_MODE="${STRIPE_MODE:-test}"
export RUST_LOG="${RUST_LOG:-info}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
seed="${SEED:-infra/dev/demo.yaml}"
dev_dir="${DEV_DIR:-.dev}"
mkdir -p "$dev_dir"

echo "==> creating table $TABLE_NAME and the queues of template.yaml on $AWS_ENDPOINT_URL" >&2
# Queue names start with the table's name, so stacks side by side on one moto (the system
# tests) never read each other's queues.
target/debug/partnerctl setup-local --queue-prefix "$TABLE_NAME" >"$dev_dir/queues.env"
# A queue variable set by the caller (even to nothing: `EMAIL_QUEUE_URL=` switches the e-mail
# consumer off) keeps its value.
while IFS='=' read -r name value; do
  if [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]] && [ -z "${!name+set}" ]; then
    export "$name=$value"
  fi
done <"$dev_dir/queues.env"

# The payout rails: local fakes of PayPal Payouts and Stripe Connect (infra/fakerails), unless
# FAKE_RAILS=off (then partners' items wait for the manual export). The worker and the poller
# read the fakes' credentials from moto's SSM, as they read the real ones in AWS.
fakerails=""
if [ "${FAKE_RAILS:-on}" != "off" ]; then
  rm -f "$dev_dir/rails.env"
  target/debug/fakerails --urls-file "$dev_dir/rails.env" >/dev/null &
  fakerails=$!
  for _ in $(seq 1 100); do [ -s "$dev_dir/rails.env" ] && break; sleep 0.05; done
  while IFS='=' read -r name value; do
    [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]] && export "$name=$value"
  done <"$dev_dir/rails.env"
  echo "==> fake PayPal on $PAYPAL_API_BASE, fake Stripe on $STRIPE_CONNECT_API_BASE (GET /_fake/received)" >&2
  export PAYPAL_CREDENTIALS_JSON='{"client_id": "fake-client", "secret": "fake-secret"}'
  export STRIPE_CONNECT_KEY_LOCAL=sk_test_fake
  export PAYPAL_CREDENTIALS_PARAM=/partner-engine/paypal-credentials
  export STRIPE_CONNECT_KEY_PARAM=/partner-engine/stripe-connect-key
fi

# Secrets the functions read from SSM in AWS, with the local values (infra/dev/ssm-parameters.txt).
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
"$py" - infra/dev/ssm-parameters.txt <<'PY'
import os, sys
import boto3
ssm = boto3.client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].split()
    if len(line) != 2:
        continue
    name, var = line
    value = os.environ.get(var)
    if value:
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
        print(f"==> SSM {name} = ${var}", file=sys.stderr)
PY

# The same configuration for another shell: `source .dev/env`, then curl/partnerctl/aws.
# DEVGW_URL is the gateway (http://127.0.0.1:$PORT); AWS_ENDPOINT_URL is moto.
export DEVGW_URL="http://127.0.0.1:$PORT"
{
  echo "# written by infra/dev.sh; valid while make dev runs"
  for v in DEVGW_URL PORT AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID \
    AWS_SECRET_ACCESS_KEY TABLE_NAME STRIPE_SIGNING_SECRET SALE_FEED_SECRET TRACKING_KEY STRIPE_MODE; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  for v in PAYPAL_API_BASE STRIPE_CONNECT_API_BASE; do
    [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  while IFS='=' read -r name _; do
    if [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]]; then
      printf 'export %s=%q\n' "$name" "${!name}"
    fi
  done <"$dev_dir/queues.env"
} >"$dev_dir/env"

# Local SES (moto) accepts mail only from verified senders: the demo's domain, and MAIL_DOMAIN
# when another one is used.
for domain in example.com ${MAIL_DOMAIN:-}; do
  target/debug/partnerctl mail verify "$domain" >/dev/null
done

if [ "$seed" != "none" ]; then
  if [ -f "$seed" ]; then
    echo "==> seeding: partnerctl apply $seed" >&2
    target/debug/partnerctl apply "$seed"
  else
    echo "==> no seed: $seed does not exist" >&2
  fi
fi

echo "==> starting devgw on http://127.0.0.1:$PORT" >&2
target/debug/devgw serve --port "$PORT" &
devgw=$!
stop() {
  trap - INT TERM
  kill -TERM "$devgw" 2>/dev/null || true
  wait "$devgw" 2>/dev/null || true
  if [ -n "$fakerails" ]; then
    kill -TERM "$fakerails" 2>/dev/null || true
    wait "$fakerails" 2>/dev/null || true
  fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

ready=""
for _ in $(seq 1 600); do
  if ! kill -0 "$devgw" 2>/dev/null; then
    wait "$devgw" || true
    echo "devgw exited (is port $PORT free? try: make dev PORT=9100)" >&2
    exit 1
  fi
  if "$py" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/dev/ready', timeout=1)" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || echo "devgw: some functions are still starting (curl http://127.0.0.1:$PORT/dev/ready)" >&2

# What to try, from what devgw actually registered.
"$py" - "$PORT" "$root" "$dev_dir" <<'PY' || true
import json, os, re, sys, urllib.request
port, root, dev_dir = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
fns = json.load(urllib.request.urlopen(f"{base}/dev/functions", timeout=5))["functions"]
examples = {"code": "alice", "sub_id": "yt-42"}
def fill(path):
    return re.sub(r"\{([^}+]+)\+?\}", lambda m: examples.get(m.group(1), "example"), path)
lines = []
for f in fns:
    name, state = f["name"], f["status"]["state"]
    note = "" if state == "ready" else f"   [{state}: {f['status'].get('detail', '')}]"
    lines.append(f"  {name}{note}")
    for rk in f["routes"]:
        if rk == "$default":
            lines.append(f"      curl -i {base}/anything")
            continue
        method, path = rk.split(" ", 1)
        flag = {"GET": "", "HEAD": "-I "}.get(method, f"-X {method} ")
        if method == "HEAD":
            continue
        if name == "sale-webhook" and method == "POST" and path.endswith("/sale"):
            lines.append(f"      infra/dev/sale-event.sh events/sale-feed/sale.json   # source billing, signed with $SALE_FEED_SECRET (docs/integration.md)")
            continue
        if name == "sale-webhook" and method == "POST":
            lines.append(f"      infra/dev/stripe-event.sh events/stripe/invoice.paid.json   # signed with $STRIPE_SIGNING_SECRET, sent to $DEVGW_URL")
            continue
        lines.append(f"      curl -i {flag}{base}{fill(path)}")
    evdir = os.path.join(root, "events", name)
    if os.path.isdir(evdir) and name != "sale-webhook":  # its stored events carry placeholder signatures
        files = sorted(x for x in os.listdir(evdir) if x.endswith(".json"))
        if files:
            ev = f"events/{name}/{files[0]}"
            more = f"   # or any of events/{name}/*.json ({len(files)})" if len(files) > 1 else ""
            lines.append(f"      curl -s {base}/2015-03-31/functions/{name}/invocations -d @{ev}{more}")
    for s in f["schedules"]:
        lines.append(f"      curl -s -XPOST '{base}/dev/schedule/{name}?event={s['event']}&time=2026-03-06T09:00:00Z'   # {s['expression']} ({s['firing']})")
    for q in f["sqs"]:
        qid = q["queue"]["value"]
        env = re.sub(r"(?<!^)([A-Z])", r"_\1", qid).upper() + "_URL"
        lines.append(f"      source {dev_dir}/env; aws sqs send-message --endpoint-url $AWS_ENDPOINT_URL --queue-url ${env} --message-body '{{}}'   # polled from {qid} (AWS CLI)")
print(f"""
==> ready: {len(fns)} function(s) on {base}   (moto: {os.environ.get('AWS_ENDPOINT_URL')})

Functions and what to try:
""" + "\n".join(lines) + f"""

Any function with a stored event (the Lambda Invoke API):
      curl -s {base}/2015-03-31/functions/NAME/invocations -d @events/NAME/FILE.json
      with the AWS CLI or cargo lambda, if installed (`source {dev_dir}/env` first: it sets the region):
      aws lambda invoke --endpoint-url {base} --function-name NAME --payload fileb://events/NAME/FILE.json /dev/stdout
      cargo lambda invoke NAME -A 127.0.0.1 -P {port} --data-file events/NAME/FILE.json
What is registered:   curl -s {base}/dev/functions
Another shell:        source {dev_dir}/env   (DEVGW_URL, moto endpoint, region, credentials, table, queue URLs, local secrets)
                      target/debug/partnerctl --help
Ctrl-C stops everything.
""")
PY

wait "$devgw"
