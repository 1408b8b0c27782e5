//! The Lambda Runtime API (`/2018-06-01/runtime/...`), served to function processes, and the
//! invocation queue in front of them.
//!
//! Each function has one [`FunctionChannel`] (its queue of invocations, for the life of devgw)
//! and up to [`FunctionChannel::concurrency`] [`Instance`]s, Lambda's execution environments:
//! each takes the next queued invocation when it asks for one, and handles one at a time. Each
//! process of an instance is one [`Generation`] with its own Runtime API listener, so that
//! requests of a dead process can never take an invocation meant for its successor.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::error::DevgwError;
use crate::http::{self, Body, MAX_PAYLOAD};
use crate::{ACCOUNT_ID, REGION};

/// How long an invocation may wait in the queue (e.g. while its function restarts), on top of
/// the function's timeout, before the caller gets an error.
pub const QUEUE_WAIT: Duration = Duration::from_secs(60);

/// The result of one invocation, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function's response payload.
    Response(Bytes),
    /// `{"errorType", "errorMessage", ...}` from the runtime or from devgw.
    Error { error_type: String, body: Bytes },
}

impl Outcome {
    pub fn error(error_type: &str, message: &str) -> Self {
        Outcome::Error {
            error_type: error_type.to_string(),
            body: Bytes::from(
                json!({ "errorType": error_type, "errorMessage": message }).to_string(),
            ),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Error { .. })
    }
}

/// A function's state, for `/dev/functions` and readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum Status {
    /// Process started, not yet waiting for an event.
    Starting,
    /// Waiting for (or handling) events.
    Ready,
    /// Exited; restarting after a pause.
    Crashed(String),
    /// The binary does not exist (not built).
    Missing(String),
    Stopped,
}

pub struct Invocation {
    pub id: String,
    pub payload: Bytes,
    pub trace_id: String,
    pub reply: oneshot::Sender<Outcome>,
}

struct InFlight {
    id: String,
    reply: oneshot::Sender<Outcome>,
    started: Instant,
}

/// Lock a mutex even if a panicking thread poisoned it (the data stays consistent here: every
/// critical section is a single assignment or take).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One function's invocation queue, shared by its instances.
pub struct FunctionChannel {
    pub name: String,
    pub arn: String,
    pub timeout: Duration,
    /// At most this many instances (processes) handle invocations at once.
    pub concurrency: usize,
    tx: mpsc::UnboundedSender<Invocation>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    instances: Mutex<Vec<Arc<Instance>>>,
    /// Invocations asked for and not answered yet (queued or being handled).
    outstanding: AtomicUsize,
    /// Told when there are more outstanding invocations than instances.
    scale: Notify,
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
}

/// One execution environment of a function: one process at a time (restarted when it dies),
/// handling one invocation at a time.
#[derive(Debug)]
pub struct Instance {
    /// 0 for the first instance (started with devgw), then 1, 2, ... in the order they started.
    pub index: usize,
    status: Mutex<Status>,
    generation: Mutex<Option<Arc<Generation>>>,
    /// Process id of the current process (0 when none).
    pub pid: AtomicU32,
}

impl Instance {
    fn new(index: usize) -> Self {
        Instance {
            index,
            status: Mutex::new(Status::Starting),
            generation: Mutex::new(None),
            pid: AtomicU32::new(0),
        }
    }

    /// `Ready` once the current process has asked for an event; else what the supervisor set.
    pub fn status(&self) -> Status {
        let s = lock(&self.status).clone();
        match (&s, lock(&self.generation).as_ref()) {
            (Status::Starting, Some(g)) if g.first_next().is_some() => Status::Ready,
            _ => s,
        }
    }

    /// Set by the supervisor: `Starting` with a new process ([`Instance::set_generation`]),
    /// `Crashed`, `Missing` or `Stopped`.
    pub fn set_status(&self, s: Status) {
        *lock(&self.status) = s;
    }

    /// The process now running (or none).
    pub fn set_generation(&self, gen: Option<Arc<Generation>>) {
        *lock(&self.generation) = gen;
    }

    /// Handling an invocation.
    pub fn is_busy(&self) -> bool {
        lock(&self.generation).as_ref().is_some_and(|g| g.is_busy())
    }
}

/// Counts an invocation as outstanding while it lives (also when its caller gives up).
struct Outstanding<'a>(&'a AtomicUsize);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for FunctionChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionChannel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
}

/// An X-Ray style trace header value.
pub fn new_trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let r = uuid::Uuid::new_v4().simple().to_string();
    let p = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &r[..24],
        &p[..16]
    )
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

impl FunctionChannel {
    /// A function with one instance at most.
    pub fn new(name: &str, timeout: Duration) -> Arc<Self> {
        Self::with_concurrency(name, timeout, 1)
    }

    /// A function with up to `concurrency` instances (at least one).
    pub fn with_concurrency(name: &str, timeout: Duration, concurrency: usize) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(FunctionChannel {
            name: name.to_string(),
            arn: function_arn(name),
            timeout,
            concurrency: concurrency.max(1),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            instances: Mutex::new(vec![]),
            outstanding: AtomicUsize::new(0),
            scale: Notify::new(),
            invocations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// The function's state from its instances': `Ready` if one is, else `Starting` if one is
    /// (also before the first one exists), else the first one's.
    pub fn status(&self) -> Status {
        let statuses: Vec<Status> = self.instances().iter().map(|i| i.status()).collect();
        if statuses.contains(&Status::Ready) {
            return Status::Ready;
        }
        if statuses.is_empty() || statuses.contains(&Status::Starting) {
            return Status::Starting;
        }
        statuses[0].clone()
    }

    /// The instances started so far, first one first.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        lock(&self.instances).clone()
    }

    /// Process id of the first instance's process (0 when none).
    pub fn pid(&self) -> u32 {
        self.instances()
            .first()
            .map(|i| i.pid.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// An instance is handling an invocation.
    pub fn is_busy(&self) -> bool {
        self.instances().iter().any(|i| i.is_busy())
    }

    /// Invocations asked for and not answered yet (queued or being handled).
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// Register a new instance (its supervisor runs its processes).
    pub fn add_instance(&self) -> Arc<Instance> {
        let mut all = lock(&self.instances);
        let i = Arc::new(Instance::new(all.len()));
        all.push(i.clone());
        i
    }

    /// More invocations are outstanding than there are instances, and the limit allows another
    /// one: as on Lambda, an invocation that finds no free execution environment gets a new one.
    pub fn wants_instance(&self) -> bool {
        let n = lock(&self.instances).len();
        n < self.concurrency && self.outstanding() > n
    }

    /// Resolves when [`FunctionChannel::wants_instance`] may have become true.
    pub async fn scale_requested(&self) {
        self.scale.notified().await;
    }

    /// Invoke the function and wait for its outcome. `Err` when the function cannot run at all
    /// (not built, devgw stopping).
    pub async fn invoke(&self, payload: Bytes) -> Result<Outcome, DevgwError> {
        let unavailable = |reason: String| DevgwError::Unavailable {
            name: self.name.clone(),
            reason,
        };
        match self.status() {
            Status::Missing(reason) => return Err(unavailable(reason)),
            Status::Stopped => return Err(unavailable("devgw is stopping".into())),
            _ => {}
        }
        let _outstanding = self.count_outstanding();
        let (reply, rx) = oneshot::channel();
        let inv = Invocation {
            id: uuid::Uuid::new_v4().to_string(),
            payload,
            trace_id: new_trace_id(),
            reply,
        };
        self.tx
            .send(inv)
            .map_err(|_| unavailable("the invocation queue is closed".into()))?;
        self.invocations.fetch_add(1, Ordering::Relaxed);
        let outcome = match tokio::time::timeout(self.timeout + QUEUE_WAIT, rx).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => Outcome::error("Runtime.Unavailable", "the invocation was dropped"),
            Err(_) => Outcome::error(
                "Sandbox.Timedout",
                &format!(
                    "no response within {} s (queued behind a restarting or busy function)",
                    (self.timeout + QUEUE_WAIT).as_secs()
                ),
            ),
        };
        if outcome.is_error() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(outcome)
    }

    fn count_outstanding(&self) -> Outstanding<'_> {
        let n = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        if n > lock(&self.instances).len() && self.concurrency > 1 {
            self.scale.notify_one();
        }
        Outstanding(&self.outstanding)
    }

    /// Fail every queued invocation (the function cannot initialise). Returns how many.
    pub async fn fail_queued(&self, outcome: &Outcome) -> usize {
        let mut rx = self.rx.lock().await;
        let mut n = 0;
        while let Ok(inv) = rx.try_recv() {
            let _ = inv.reply.send(outcome.clone());
            n += 1;
        }
        n
    }
}

/// One process of a function: its Runtime API requests, what they told, and the invocation it
/// is handling.
pub struct Generation {
    pub spawned_at: Mutex<Instant>,
    first_next: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<Outcome>>,
    init_reported: AtomicBool,
    kill: Notify,
    inflight: Mutex<Option<InFlight>>,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("first_next", &self.first_next())
            .field("busy", &self.is_busy())
            .finish_non_exhaustive()
    }
}

impl Default for Generation {
    fn default() -> Self {
        Generation {
            spawned_at: Mutex::new(Instant::now()),
            first_next: watch::channel(None).0,
            init_error: Mutex::new(None),
            init_reported: AtomicBool::new(false),
            kill: Notify::new(),
            inflight: Mutex::new(None),
        }
    }
}

impl Generation {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Mark the moment the process was started (just before exec).
    pub fn mark_spawned(&self) {
        *lock(&self.spawned_at) = Instant::now();
    }

    /// When the process first asked for an event (end of its init), if it has.
    pub fn first_next(&self) -> Option<Instant> {
        *self.first_next.borrow()
    }

    /// Wait until the process first asks for an event.
    pub async fn wait_first_next(&self) -> Instant {
        let mut rx = self.first_next.subscribe();
        loop {
            if let Some(t) = *rx.borrow_and_update() {
                return t;
            }
            if rx.changed().await.is_err() {
                // The sender lives in self, so this cannot happen; wait forever like a missing event.
                std::future::pending::<()>().await;
            }
        }
    }

    pub fn init_error(&self) -> Option<Outcome> {
        lock(&self.init_error).clone()
    }

    /// Ask the supervisor to kill this process (used on timeouts).
    pub fn request_kill(&self) {
        self.kill.notify_one();
    }

    pub async fn kill_requested(&self) {
        self.kill.notified().await;
    }

    /// Handling an invocation.
    pub fn is_busy(&self) -> bool {
        lock(&self.inflight).is_some()
    }

    fn take_inflight(&self, id: Option<&str>) -> Option<InFlight> {
        let mut guard = lock(&self.inflight);
        match (guard.as_ref(), id) {
            (Some(f), Some(id)) if f.id != id => None,
            (Some(_), _) => guard.take(),
            (None, _) => None,
        }
    }

    /// Fail the invocation being handled (the process died or was killed).
    pub fn fail_inflight(&self, outcome_for: impl FnOnce(&str) -> Outcome) -> bool {
        match self.take_inflight(None) {
            Some(f) => {
                let o = outcome_for(&f.id);
                let _ = f.reply.send(o);
                true
            }
            None => false,
        }
    }

    fn init_duration(&self) -> Option<Duration> {
        let first = self.first_next()?;
        if self.init_reported.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(first.saturating_duration_since(*lock(&self.spawned_at)))
    }
}

fn runtime_error(status: u16, error_type: &str, message: &str) -> Response<Body> {
    http::json_response(
        status,
        &json!({ "errorType": error_type, "errorMessage": message }),
    )
}

fn accepted() -> Response<Body> {
    http::json_response(202, &json!({ "status": "OK" }))
}

fn error_type_of(headers: &hyper::HeaderMap, body: &[u8], default: &str) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("errorType")
                        .and_then(|t| t.as_str())
                        .map(str::to_string)
                })
        })
        .unwrap_or_else(|| default.to_string())
}

/// Handle one Runtime API request of `gen`, a process of `chan`'s function.
pub async fn handle(
    chan: Arc<FunctionChannel>,
    gen: Arc<Generation>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return runtime_error(404, "NotFound", "unknown Runtime API path");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let method = req.method().clone();
    match (&method, parts.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(chan, gen).await,
        (&Method::POST, ["invocation", id, "response"]) => {
            let id = id.to_string();
            let body = match http::read_body(req.into_body(), MAX_PAYLOAD).await {
                Ok(b) => b,
                Err(e) => {
                    gen.fail_inflight(|_| {
                        Outcome::error(
                            "Function.ResponseSizeTooLarge",
                            &format!("response payload too large or unreadable: {e}"),
                        )
                    });
                    return runtime_error(413, "RequestEntityTooLarge", &e);
                }
            };
            complete(&chan, &gen, &id, Outcome::Response(body))
        }
        (&Method::POST, ["invocation", id, "error"]) => {
            let id = id.to_string();
            let headers = req.headers().clone();
            let body = http::read_body(req.into_body(), MAX_PAYLOAD)
                .await
                .unwrap_or_default();
            let error_type = error_type_of(&headers, &body, "Unhandled");
            complete(&chan, &gen, &id, Outcome::Error { error_type, body })
        }
        (&Method::POST, ["init", "error"]) => {
            let headers = req.headers().clone();
            let body = http::read_body(req.into_body(), MAX_PAYLOAD)
                .await
                .unwrap_or_default();
            let error_type = error_type_of(&headers, &body, "Runtime.InitError");
            tracing::error!(
                function = %chan.name,
                error_type = %error_type,
                body = %String::from_utf8_lossy(&body),
                "init error"
            );
            *lock(&gen.init_error) = Some(Outcome::Error { error_type, body });
            accepted()
        }
        _ => runtime_error(404, "NotFound", "unknown Runtime API path"),
    }
}

async fn next(chan: Arc<FunctionChannel>, gen: Arc<Generation>) -> Response<Body> {
    gen.first_next.send_if_modified(|v| {
        if v.is_none() {
            *v = Some(Instant::now());
            true
        } else {
            false
        }
    });
    if let Some(prev) = gen.take_inflight(None) {
        let _ = prev.reply.send(Outcome::error(
            "Runtime.NoResponse",
            "the runtime asked for the next event without answering this one",
        ));
    }
    let inv = {
        let mut rx = chan.rx.lock().await;
        rx.recv().await
    };
    let Some(inv) = inv else {
        return runtime_error(500, "ServiceUnavailable", "devgw is stopping");
    };
    let deadline = now_ms() + chan.timeout.as_millis();
    let id = inv.id.clone();
    *lock(&gen.inflight) = Some(InFlight {
        id: id.clone(),
        reply: inv.reply,
        started: Instant::now(),
    });
    tracing::debug!(function = %chan.name, request_id = %id, "START");
    {
        let chan = chan.clone();
        let gen = gen.clone();
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(chan.timeout).await;
            if let Some(f) = gen.take_inflight(Some(&id)) {
                let secs = chan.timeout.as_secs_f64();
                tracing::warn!(function = %chan.name, request_id = %id, "timed out after {secs:.2} s; restarting the process");
                let _ = f.reply.send(Outcome::error(
                    "Sandbox.Timedout",
                    &format!("RequestId: {id} Error: Task timed out after {secs:.2} seconds"),
                ));
                gen.request_kill();
            }
        });
    }
    http::response(
        200,
        &[
            ("content-type".into(), "application/json".into()),
            ("lambda-runtime-aws-request-id".into(), id),
            ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn".into(),
                chan.arn.clone(),
            ),
            ("lambda-runtime-trace-id".into(), inv.trace_id),
        ],
        inv.payload,
    )
}

fn complete(
    chan: &FunctionChannel,
    gen: &Generation,
    id: &str,
    outcome: Outcome,
) -> Response<Body> {
    let Some(f) = gen.take_inflight(Some(id)) else {
        return runtime_error(400, "InvalidRequestID", "no such invocation in progress");
    };
    let duration = f.started.elapsed();
    let init = gen
        .init_duration()
        .map(|d| format!(" Init Duration: {:.2} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_default();
    match &outcome {
        Outcome::Response(_) => tracing::info!(
            "{} REPORT RequestId: {} Duration: {:.2} ms{}",
            chan.name,
            f.id,
            duration.as_secs_f64() * 1000.0,
            init
        ),
        Outcome::Error { error_type, body } => tracing::warn!(
            "{} REPORT RequestId: {} Duration: {:.2} ms{} Error: {} {}",
            chan.name,
            f.id,
            duration.as_secs_f64() * 1000.0,
            init,
            error_type,
            String::from_utf8_lossy(body)
        ),
    }
    let _ = f.reply.send(outcome);
    accepted()
}

/// A running Runtime API listener for one generation; stops (with all its connections) on drop.
pub struct RuntimeServer {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a Runtime API listener on a free loopback port for a new process of `chan`.
pub async fn start_server(
    chan: Arc<FunctionChannel>,
    gen: Arc<Generation>,
) -> Result<RuntimeServer, DevgwError> {
    let listener = http::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr().map_err(|source| DevgwError::Bind {
        addr: "127.0.0.1:0".into(),
        source,
    })?;
    let task = tokio::spawn(http::serve(listener, move |req, _peer| {
        handle(chan.clone(), gen.clone(), req)
    }));
    Ok(RuntimeServer { addr, task })
}
