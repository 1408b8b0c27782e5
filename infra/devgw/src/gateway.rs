//! The gateway on `127.0.0.1:PORT`: the Lambda invoke API, the template's HTTP API routes, the
//! dev endpoints (`/dev/functions`, `/dev/ready`, `/dev/schedule/{name}`), plus the processes,
//! SQS pollers and schedules behind them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apigw::{self, HttpRequestInfo};
use crate::error::DevgwError;
use crate::http::{self, Body, MAX_PAYLOAD};
use crate::process::{self, ProcessSpec};
use crate::routes::{percent_decode, Router};
use crate::runtime::{FunctionChannel, Outcome, Status};
use crate::schedule;
use crate::sqs;
use crate::template::{self, Discovery, EnvSource, FunctionSpec, QueueRef};
use crate::Shutdown;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Repository root (binary paths with `/` and the defaults below are relative to it).
    pub root: PathBuf,
    pub template: PathBuf,
    /// Optional local-only functions (`infra/dev/functions.yaml`).
    pub functions_file: Option<PathBuf>,
    /// Where the function binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// `127.0.0.1:9000`; port 0 picks a free one.
    pub listen: String,
    /// Fire schedules by their expressions (otherwise only `POST /dev/schedule/{name}`).
    pub auto_schedules: bool,
    /// Poll SQS queues (needs `AWS_ENDPOINT_URL`: devgw never polls a real AWS account).
    pub sqs: bool,
    /// Prefix of local queue names (`partnerctl setup-local` uses `partner-engine-local`).
    pub queue_prefix: String,
    /// How many instances of a function may run at once (`DEVGW_CONCURRENCY`; a function's
    /// `ReservedConcurrentExecutions` can lower it). At least 1.
    pub concurrency: usize,
}

/// `DEVGW_CONCURRENCY`'s default: several instances per function, as Lambda runs several
/// execution environments at once, few enough for a laptop (they start only when needed).
pub const DEFAULT_CONCURRENCY: u16 = 4;

/// How many instances of `spec` may run at once under devgw's limit `limit`.
pub fn function_concurrency(spec: &FunctionSpec, limit: usize) -> usize {
    let limit = limit.max(1);
    match spec.reserved_concurrency {
        // 0 throttles every invocation on Lambda; locally the function still runs, one at a time.
        Some(0) => 1,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(limit),
        None => limit,
    }
}

pub struct Function {
    pub spec: FunctionSpec,
    pub chan: Arc<FunctionChannel>,
    pub binary: PathBuf,
}

pub struct Gateway {
    pub functions: Vec<Function>,
    router: Router,
    pub addr: SocketAddr,
    auto_schedules: bool,
}

impl Gateway {
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.spec.name == name)
    }

    /// True when no function is still initialising.
    pub fn ready(&self) -> bool {
        self.functions
            .iter()
            .all(|f| !matches!(f.chan.status(), Status::Starting))
    }
}

/// A started gateway; [`RunningGateway::stop`] stops everything.
pub struct RunningGateway {
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    supervisors: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// Wait until every function has started (or failed to), at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.gateway.ready() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.gateway.ready()
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for s in self.supervisors {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
        for b in self.background {
            b.abort();
        }
        self.server.abort();
    }
}

fn resolve_env(
    spec: &FunctionSpec,
    queues: &std::collections::BTreeMap<String, sqs::QueueTarget>,
) -> Vec<(String, String)> {
    let mut out = vec![];
    for (k, src) in &spec.environment {
        // devgw's own environment (what `make dev` exports, or the developer's overrides) wins.
        if std::env::var_os(k).is_some() {
            continue;
        }
        let v = match src {
            EnvSource::Literal(v) => Some(v.clone()),
            EnvSource::TableName => Some(
                std::env::var("TABLE_NAME").unwrap_or_else(|_| "partner-engine-local".to_string()),
            ),
            EnvSource::QueueUrl(id) => queues.get(id).map(|q| q.url.clone()),
            EnvSource::QueueArn(id) => queues.get(id).map(|q| q.arn.clone()),
            EnvSource::Unresolved(what) => {
                tracing::debug!(function = %spec.name, var = %k, "{what}: not resolved locally; set {k} in the environment");
                None
            }
        };
        match v {
            Some(v) => out.push((k.clone(), v)),
            None => {
                if !matches!(src, EnvSource::Unresolved(_)) {
                    tracing::warn!(function = %spec.name, var = %k, "not set: its queue was not found");
                }
            }
        }
    }
    out
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| crate::REGION.to_string()),
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

/// Discover the functions, start their processes, pollers and schedules, and listen.
pub async fn start(cfg: GatewayConfig) -> Result<RunningGateway, DevgwError> {
    let discovery: Discovery =
        template::discover_files(&cfg.template, cfg.functions_file.as_deref())?;
    for w in &discovery.warnings {
        tracing::warn!("{w}");
    }
    let listener = http::bind(&cfg.listen).await?;
    let addr = listener.local_addr().map_err(|source| DevgwError::Bind {
        addr: cfg.listen.clone(),
        source,
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = Shutdown::new(shutdown_rx);

    // Queues: resolved once (for environment variables and pollers) when a local endpoint is set.
    let local_endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let client = match (&local_endpoint, cfg.sqs) {
        (Some(_), true) => Some(sqs_client().await),
        _ => None,
    };
    let mut queues = std::collections::BTreeMap::new();
    if let Some(client) = &client {
        for id in &discovery.queues {
            match sqs::resolve_queue(client, &QueueRef::LogicalId(id.clone()), &cfg.queue_prefix)
                .await
            {
                Ok(t) => {
                    queues.insert(id.clone(), t);
                }
                Err(e) => tracing::debug!(queue = %id, error = %e, "queue not resolved"),
            }
        }
    }

    let log_width = discovery
        .functions
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0);
    let mut functions = vec![];
    let mut router = Router::new();
    for (i, spec) in discovery.functions.into_iter().enumerate() {
        let binary = process::resolve_binary(
            &spec.binary,
            &spec.binary_alternatives,
            &cfg.bin_dir,
            &cfg.root,
        );
        for r in &spec.http_routes {
            router.add(&r.method, &r.path, i);
        }
        if spec.reserved_concurrency == Some(0) {
            tracing::warn!(function = %spec.name, "ReservedConcurrentExecutions: 0 throttles it on Lambda; devgw runs it with one instance");
        }
        let chan = FunctionChannel::with_concurrency(
            &spec.name,
            Duration::from_secs(spec.timeout_secs),
            function_concurrency(&spec, cfg.concurrency),
        );
        functions.push(Function { spec, chan, binary });
    }

    let mut supervisors = vec![];
    let mut background = vec![];
    for f in &functions {
        let pspec = ProcessSpec {
            name: f.spec.name.clone(),
            binary: f.binary.clone(),
            memory_mb: f.spec.memory_mb,
            env: resolve_env(&f.spec, &queues),
            // room for `#n` of the second and later instances
            log_width: if f.chan.concurrency > 1 {
                log_width + 2
            } else {
                log_width
            },
            instance: 0,
        };
        supervisors.push(tokio::spawn(process::supervise(
            f.chan.clone(),
            pspec,
            shutdown.clone(),
        )));
        for s in &f.spec.sqs {
            if !s.enabled {
                tracing::info!(function = %f.spec.name, event = %s.event, "SQS event disabled in the template");
                continue;
            }
            match &client {
                Some(c) => background.push(tokio::spawn(sqs::run_poller(
                    f.chan.clone(),
                    s.clone(),
                    c.clone(),
                    cfg.queue_prefix.clone(),
                    shutdown.clone(),
                ))),
                None => tracing::warn!(
                    function = %f.spec.name, event = %s.event,
                    "not polling SQS: AWS_ENDPOINT_URL is not set (devgw only polls a local endpoint)"
                ),
            }
        }
        for s in &f.spec.schedules {
            if let Err(e) = schedule::parse(&s.expression).and_then(|_| schedule::parse_timezone(s))
            {
                tracing::warn!(function = %f.spec.name, event = %s.event, error = %e, "schedule fired only on demand (POST /dev/schedule/{})", f.spec.name);
                continue;
            }
            if !(s.enabled && cfg.auto_schedules) {
                continue;
            }
            let chan = f.chan.clone();
            let spec = s.clone();
            let id = f.spec.logical_id.clone();
            let sd = shutdown.clone();
            background.push(tokio::spawn(async move {
                if let Err(e) = schedule::run(chan, spec, id, sd).await {
                    tracing::warn!(error = %e, "schedule stopped");
                }
            }));
        }
    }

    let gateway = Arc::new(Gateway {
        functions,
        router,
        addr,
        auto_schedules: cfg.auto_schedules,
    });
    let gw = gateway.clone();
    let server = tokio::spawn(http::serve(listener, move |req, peer| {
        handle(gw.clone(), req, peer)
    }));
    Ok(RunningGateway {
        gateway,
        shutdown: shutdown_tx,
        server,
        supervisors,
        background,
    })
}

/// One line per function: what it serves.
pub fn summary(gw: &Gateway) -> String {
    let base = format!("http://{}", gw.addr);
    let mut out = String::new();
    for f in &gw.functions {
        out.push_str(&format!("  {} ({})\n", f.spec.name, f.binary.display()));
        for r in &f.spec.http_routes {
            out.push_str(&format!(
                "      HTTP     {}  ->  {base}{}\n",
                r.route_key(),
                r.path
            ));
        }
        for s in &f.spec.sqs {
            let q = match &s.queue {
                QueueRef::LogicalId(id) => id.clone(),
                QueueRef::Arn(a) => a.clone(),
            };
            out.push_str(&format!("      SQS      {q} (batch {})\n", s.batch_size));
        }
        for s in &f.spec.schedules {
            let when = if s.enabled && gw.auto_schedules {
                ""
            } else {
                " (on demand only)"
            };
            out.push_str(&format!(
                "      SCHEDULE {} {}{when}  ->  curl -XPOST {base}/dev/schedule/{}\n",
                s.event, s.expression, f.spec.name
            ));
        }
        out.push_str(&format!(
            "      INVOKE   curl -s {base}/2015-03-31/functions/{}/invocations -d @event.json\n",
            f.spec.name
        ));
    }
    out
}

fn listing(gw: &Gateway) -> Value {
    let now = Utc::now();
    let fns: Vec<Value> = gw
        .functions
        .iter()
        .map(|f| {
            let schedules: Vec<Value> = f
                .spec
                .schedules
                .iter()
                .map(|s| {
                    let next = match (schedule::parse(&s.expression), schedule::parse_timezone(s)) {
                        (Ok(schedule::Expr::Cron(c)), Ok(tz)) => {
                            c.next_after(now, tz).map(|t| t.to_rfc3339())
                        }
                        _ => None,
                    };
                    json!({
                        "event": s.event,
                        "expression": s.expression,
                        "timezone": s.timezone,
                        "enabled": s.enabled,
                        "firing": if s.enabled && gw.auto_schedules { "auto" } else { "manual" },
                        "next": next,
                        "input": s.input,
                    })
                })
                .collect();
            json!({
                "name": f.spec.name,
                "logicalId": f.spec.logical_id,
                "binary": f.binary.display().to_string(),
                "source": f.spec.source,
                "status": f.chan.status(),
                "pid": f.chan.pid(),
                "concurrency": f.chan.concurrency,
                "outstanding": f.chan.outstanding(),
                "instances": f.chan.instances().iter().map(|i| json!({
                    "index": i.index,
                    "status": i.status(),
                    "pid": i.pid.load(std::sync::atomic::Ordering::Relaxed),
                    "busy": i.is_busy(),
                })).collect::<Vec<_>>(),
                "timeoutSeconds": f.spec.timeout_secs,
                "memoryMb": f.spec.memory_mb,
                "routes": f.spec.http_routes.iter().map(|r| r.route_key()).collect::<Vec<_>>(),
                "sqs": f.spec.sqs,
                "schedules": schedules,
                "environment": f.spec.environment.keys().collect::<Vec<_>>(),
                "invocations": f.chan.invocations.load(std::sync::atomic::Ordering::Relaxed),
                "errors": f.chan.errors.load(std::sync::atomic::Ordering::Relaxed),
            })
        })
        .collect();
    json!({ "address": format!("http://{}", gw.addr), "functions": fns })
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn lambda_error(status: u16, error_type: &str, message: &str) -> Response<Body> {
    http::response(
        status,
        &[
            ("content-type".into(), "application/json".into()),
            ("x-amzn-errortype".into(), error_type.into()),
        ],
        json!({ "Type": "User", "message": message, "__type": error_type }).to_string(),
    )
}

/// The invoke API's answer for an outcome.
fn invoke_response(outcome: Outcome) -> Response<Body> {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-amz-executed-version".to_string(), "$LATEST".to_string()),
    ];
    let body = match outcome {
        Outcome::Response(b) => b,
        Outcome::Error { body, .. } => {
            headers.push(("x-amz-function-error".into(), "Unhandled".into()));
            body
        }
    };
    http::response(200, &headers, body)
}

fn unavailable(e: &DevgwError) -> Response<Body> {
    match e {
        DevgwError::Unavailable { .. } => {
            lambda_error(502, "ResourceNotReadyException", &e.to_string())
        }
        _ => lambda_error(500, "ServiceException", &e.to_string()),
    }
}

async fn handle(gw: Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();

    if let Some(name) = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|r| r.strip_suffix("/invocations"))
    {
        if method != Method::POST {
            return lambda_error(405, "InvalidRequestContentException", "use POST");
        }
        return invoke_api(&gw, &percent_decode(name), req).await;
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/dev/functions") => return http::json_response(200, &listing(&gw)),
        (&Method::GET, "/dev/ready") => {
            let ready = gw.ready();
            let statuses: serde_json::Map<String, Value> = gw
                .functions
                .iter()
                .map(|f| (f.spec.name.clone(), json!(f.chan.status())))
                .collect();
            return http::json_response(
                if ready { 200 } else { 503 },
                &json!({ "ready": ready, "functions": statuses }),
            );
        }
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/dev/schedule/") {
        if method != Method::POST {
            return http::json_response(405, &json!({ "message": "use POST" }));
        }
        return fire_schedule(&gw, &percent_decode(name), &query).await;
    }
    http_route(&gw, req, peer).await
}

async fn invoke_api(gw: &Gateway, name: &str, req: Request<Incoming>) -> Response<Body> {
    // `name`, `name:qualifier` or a function ARN.
    let fname = if name.starts_with("arn:") {
        name.split(':').nth(6).unwrap_or(name)
    } else {
        name.split(':').next().unwrap_or(name)
    };
    let Some(f) = gw.function(fname) else {
        return lambda_error(
            404,
            "ResourceNotFoundException",
            &format!(
                "Function not found: {}",
                crate::runtime::function_arn(fname)
            ),
        );
    };
    let invocation_type = req
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_string();
    let payload = match http::read_body(req.into_body(), MAX_PAYLOAD).await {
        Ok(b) => b,
        Err(e) => return lambda_error(413, "RequestEntityTooLargeException", &e),
    };
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    match invocation_type.as_str() {
        "DryRun" => http::response(204, &[], Bytes::new()),
        "Event" => {
            let chan = f.chan.clone();
            tokio::spawn(async move {
                if let Err(e) = chan.invoke(payload).await {
                    tracing::warn!(function = %chan.name, error = %e, "asynchronous invocation failed");
                }
            });
            http::response(202, &[], Bytes::new())
        }
        _ => match f.chan.invoke(payload).await {
            Ok(o) => invoke_response(o),
            Err(e) => unavailable(&e),
        },
    }
}

async fn fire_schedule(gw: &Gateway, name: &str, query: &str) -> Response<Body> {
    let event = query_param(query, "event");
    // By function name (its schedule, or `?event=`), or by event name.
    let found = gw
        .functions
        .iter()
        .find(|f| f.spec.name == name)
        .map(|f| {
            let s: Vec<_> = f
                .spec
                .schedules
                .iter()
                .filter(|s| event.as_deref().is_none_or(|e| e == s.event))
                .collect();
            (f, s)
        })
        .or_else(|| {
            gw.functions.iter().find_map(|f| {
                let s: Vec<_> = f
                    .spec
                    .schedules
                    .iter()
                    .filter(|s| s.event == name)
                    .collect();
                (!s.is_empty()).then_some((f, s))
            })
        });
    let (f, s) = match found {
        Some((f, s)) if s.len() == 1 => (f, s[0]),
        Some((f, s)) if s.is_empty() => {
            return http::json_response(
                404,
                &json!({ "message": format!("{} has no such schedule", f.spec.name),
                         "schedules": f.spec.schedules.iter().map(|s| &s.event).collect::<Vec<_>>() }),
            )
        }
        Some((f, _)) => {
            return http::json_response(
                400,
                &json!({ "message": format!("{} has several schedules: add ?event=NAME", f.spec.name),
                         "schedules": f.spec.schedules.iter().map(|s| &s.event).collect::<Vec<_>>() }),
            )
        }
        None => {
            return http::json_response(
                404,
                &json!({ "message": format!("no function or schedule named {name:?}") }),
            )
        }
    };
    let time = match query_param(query, "time")
        .map(|t| schedule::parse_time(&t))
        .transpose()
    {
        Ok(t) => t.unwrap_or_else(Utc::now),
        Err(e) => return http::json_response(400, &json!({ "message": e.to_string() })),
    };
    match schedule::fire(&f.chan, s, &f.spec.logical_id, time).await {
        Ok(o) => {
            let mut r = invoke_response(o);
            if let Ok(v) = hyper::header::HeaderValue::from_str(&time.to_rfc3339()) {
                r.headers_mut().insert("x-devgw-event-time", v);
            }
            r
        }
        Err(e) => unavailable(&e),
    }
}

async fn http_route(gw: &Gateway, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let http_method = req.method().clone();
    let method = http_method.to_string();
    let raw_path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let Some(m) = gw.router.find(&method, &raw_path) else {
        tracing::info!("{method} {raw_path} -> 404 (no route)");
        return http::response(
            404,
            &[("content-type".into(), "application/json".into())],
            json!({ "message": "Not Found" }).to_string(),
        );
    };
    let Some(f) = gw.functions.get(m.target) else {
        return http::json_response(500, &json!({ "message": "Internal Server Error" }));
    };
    let protocol = match req.version() {
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match http::read_body(req.into_body(), 10 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return http::json_response(413, &json!({ "message": "Request Entity Too Large" }))
        }
    };
    let info = HttpRequestInfo {
        method: http_method,
        raw_path: &raw_path,
        raw_query: &raw_query,
        protocol,
        headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        port: gw.addr.port(),
        request_id: uuid::Uuid::new_v4().to_string(),
        trace_id: crate::runtime::new_trace_id(),
        now: Utc::now(),
    };
    let event = match serde_json::to_vec(&apigw::to_v2_event(&info, &m)) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(function = %f.spec.name, "cannot serialise the HTTP API event: {e}");
            return http::json_response(500, &json!({ "message": "Internal Server Error" }));
        }
    };
    let outcome = f.chan.invoke(Bytes::from(event)).await;
    let parts = match outcome {
        Ok(Outcome::Response(b)) => match apigw::from_v2_response(&b) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(function = %f.spec.name, "malformed HTTP response: {e}");
                apigw::HttpResponseParts::message(502, "Internal Server Error")
            }
        },
        Ok(Outcome::Error { error_type, .. }) => {
            tracing::warn!(function = %f.spec.name, "function error {error_type}");
            apigw::HttpResponseParts::message(500, "Internal Server Error")
        }
        Err(e) => {
            tracing::warn!(function = %f.spec.name, error = %e, "cannot invoke");
            apigw::HttpResponseParts::message(503, "Service Unavailable")
        }
    };
    tracing::info!(
        "{method} {raw_path} -> {} {} ({:.1} ms)",
        f.spec.name,
        parts.status,
        started.elapsed().as_secs_f64() * 1000.0
    );
    http::response(parts.status, &parts.headers, parts.body)
}
