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
exec "$py" "$root/infra/dev/send_signed.py" stripe "$file" "$root/${DEV_DIR:-.dev}/env"
