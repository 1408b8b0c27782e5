//! A fake of PayPal's REST token and Payouts batch API.
//!
//! Built from developer.paypal.com: "Get an access token" (`POST /v1/oauth2/token`, HTTP Basic
//! client id:secret, `grant_type=client_credentials`; answer `access_token`, `token_type`,
//! `expires_in` seconds; a bad client is 401 `invalid_client`), "Payouts API v1" (create batch
//! payout: `sender_batch_header.sender_batch_id`, `items[]` of `recipient_type`, `amount.value`
//! / `amount.currency`, `receiver`, `note`, `sender_item_id`, at most 15,000 items; answer 201
//! with `batch_header.payout_batch_id` and `batch_status` PENDING and a `self` link; a
//! `sender_batch_id` used in the last 30 days is rejected with a 400 `USER_BUSINESS_ERROR` that
//! names it and links to the original payout; `PayPal-Request-Id` replays the first answer for
//! 30 days; show payout batch details: `GET /v1/payments/payouts/{id}?page&page_size&
//! total_required`, items with `transaction_status` SUCCESS, FAILED, PENDING, UNCLAIMED,
//! RETURNED, ONHOLD, BLOCKED, REFUNDED, REVERSED and `errors`), "Currency codes" (HUF, JPY, TWD
//! without decimals) and "Payouts error messages" (`VALIDATION_ERROR`, `AUTHENTICATION_FAILURE`,
//! `RATE_LIMIT_REACHED` 429).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{record, seq_id, serve, Fault, Received, Reply, Req};

/// Currencies the fake pays (PayPal's payout currencies) and those without decimals.
const CURRENCIES: [&str; 24] = [
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "JPY",
    "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
];
const NO_DECIMALS: [&str; 3] = ["HUF", "JPY", "TWD"];

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Token,
    CreateBatch,
    ShowBatch,
    Any,
}

/// What happens to a receiver's items when PayPal processes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum ReceiverRule {
    Success,
    /// FAILED with this error name (e.g. `RECEIVER_UNREGISTERED`, `RECEIVER_ACCOUNT_LOCKED`).
    Failed {
        error: String,
    },
    Blocked,
    /// UNCLAIMED (no PayPal account yet); PayPal returns it after 30 days (move it RETURNED).
    Unclaimed,
}

#[derive(Debug, Clone, Serialize)]
pub struct FakeItem {
    pub payout_item_id: String,
    pub sender_item_id: String,
    pub receiver: String,
    pub value: String,
    pub currency: String,
    pub note: String,
    pub status: String,
    pub error: Option<String>,
    pub time_processed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FakeBatch {
    pub payout_batch_id: String,
    pub sender_batch_id: String,
    pub time_created: String,
    pub items: Vec<FakeItem>,
}

struct State {
    base_url: String,
    client_id: String,
    secret: String,
    tokens: HashMap<String, i64>,
    token_seq: usize,
    batch_seq: usize,
    item_seq: usize,
    batches: Vec<FakeBatch>,
    request_ids: HashMap<String, (u16, Value)>,
    forget_request_ids: bool,
    faults: VecDeque<(Route, Fault)>,
    receivers: HashMap<String, ReceiverRule>,
    received: Vec<Received>,
    /// Seconds a token lives.
    token_lifetime_s: i64,
}

#[derive(Clone)]
pub struct FakePayPal {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn error(status: u16, name: &str, message: &str, details: Value) -> Reply {
    Reply::json(
        status,
        json!({
            "name": name,
            "message": message,
            "debug_id": "fake0debug",
            "details": details,
            "information_link": format!("https://developer.paypal.com/docs/api/payments.payouts-batch/#errors"),
        }),
    )
}

impl FakePayPal {
    /// Serve on `addr` (port 0 for a free one) for the app `client_id`/`secret`.
    pub async fn start(addr: SocketAddr, client_id: &str, secret: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            base_url: String::new(),
            client_id: client_id.into(),
            secret: secret.into(),
            tokens: HashMap::new(),
            token_seq: 0,
            batch_seq: 0,
            item_seq: 0,
            batches: vec![],
            request_ids: HashMap::new(),
            forget_request_ids: false,
            faults: VecDeque::new(),
            receivers: HashMap::new(),
            received: vec![],
            token_lifetime_s: 32_400,
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
        lock(&state).base_url = base_url.clone();
        Ok(FakePayPal { base_url, state })
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }
    pub fn batches(&self) -> Vec<FakeBatch> {
        lock(&self.state).batches.clone()
    }
    /// How many batch items PayPal created per `sender_item_id` (money sent at most once
    /// means every count is 1).
    pub fn items_by_sender_item_id(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for b in lock(&self.state).batches.iter() {
            for i in &b.items {
                *out.entry(i.sender_item_id.clone()).or_default() += 1;
            }
        }
        out
    }
    pub fn fault(&self, route: Route, fault: Fault) {
        lock(&self.state).faults.push_back((route, fault));
    }
    pub fn set_receiver(&self, receiver: &str, rule: ReceiverRule) {
        lock(&self.state)
            .receivers
            .insert(receiver.to_ascii_lowercase(), rule);
    }
    /// Move an item later (UNCLAIMED → RETURNED, SUCCESS → REVERSED, …).
    pub fn move_item(&self, sender_item_id: &str, status: &str) -> bool {
        move_item(&mut lock(&self.state), sender_item_id, status)
    }
    /// Forget `PayPal-Request-Id`s, so a re-sent batch meets the duplicate-batch error.
    pub fn forget_request_ids(&self, on: bool) {
        lock(&self.state).forget_request_ids = on;
    }
    /// Token lifetime in seconds for new tokens.
    pub fn token_lifetime(&self, seconds: i64) {
        lock(&self.state).token_lifetime_s = seconds;
    }
    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        lock(&self.state).token_seq
    }
}

fn lock(s: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn move_item(st: &mut State, sender_item_id: &str, status: &str) -> bool {
    let mut moved = false;
    for b in st.batches.iter_mut() {
        for i in b.items.iter_mut() {
            if i.sender_item_id == sender_item_id {
                i.status = status.to_string();
                i.time_processed = Some(now_iso());
                if status == "FAILED" && i.error.is_none() {
                    i.error = Some("RECEIVER_UNREGISTERED".into());
                }
                moved = true;
            }
        }
    }
    moved
}

const KEEP: [&str; 4] = [
    "authorization",
    "paypal-request-id",
    "content-type",
    "accept",
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
    let path = req.path.as_str();
    if let Some(rest) = path.strip_prefix("/_fake") {
        return control(st, req, rest);
    }
    let which = match (req.method.as_str(), path) {
        ("POST", "/v1/oauth2/token") => Route::Token,
        ("POST", "/v1/payments/payouts") => Route::CreateBatch,
        ("GET", p) if p.starts_with("/v1/payments/payouts/") => Route::ShowBatch,
        _ => {
            return error(
                404,
                "RESOURCE_NOT_FOUND",
                "The specified resource does not exist.",
                json!([]),
            )
        }
    };
    let fault = match st
        .faults
        .iter()
        .position(|(r, _)| *r == which || *r == Route::Any)
    {
        Some(i) => st.faults.remove(i).map(|(_, f)| f),
        None => None,
    };
    match &fault {
        Some(Fault::ServerError { status }) => {
            return error(
                *status,
                "INTERNAL_SERVICE_ERROR",
                "An internal service error has occurred.",
                json!([]),
            )
        }
        Some(Fault::RateLimit) => {
            let mut r = error(
                429,
                "RATE_LIMIT_REACHED",
                "Too many requests. Blocked due to rate limiting.",
                json!([]),
            );
            r.headers.push(("retry-after", "1".into()));
            return r;
        }
        _ => {}
    }
    let mut reply = match which {
        Route::Token => token(st, req),
        Route::CreateBatch => match authorised(st, req) {
            Err(r) => r,
            Ok(()) => create_batch(st, req),
        },
        Route::ShowBatch => match authorised(st, req) {
            Err(r) => r,
            Ok(()) => show_batch(st, req),
        },
        Route::Any => unreachable_reply(),
    };
    match fault {
        Some(Fault::ErrorAfterEffect) => {
            reply = error(
                500,
                "INTERNAL_SERVICE_ERROR",
                "An internal service error has occurred.",
                json!([]),
            )
        }
        Some(Fault::TimeoutAfterEffect { delay_ms }) => reply.delay_ms = delay_ms,
        _ => {}
    }
    reply
}

fn unreachable_reply() -> Reply {
    error(500, "INTERNAL_SERVICE_ERROR", "no route", json!([]))
}

fn token(st: &mut State, req: &Req) -> Reply {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", st.client_id, st.secret));
    let form: HashMap<String, String> = req.form().into_iter().collect();
    if req.header("authorization") != Some(format!("Basic {expected}")) {
        return Reply::json(
            401,
            json!({"error": "invalid_client", "error_description": "Client Authentication failed"}),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Reply::json(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}),
        );
    }
    st.token_seq += 1;
    let t = seq_id("A21AA", st.token_seq, 40);
    let now = chrono::Utc::now().timestamp_millis();
    st.tokens
        .insert(t.clone(), now + st.token_lifetime_s * 1000);
    Reply::json(
        200,
        json!({
            "scope": "https://uri.paypal.com/services/payments/payouts https://uri.paypal.com/payments/payouts",
            "access_token": t,
            "token_type": "Bearer",
            "app_id": "APP-FAKE0000000000",
            "expires_in": st.token_lifetime_s,
            "nonce": format!("{}-fake", now_iso()),
        }),
    )
}

fn authorised(st: &State, req: &Req) -> Result<(), Reply> {
    let now = chrono::Utc::now().timestamp_millis();
    let ok = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string))
        .and_then(|t| st.tokens.get(&t).copied())
        .is_some_and(|exp| now < exp);
    if ok {
        Ok(())
    } else {
        Err(Reply::json(
            401,
            json!({"name": "AUTHENTICATION_FAILURE", "message": "Authentication failed due to invalid authentication credentials or a missing Authorization header.", "links": []}),
        ))
    }
}

fn valid_value(value: &str, currency: &str) -> bool {
    let (whole, frac) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    match frac {
        None => true,
        Some(f) => {
            !NO_DECIMALS.contains(&currency)
                && f.len() <= 2
                && !f.is_empty()
                && f.chars().all(|c| c.is_ascii_digit())
        }
    }
}

fn create_batch(st: &mut State, req: &Req) -> Reply {
    let request_id = req.header("paypal-request-id");
    if let Some(id) = &request_id {
        if !st.forget_request_ids {
            if let Some((status, body)) = st.request_ids.get(id) {
                return Reply::json(*status, body.clone());
            }
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            400,
            "MALFORMED_REQUEST",
            "The request JSON is not well formed.",
            json!([]),
        );
    };
    let sender_batch_id = body["sender_batch_header"]["sender_batch_id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let mut problems = vec![];
    if items.is_empty() || items.len() > 15_000 {
        problems.push(json!({"field": "items", "location": "body", "issue": "Items must hold 1 to 15000 payout items."}));
    }
    for (n, i) in items.iter().enumerate() {
        let value = i["amount"]["value"].as_str().unwrap_or("");
        let currency = i["amount"]["currency"].as_str().unwrap_or("");
        if !CURRENCIES.contains(&currency) {
            problems.push(json!({"field": format!("items[{n}].amount.currency"), "location": "body", "issue": "Currency code is invalid or is not currently supported."}));
        } else if !valid_value(value, currency) {
            problems.push(json!({"field": format!("items[{n}].amount.value"), "location": "body", "issue": "Amount value is invalid for the currency."}));
        }
        if i["receiver"].as_str().unwrap_or("").is_empty() {
            problems.push(json!({"field": format!("items[{n}].receiver"), "location": "body", "issue": "Receiver is required."}));
        }
    }
    if !problems.is_empty() {
        return error(
            400,
            "VALIDATION_ERROR",
            "Invalid request - see details.",
            json!(problems),
        );
    }
    if let Some(orig) = st
        .batches
        .iter()
        .find(|b| b.sender_batch_id == sender_batch_id)
    {
        let href = format!(
            "{}/v1/payments/payouts/{}",
            st.base_url, orig.payout_batch_id
        );
        let mut r = error(
            400,
            "USER_BUSINESS_ERROR",
            "User business error.",
            json!([{"field": "SENDER_BATCH_ID", "location": "body", "issue": format!("Batch with given sender_batch_id already exists: {sender_batch_id}")}]),
        );
        r.body["links"] = json!([{"href": href, "rel": "self", "method": "GET"}]);
        return r;
    }
    st.batch_seq += 1;
    let payout_batch_id = seq_id("", st.batch_seq + 1000, 13);
    let mut fake_items = vec![];
    for i in &items {
        st.item_seq += 1;
        fake_items.push(FakeItem {
            payout_item_id: seq_id("", st.item_seq + 500_000, 13),
            sender_item_id: i["sender_item_id"].as_str().unwrap_or("").to_string(),
            receiver: i["receiver"].as_str().unwrap_or("").to_string(),
            value: i["amount"]["value"].as_str().unwrap_or("").to_string(),
            currency: i["amount"]["currency"].as_str().unwrap_or("").to_string(),
            note: i["note"].as_str().unwrap_or("").to_string(),
            status: "PENDING".into(),
            error: None,
            time_processed: None,
        });
    }
    let batch = FakeBatch {
        payout_batch_id: payout_batch_id.clone(),
        sender_batch_id: sender_batch_id.clone(),
        time_created: now_iso(),
        items: fake_items,
    };
    let body = json!({
        "batch_header": {
            "payout_batch_id": payout_batch_id,
            "batch_status": "PENDING",
            "sender_batch_header": body["sender_batch_header"],
        },
        "links": [{"href": format!("{}/v1/payments/payouts/{}", st.base_url, payout_batch_id), "rel": "self", "method": "GET", "encType": "application/json"}],
    });
    st.batches.push(batch);
    if let Some(id) = request_id {
        st.request_ids.insert(id, (201, body.clone()));
    }
    Reply::json(201, body)
}

/// PayPal processes pending items when their batch is read: each receiver's rule decides.
fn process(st: &mut State, idx: usize) {
    let rules = st.receivers.clone();
    for i in st.batches[idx].items.iter_mut() {
        if i.status != "PENDING" {
            continue;
        }
        match rules.get(&i.receiver.to_ascii_lowercase()) {
            None | Some(ReceiverRule::Success) => i.status = "SUCCESS".into(),
            Some(ReceiverRule::Failed { error }) => {
                i.status = "FAILED".into();
                i.error = Some(error.clone());
            }
            Some(ReceiverRule::Blocked) => i.status = "BLOCKED".into(),
            Some(ReceiverRule::Unclaimed) => i.status = "UNCLAIMED".into(),
        }
        i.time_processed = Some(now_iso());
    }
}

fn show_batch(st: &mut State, req: &Req) -> Reply {
    let id = req.path.trim_start_matches("/v1/payments/payouts/");
    let Some(idx) = st.batches.iter().position(|b| b.payout_batch_id == id) else {
        return error(
            404,
            "INVALID_RESOURCE_ID",
            "The requested resource ID was not found.",
            json!([]),
        );
    };
    process(st, idx);
    let q = req.query_pairs();
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size: usize = q
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let b = &st.batches[idx];
    let total = b.items.len();
    let pages = total.div_ceil(size).max(1);
    let status = if b.items.iter().any(|i| i.status == "PENDING") {
        "PROCESSING"
    } else {
        "SUCCESS"
    };
    let items: Vec<Value> = b
        .items
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|i| {
            let mut v = json!({
                "payout_item_id": i.payout_item_id,
                "transaction_id": format!("TX{}", i.payout_item_id),
                "transaction_status": i.status,
                "payout_batch_id": b.payout_batch_id,
                "payout_item": {
                    "recipient_type": "EMAIL",
                    "amount": {"value": i.value, "currency": i.currency},
                    "note": i.note,
                    "receiver": i.receiver,
                    "sender_item_id": i.sender_item_id,
                },
                "time_processed": i.time_processed,
                "links": [{"href": format!("{}/v1/payments/payouts-item/{}", st.base_url, i.payout_item_id), "rel": "item", "method": "GET"}],
            });
            if let Some(e) = &i.error {
                v["errors"] = json!({"name": e, "message": "The receiver could not be paid.", "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors"});
            }
            v
        })
        .collect();
    let mut body = json!({
        "batch_header": {
            "payout_batch_id": b.payout_batch_id,
            "batch_status": status,
            "time_created": b.time_created,
            "sender_batch_header": {"sender_batch_id": b.sender_batch_id},
        },
        "items": items,
        "links": [],
    });
    if q.get("total_required").map(String::as_str) == Some("true") {
        body["total_items"] = json!(total);
        body["total_pages"] = json!(pages);
    }
    Reply::json(200, body)
}

fn control(st: &mut State, req: &Req, rest: &str) -> Reply {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    match (req.method.as_str(), rest) {
        ("GET", "/received") => Reply::json(200, json!(st.received)),
        ("GET", "/batches") => Reply::json(200, json!(st.batches)),
        ("POST", "/faults") => {
            let route: Route = serde_json::from_value(body["route"].clone()).unwrap_or(Route::Any);
            match serde_json::from_value::<Fault>(body.clone()) {
                Ok(f) => {
                    st.faults.push_back((route, f));
                    Reply::json(200, json!({"queued": st.faults.len()}))
                }
                Err(e) => Reply::json(400, json!({"error": e.to_string()})),
            }
        }
        ("POST", "/receivers") => {
            let receiver = body["receiver"].as_str().unwrap_or("").to_ascii_lowercase();
            match serde_json::from_value::<ReceiverRule>(body.clone()) {
                Ok(rule) if !receiver.is_empty() => {
                    st.receivers.insert(receiver, rule);
                    Reply::json(200, json!({"ok": true}))
                }
                Ok(_) => Reply::json(400, json!({"error": "receiver is required"})),
                Err(e) => Reply::json(400, json!({"error": e.to_string()})),
            }
        }
        ("POST", "/forget_request_ids") => {
            st.forget_request_ids = body["on"].as_bool().unwrap_or(true);
            Reply::json(200, json!({"forget_request_ids": st.forget_request_ids}))
        }
        ("POST", p) if p.starts_with("/items/") => {
            let id = p.trim_start_matches("/items/");
            let status = body["status"].as_str().unwrap_or("");
            if move_item(st, id, status) {
                Reply::json(200, json!({"moved": id, "status": status}))
            } else {
                Reply::json(404, json!({"error": "no such sender_item_id"}))
            }
        }
        _ => Reply::json(
            404,
            json!({"error": "unknown control route", "routes": [
            "GET /_fake/received", "GET /_fake/batches", "POST /_fake/faults", "POST /_fake/receivers",
            "POST /_fake/forget_request_ids", "POST /_fake/items/{sender_item_id}"]}),
        ),
    }
}
