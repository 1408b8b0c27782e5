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
exec "$py" "$root/infra/dev/send_signed.py" sale "$file" "$root/${DEV_DIR:-.dev}/env"
