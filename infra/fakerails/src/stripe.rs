//! A fake of Stripe's transfers API (Stripe Connect's "separate charges and transfers").
//!
//! Built from the Stripe API reference: "Create a transfer" (`POST /v1/transfers`, form
//! fields `amount` in minor units, `currency` lower case, `destination`, `transfer_group`,
//! `metadata[...]`, `description`; answer a `transfer` object `id` `tr_…`, `amount`, `created`
//! seconds, `destination`, `reversed`, `transfer_group`, `metadata`), "List all transfers"
//! (`GET /v1/transfers?transfer_group=…&limit=…`, a list object), "Idempotent requests" (the
//! first answer to an `Idempotency-Key` is stored, 500s included, and replayed; the same key
//! with other parameters is a 400 `idempotency_error`; keys may be pruned after 24 hours) and
//! "Errors" (`{"error": {type, code, message, param}}`: 400 `balance_insufficient` when the
//! platform's available balance does not cover the transfer, 400 `resource_missing` for an
//! unknown destination, 400 `insufficient_capabilities_for_transfer` when the account's
//! `transfers` capability is not active, 401 for a bad key, 429 `rate_limit`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};

use crate::{record, serve, Fault, Received, Reply, Req};

#[derive(Debug, Clone, Serialize)]
pub struct FakeTransfer {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub destination: String,
    pub transfer_group: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
    pub reversed: bool,
    pub idempotency_key: Option<String>,
}

impl FakeTransfer {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "transfer",
            "amount": self.amount,
            "amount_reversed": if self.reversed { self.amount } else { 0 },
            "currency": self.currency,
            "created": self.created,
            "destination": self.destination,
            "livemode": false,
            "metadata": self.metadata,
            "reversed": self.reversed,
            "transfer_group": self.transfer_group,
        })
    }
}

struct State {
    key: String,
    transfers: Vec<FakeTransfer>,
    /// Idempotency key → (parameters, status, body).
    keys: HashMap<String, (String, u16, Value)>,
    /// Available platform balance per currency; absent: unlimited.
    balance: HashMap<String, i64>,
    /// Accounts whose `transfers` capability is not active.
    inactive: HashMap<String, String>,
    /// Accounts that do not exist.
    missing: Vec<String>,
    faults: VecDeque<Fault>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct FakeStripeConnect {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

fn lock(s: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Reply {
    let mut e = json!({"type": kind, "message": message});
    if let Some(c) = code {
        e["code"] = c.into();
        e["doc_url"] = format!(
            "https://stripe.com/docs/error-codes/{}",
            c.replace('_', "-")
        )
        .into();
    }
    if let Some(p) = param {
        e["param"] = p.into();
    }
    Reply::json(status, json!({"error": e}))
}

impl FakeStripeConnect {
    /// Serve on `addr` (port 0 for a free one); requests must carry `Bearer {key}`.
    pub async fn start(addr: SocketAddr, key: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            key: key.into(),
            transfers: vec![],
            keys: HashMap::new(),
            balance: HashMap::new(),
            inactive: HashMap::new(),
            missing: vec![],
            faults: VecDeque::new(),
            received: vec![],
        }));
        let s2 = state.clone();
        let base_url = serve(
            addr,
            Arc::new(move |req| {
                let s = s2.clone();
                Box::pin(async move { answer(&s, req) })
            }),
        )
        .await?;
        Ok(FakeStripeConnect { base_url, state })
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }
    pub fn transfers(&self) -> Vec<FakeTransfer> {
        lock(&self.state).transfers.clone()
    }
    /// Transfers made per `metadata[payout_item]` (paid once: every count is 1).
    pub fn transfers_by_item(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for t in lock(&self.state).transfers.iter() {
            let item = t.metadata.get("payout_item").cloned().unwrap_or_default();
            *out.entry(item).or_default() += 1;
        }
        out
    }
    pub fn fault(&self, f: Fault) {
        lock(&self.state).faults.push_back(f);
    }
    /// The platform's available balance in `currency` (minor units).
    pub fn set_balance(&self, currency: &str, minor: i64) {
        lock(&self.state)
            .balance
            .insert(currency.to_ascii_lowercase(), minor);
    }
    /// The account's `transfers` capability is `status` (`active` lifts it).
    pub fn set_capability(&self, account: &str, status: &str) {
        let mut st = lock(&self.state);
        if status == "active" {
            st.inactive.remove(account);
        } else {
            st.inactive.insert(account.to_string(), status.to_string());
        }
    }
    pub fn remove_account(&self, account: &str) {
        lock(&self.state).missing.push(account.to_string());
    }
    /// Forget every idempotency key (Stripe prunes keys after 24 hours).
    pub fn prune_keys(&self) {
        lock(&self.state).keys.clear();
    }
    /// Reverse a transfer (as the platform would in the Dashboard).
    pub fn reverse(&self, transfer_id: &str) -> Option<FakeTransfer> {
        let mut st = lock(&self.state);
        let t = st.transfers.iter_mut().find(|t| t.id == transfer_id)?;
        t.reversed = true;
        Some(t.clone())
    }
}

const KEEP: [&str; 4] = [
    "authorization",
    "idempotency-key",
    "stripe-version",
    "content-type",
];

fn answer(state: &Arc<Mutex<State>>, req: Req) -> Reply {
    let mut st = lock(state);
    let reply = route(&mut st, &req);
    if !req.path.starts_with("/_fake") {
        let rec = record(&req, reply.status, &KEEP);
        st.received.push(rec);
    }
    reply
}

fn route(st: &mut State, req: &Req) -> Reply {
    if let Some(rest) = req.path.strip_prefix("/_fake") {
        return control(st, req, rest);
    }
    let fault = if req.path == "/v1/transfers" {
        st.faults.pop_front()
    } else {
        None
    };
    match &fault {
        Some(Fault::ServerError { status }) => {
            return error(
                *status,
                "api_error",
                None,
                "An unknown error occurred",
                None,
            )
        }
        Some(Fault::RateLimit) => {
            let mut r = error(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Request rate limit exceeded.",
                None,
            );
            r.headers.push(("retry-after", "1".into()));
            return r;
        }
        _ => {}
    }
    if req.header("authorization") != Some(format!("Bearer {}", st.key)) {
        return error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_***",
            None,
        );
    }
    let mut reply = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/transfers") => create(st, req, fault.as_ref()),
        ("GET", "/v1/transfers") => list(st, req),
        (m, p) => error(
            404,
            "invalid_request_error",
            None,
            &format!("Unrecognized request URL ({m}: {p})."),
            None,
        ),
    };
    if let Some(Fault::TimeoutAfterEffect { delay_ms }) = fault {
        reply.delay_ms = delay_ms;
    }
    reply
}

fn create(st: &mut State, req: &Req, fault: Option<&Fault>) -> Reply {
    let form = req.form();
    let params: BTreeMap<String, String> = form.iter().cloned().collect();
    let fingerprint = serde_json::to_string(&params).unwrap_or_default();
    let key = req.header("idempotency-key");
    if let Some(k) = &key {
        if let Some((fp, status, body)) = st.keys.get(k) {
            if *fp != fingerprint {
                return error(400, "idempotency_error", None, &format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."), None);
            }
            let mut r = Reply::json(*status, body.clone());
            r.headers.push(("idempotent-replayed", "true".into()));
            return r;
        }
    }
    let reply = create_new(st, &params, key.clone());
    let reply = match fault {
        // Stripe stores a 500 under the key like any other answer.
        Some(Fault::ErrorAfterEffect) => {
            error(500, "api_error", None, "An unknown error occurred", None)
        }
        _ => reply,
    };
    if let Some(k) = key {
        st.keys
            .insert(k, (fingerprint, reply.status, reply.body.clone()));
    }
    reply
}

fn create_new(st: &mut State, p: &BTreeMap<String, String>, key: Option<String>) -> Reply {
    let Some(amount) = p
        .get("amount")
        .and_then(|a| a.parse::<i64>().ok())
        .filter(|a| *a > 0)
    else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: amount.",
            Some("amount"),
        );
    };
    let Some(currency) = p.get("currency").cloned() else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: currency.",
            Some("currency"),
        );
    };
    let Some(destination) = p.get("destination").cloned() else {
        return error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: destination.",
            Some("destination"),
        );
    };
    if st.missing.contains(&destination) || !destination.starts_with("acct_") {
        return error(
            400,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such destination: '{destination}'"),
            Some("destination"),
        );
    }
    if let Some(status) = st.inactive.get(&destination) {
        return error(400, "invalid_request_error", Some("insufficient_capabilities_for_transfer"), &format!("Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments (transfers is {status})."), Some("destination"));
    }
    if let Some(avail) = st.balance.get(&currency).copied() {
        if avail < amount {
            return error(400, "invalid_request_error", Some("balance_insufficient"), "You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Top-ups.", None);
        }
        st.balance.insert(currency.clone(), avail - amount);
    }
    let metadata: BTreeMap<String, String> = p
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|r| r.strip_suffix(']'))
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    let t = FakeTransfer {
        id: crate::seq_id("tr_", st.transfers.len() + 1, 24),
        amount,
        currency,
        destination,
        transfer_group: p.get("transfer_group").cloned(),
        metadata,
        created: chrono::Utc::now().timestamp(),
        reversed: false,
        idempotency_key: key,
    };
    let body = t.json();
    st.transfers.push(t);
    Reply::json(200, body)
}

fn list(st: &State, req: &Req) -> Reply {
    let q = req.query_pairs();
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let group = q.get("transfer_group");
    let data: Vec<Value> = st
        .transfers
        .iter()
        .rev()
        .filter(|t| group.is_none() || t.transfer_group.as_ref() == group)
        .take(limit)
        .map(FakeTransfer::json)
        .collect();
    Reply::json(
        200,
        json!({"object": "list", "url": "/v1/transfers", "has_more": false, "data": data}),
    )
}

fn control(st: &mut State, req: &Req, rest: &str) -> Reply {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    match (req.method.as_str(), rest) {
        ("GET", "/received") => Reply::json(200, json!(st.received)),
        ("GET", "/transfers") => Reply::json(200, json!(st.transfers)),
        ("POST", "/faults") => match serde_json::from_value::<Fault>(body) {
            Ok(f) => {
                st.faults.push_back(f);
                Reply::json(200, json!({"queued": st.faults.len()}))
            }
            Err(e) => Reply::json(400, json!({"error": e.to_string()})),
        },
        ("POST", "/balance") => {
            let c = body["currency"]
                .as_str()
                .unwrap_or("usd")
                .to_ascii_lowercase();
            let a = body["available"].as_i64().unwrap_or(0);
            st.balance.insert(c.clone(), a);
            Reply::json(200, json!({"currency": c, "available": a}))
        }
        ("POST", "/prune_keys") => {
            st.keys.clear();
            Reply::json(200, json!({"pruned": true}))
        }
        ("POST", p) if p.starts_with("/transfers/") && p.ends_with("/reverse") => {
            let id = p
                .trim_start_matches("/transfers/")
                .trim_end_matches("/reverse");
            match st.transfers.iter_mut().find(|t| t.id == id) {
                Some(t) => {
                    t.reversed = true;
                    Reply::json(200, t.json())
                }
                None => Reply::json(404, json!({"error": "no such transfer"})),
            }
        }
        _ => Reply::json(
            404,
            json!({"error": "unknown control route", "routes": [
            "GET /_fake/received", "GET /_fake/transfers", "POST /_fake/faults", "POST /_fake/balance",
            "POST /_fake/prune_keys", "POST /_fake/transfers/{id}/reverse"]}),
        ),
    }
}
