#!/usr/bin/env bash
# Does the local stack stay fast as data grows? `make dev` (infra/dev.sh, demo seed, schedules
# manual, its own port and DEV_DIR) in the background, then BOOKINGS customers each bound to bob by
# POST /v1/track/lead {"code":"bob"} and each sent one signed invoice.paid (distinct event,
# invoice, customer), so that every call books a 2-tier commission. Prints, every SAMPLE
# bookings, moto's resident memory and the invoice.paid latencies of the window; at the end
# checks bob's pending balance and the targets (moto < 1 GB, a booking < 0.5 s). Figures:
# docs/performance.md ("The local stack as data grows").
#
#   infra/bench-dev-growth.sh                 (make bench-dev-growth)
#
# Settings (environment or `make bench-dev-growth NAME=value`):
#   BOOKINGS=2000        invoices to book
#   SAMPLE=100           bookings per reported window
#   PORT=<free port>     the gateway's port (never make dev's default 9000)
#   MAX_MOTO_MB=6000     stop early when moto's memory passes this (the unpatched run grows fast)
#   MAX_CALL_S=30        stop early when one call takes longer than this
#   MOTO_UNPATCHED=1     run moto as released, without infra/moto_serial.py's patches (the "before")
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
infra/moto.sh install
py="$root/.venv/bin/python"
port="${PORT:-$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')}"
dev_dir=".dev/bench-dev-growth"
mkdir -p "$dev_dir"
rm -f "$dev_dir/env"
log="$dev_dir/dev.log"

echo "==> make dev on port $port in the background (log: $log)" >&2
# Its own process group, so that the whole stack (moto, devgw, the functions) stops with it.
PORT="$port" DEV_DIR="$dev_dir" DEVGW_SCHEDULES=manual setsid infra/dev.sh >"$log" 2>&1 </dev/null &
stack=$!
stop() {
  kill -TERM -- "-$stack" 2>/dev/null || true
  wait "$stack" 2>/dev/null || true
}
trap stop EXIT

"$py" - "$stack" "$dev_dir/env" "$log" <<'PY'
import hashlib, hmac, json, math, os, shlex, subprocess, sys, time, urllib.error, urllib.request

group, env_file, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
bookings = int(os.environ.get("BOOKINGS", "2000"))
sample = int(os.environ.get("SAMPLE", "100"))
max_moto_mb = int(os.environ.get("MAX_MOTO_MB", "6000"))
max_call_s = float(os.environ.get("MAX_CALL_S", "30"))
TARGET_MOTO_MB, TARGET_BOOKING_S = 1024, 0.5

def fail(why):
    tail = open(log, errors="replace").read()[-3000:]
    sys.exit(f"{why}\n--- {log} (tail) ---\n{tail}")

def group_alive():
    try:
        os.killpg(group, 0)
        return True
    except OSError:
        return False

# 1. The stack is up: dev.sh wrote its env file and every function is ready.
deadline = time.time() + 1800  # includes cargo build --bins
while not os.path.exists(env_file):
    if not group_alive() or time.time() > deadline:
        fail("make dev did not come up")
    time.sleep(0.5)
env = {}
for line in open(env_file):
    words = shlex.split(line, comments=True)
    if len(words) == 2 and words[0] == "export" and "=" in words[1]:
        k, v = words[1].split("=", 1)
        env[k] = v
base = env["DEVGW_URL"]
while True:
    try:
        states = [f["status"]["state"] for f in json.load(urllib.request.urlopen(f"{base}/dev/functions", timeout=5))["functions"]]
        if states and all(s == "ready" for s in states):
            break
    except OSError:
        pass
    if not group_alive() or time.time() > deadline:
        fail("devgw's functions did not become ready")
    time.sleep(0.5)

# 2. moto's process: the one in this stack's process group running infra/moto_serial.py.
def moto_pid():
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if pgrp == group and any(c.endswith(b"moto_serial.py") for c in cmd):
            return int(p)
    fail("moto's process not found")
moto = moto_pid()
def moto_mb():
    for line in open(f"/proc/{moto}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

patched = os.environ.get("MOTO_UNPATCHED") != "1"
print(f"==> {base}: booking {bookings} invoices (moto pid {moto}, "
      f"{'patched' if patched else 'MOTO_UNPATCHED=1: moto as released'}); moto at start {moto_mb():.0f} MB", flush=True)

# 3. Bind and book.
template = open("events/stripe/invoice.paid.json").read()
secret = env["STRIPE_SIGNING_SECRET"].encode()
tracking_key = env["TRACKING_KEY"]

retried = []
def post(path, body, headers):
    """One call, timed. A 5xx is retried once after 3 s, as Stripe would (the calls are idempotent):
    devgw restarts a function whose binary was rebuilt meanwhile. Retries are reported."""
    for attempt in (1, 2):
        req = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=max_call_s) as r:
                status, text = r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode(errors="replace")
        dt = time.perf_counter() - t0
        if status < 500 or attempt == 2:
            return status, text, dt
        retried.append(f"{path} {status}")
        time.sleep(3)

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

print(f"{'booked':>7} {'moto MB':>8} {'paid p50':>9} {'p95':>7} {'max':>7} {'lead p50':>9}   (seconds, this window)", flush=True)
paid_all, lead_all, window_paid, window_lead, rows = [], [], [], [], []
stopped = None
booked = 0
for i in range(1, bookings + 1):
    token = f"bench{i:05d}"
    customer, email = f"cus_{token}", f"carol.{token}@example.org"
    try:
        status, text, dt = post("/v1/track/lead",
            json.dumps({"code": "bob", "customer_key": customer, "email": email}).encode(),
            {"Authorization": f"Bearer {tracking_key}", "Content-Type": "application/json"})
        if status not in (200, 201):  # 200 already_bound: a retried bind
            fail(f"lead {i}: {status} {text}")
        window_lead.append(dt)
        event = json.loads(template.replace("evt_demo_invoice_paid", f"evt_{token}")
                           .replace("demo1", token).replace("carol@example.com", email))
        t = int(time.time())
        # Business time of the sale: after the lead's binding (whose time has milliseconds).
        event["created"] = math.ceil(time.time())
        body = json.dumps(event).encode()
        sig = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        status, text, dt = post("/webhooks/stripe", body,
            {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={sig}"})
    except (TimeoutError, urllib.error.URLError) as e:
        stopped = f"call {i} failed after {max_call_s:.0f} s or more: {e}"
        break
    if status != 200:
        fail(f"invoice.paid {i}: {status} {text}")
    booked = i
    window_paid.append(dt)
    if dt > max_call_s:
        stopped = f"invoice.paid {i} took {dt:.1f} s"
    if i % sample == 0 or i == bookings or stopped:
        mb = moto_mb()
        rows.append((i, mb, pct(window_paid, 0.5), pct(window_paid, 0.95), max(window_paid), pct(window_lead, 0.5)))
        print(f"{i:>7} {mb:>8.0f} {rows[-1][2]:>9.3f} {rows[-1][3]:>7.3f} {rows[-1][4]:>7.3f} {rows[-1][5]:>9.3f}", flush=True)
        paid_all += window_paid
        lead_all += window_lead
        window_paid, window_lead = [], []
        if mb > max_moto_mb:
            stopped = f"moto passed MAX_MOTO_MB={max_moto_mb}"
    if stopped:
        break
paid_all += window_paid

# 4. Every booking earned bob 25 % of the $99 line.
out = subprocess.run(["target/debug/partnerctl", "--format", "json", "partner", "bob"],
                     env={**os.environ, **env}, capture_output=True, text=True)
pending = None
if out.returncode == 0:
    balances = json.loads(out.stdout).get("balances", [])
    pending = sum(b.get("pending", 0) for b in balances if isinstance(b.get("pending"), int))
else:
    print(f"partnerctl partner bob: {out.stderr.strip()}")

print()
if stopped:
    print(f"stopped early: {stopped}")
final_mb = rows[-1][1] if rows else moto_mb()
last_p95 = rows[-1][3] if rows else float("nan")
if retried:
    print(f"retried once after a 5xx: {len(retried)} call(s) ({', '.join(sorted(set(retried)))}; their first try is not timed)")
print(f"booked {booked} invoices; bob's pending balance {pending} cents (expected {booked * 2475})")
print(f"invoice.paid over the run: p50 {pct(paid_all, 0.5):.3f} s, p95 {pct(paid_all, 0.95):.3f} s, "
      f"p99 {pct(paid_all, 0.99):.3f} s, max {max(paid_all):.3f} s; lead p50 {pct(lead_all or [0], 0.5):.3f} s")
ok = (not stopped and booked == bookings and pending == booked * 2475
      and final_mb < TARGET_MOTO_MB and last_p95 < TARGET_BOOKING_S)
print(f"target after {bookings} bookings: moto < {TARGET_MOTO_MB} MB (is {final_mb:.0f}), "
      f"a booking < {TARGET_BOOKING_S} s (last window's p95 {last_p95:.3f}): {'met' if ok else 'NOT met'}")
PY
