//! Function discovery: every `AWS::Serverless::Function` of `template.yaml` (plus the local-only
//! entries of `infra/dev/functions.yaml`) with its binary, limits, environment and events.
//!
//! A function plugs into `make dev` by its template entry alone: its `Metadata.BuildProperties.Binary`
//! (the cargo binary; fallback: the logical id without its `Function` suffix, in kebab case) and its
//! `Events` (`HttpApi`, `SQS`, `Schedule`, `ScheduleV2`). A function is named after its binary;
//! functions that share one binary (one per scheduled job) after their logical ids instead.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_yaml::{Mapping, Value};

use crate::error::DevgwError;

/// Lambda's defaults when neither the function nor `Globals.Function` sets them.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// SQS event source default batch size.
pub const DEFAULT_SQS_BATCH: u32 = 10;

const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionSpec {
    /// Name used by the invoke API and in logs: the binary name (`redirect`, `sale-webhook`, ...).
    pub name: String,
    pub logical_id: String,
    /// Binary name under the bin dir, or a path (containing `/`) relative to the repository root.
    pub binary: String,
    /// Other names the binary may have been built under (snake case of the kebab fallback).
    pub binary_alternatives: Vec<String>,
    pub timeout_secs: u64,
    pub memory_mb: u32,
    /// `ReservedConcurrentExecutions` (of the function or `Globals.Function`): at most this many
    /// instances run at once, locally as on Lambda (devgw's own limit still applies).
    pub reserved_concurrency: Option<u32>,
    pub environment: BTreeMap<String, EnvSource>,
    pub http_routes: Vec<HttpRouteSpec>,
    pub sqs: Vec<SqsSpec>,
    pub schedules: Vec<ScheduleSpec>,
    /// `template.yaml` or the local functions file.
    pub source: String,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum EnvSource {
    Literal(String),
    /// `!Ref` of the table: the local table name (`TABLE_NAME` of devgw's environment).
    TableName,
    /// `!Ref` of a queue: its local URL.
    QueueUrl(String),
    /// `!GetAtt Queue.Arn`: its local ARN.
    QueueArn(String),
    /// Something devgw cannot resolve locally (kept for the listing; not set).
    Unresolved(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRouteSpec {
    pub event: String,
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// `/r/{code}`, `/x/{proxy+}`, or `$default`.
    pub path: String,
}

impl HttpRouteSpec {
    /// The API Gateway route key: `GET /r/{code}` or `$default`.
    pub fn route_key(&self) -> String {
        if self.path == "$default" {
            "$default".to_string()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum QueueRef {
    /// A queue of the template, by logical id.
    LogicalId(String),
    /// A queue given by ARN.
    Arn(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqsSpec {
    pub event: String,
    pub queue: QueueRef,
    pub batch_size: u32,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScheduleKind {
    /// `Type: Schedule` (an EventBridge rule).
    Rule,
    /// `Type: ScheduleV2` (EventBridge Scheduler).
    Scheduler,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleSpec {
    pub event: String,
    pub kind: ScheduleKind,
    /// `rate(...)`, `cron(...)` or `at(...)`.
    pub expression: String,
    /// IANA time zone of a cron expression (ScheduleV2 `ScheduleExpressionTimezone`); UTC if none.
    pub timezone: Option<String>,
    /// A fixed payload that replaces the scheduled event (`Input`).
    pub input: Option<String>,
    pub enabled: bool,
    /// Explicit rule or schedule name, if the template gives one.
    pub rule_name: Option<String>,
}

/// Everything devgw learned from the template and the local functions file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Discovery {
    pub functions: Vec<FunctionSpec>,
    /// Logical ids of the template's queues.
    pub queues: Vec<String>,
    /// Warnings about entries devgw does not serve (e.g. REST `Api` events).
    pub warnings: Vec<String>,
}

impl Discovery {
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// Read the template file and the optional local functions file.
pub fn discover_files(template: &Path, local: Option<&Path>) -> Result<Discovery, DevgwError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| DevgwError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let template_text = read(template)?;
    let local_text = match local {
        Some(p) if p.exists() => Some((p.display().to_string(), read(p)?)),
        _ => None,
    };
    discover(
        &template.display().to_string(),
        &template_text,
        local_text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
    )
}

/// Discover the functions of a template text, and of a local functions text (`(path, text)`).
///
/// The local file has the template's shape: a `Resources` map of functions (`Type` may be left
/// out). An entry whose logical id is also a template function adds its environment variables
/// and events to that function; any other entry is a new, local-only function.
pub fn discover(
    template_path: &str,
    template: &str,
    local: Option<(&str, &str)>,
) -> Result<Discovery, DevgwError> {
    let doc: Value = serde_yaml::from_str(template).map_err(|e| DevgwError::Template {
        path: template_path.to_string(),
        message: e.to_string(),
    })?;
    let ctx = Context::new(&doc);
    let mut out = Discovery {
        queues: ctx.queues.clone(),
        ..Discovery::default()
    };
    let globals = doc.get("Globals").and_then(|g| g.get("Function"));
    if let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) {
        for (id, res) in resources {
            let Some(id) = id.as_str() else { continue };
            if res.get("Type").and_then(Value::as_str) != Some(SERVERLESS_FUNCTION) {
                continue;
            }
            let f = parse_function(&ctx, template_path, globals, id, res, &mut out.warnings)?;
            out.functions.push(f);
        }
    }
    if let Some((local_path, local_text)) = local {
        let local_doc: Value =
            serde_yaml::from_str(local_text).map_err(|e| DevgwError::Template {
                path: local_path.to_string(),
                message: e.to_string(),
            })?;
        if let Some(resources) = local_doc.get("Resources").and_then(Value::as_mapping) {
            for (id, res) in resources {
                let Some(id) = id.as_str() else { continue };
                let ty = res
                    .get("Type")
                    .and_then(Value::as_str)
                    .unwrap_or(SERVERLESS_FUNCTION);
                if ty != SERVERLESS_FUNCTION {
                    out.warnings.push(format!(
                        "{local_path}: {id}: only functions are read from this file"
                    ));
                    continue;
                }
                let f = parse_function(&ctx, local_path, globals, id, res, &mut out.warnings)?;
                match out.functions.iter_mut().find(|e| e.logical_id == id) {
                    Some(existing) => {
                        // An overlay: only what the entry itself says is added (or, for
                        // `ReservedConcurrentExecutions`, replaced).
                        let own = parse_function(&ctx, local_path, None, id, res, &mut vec![])?;
                        existing.environment.extend(own.environment);
                        existing.http_routes.extend(own.http_routes);
                        existing.sqs.extend(own.sqs);
                        existing.schedules.extend(own.schedules);
                        if own.reserved_concurrency.is_some() {
                            existing.reserved_concurrency = own.reserved_concurrency;
                        }
                    }
                    None => out.functions.push(f),
                }
            }
        }
    }
    name_shared_binaries(&mut out.functions);
    let mut seen = std::collections::BTreeSet::new();
    for f in &out.functions {
        if !seen.insert(f.name.clone()) {
            return Err(DevgwError::Template {
                path: f.source.clone(),
                message: format!("two functions are named {:?}", f.name),
            });
        }
    }
    Ok(out)
}

/// One binary may serve several functions (e.g. one scheduled job each, told apart by their
/// environment): those are named by their logical ids instead (`ReleaseHoldsFunction` →
/// `release-holds`), so each has its own invoke name, schedules and log prefix.
fn name_shared_binaries(functions: &mut [FunctionSpec]) {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, f) in functions.iter().enumerate() {
        by_name.entry(f.name.clone()).or_default().push(i);
    }
    for idx in by_name.values().filter(|v| v.len() > 1) {
        let binary = &functions[idx[0]].binary;
        if idx.iter().all(|&i| &functions[i].binary == binary) {
            for &i in idx {
                functions[i].name = kebab_name(&functions[i].logical_id);
            }
        }
    }
}

/// What the template defines, for resolving `!Ref` and `!GetAtt`.
struct Context {
    parameters: BTreeMap<String, Option<String>>,
    resource_types: BTreeMap<String, String>,
    queues: Vec<String>,
}

impl Context {
    fn new(doc: &Value) -> Self {
        let mut parameters = BTreeMap::new();
        if let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (k, v) in params {
                if let Some(k) = k.as_str() {
                    parameters.insert(k.to_string(), v.get("Default").and_then(scalar_string));
                }
            }
        }
        let mut resource_types = BTreeMap::new();
        let mut queues = vec![];
        if let Some(res) = doc.get("Resources").and_then(Value::as_mapping) {
            for (k, v) in res {
                if let (Some(k), Some(t)) = (k.as_str(), v.get("Type").and_then(Value::as_str)) {
                    if t == "AWS::SQS::Queue" {
                        queues.push(k.to_string());
                    }
                    resource_types.insert(k.to_string(), t.to_string());
                }
            }
        }
        Context {
            parameters,
            resource_types,
            queues,
        }
    }

    fn resolve_env(&self, value: &Value) -> EnvSource {
        if let Some(s) = scalar_string(value) {
            return EnvSource::Literal(s);
        }
        match intrinsic(value) {
            Some(Intrinsic::Ref(name)) => {
                if let Some(default) = self.parameters.get(&name) {
                    return match default {
                        Some(d) => EnvSource::Literal(d.clone()),
                        None => EnvSource::Unresolved(format!("!Ref {name} (no Default)")),
                    };
                }
                match self.resource_types.get(&name).map(String::as_str) {
                    Some("AWS::DynamoDB::Table") => EnvSource::TableName,
                    Some("AWS::SQS::Queue") => EnvSource::QueueUrl(name),
                    _ => EnvSource::Unresolved(format!("!Ref {name}")),
                }
            }
            Some(Intrinsic::GetAtt(res, attr)) => {
                match (
                    self.resource_types.get(&res).map(String::as_str),
                    attr.as_str(),
                ) {
                    (Some("AWS::SQS::Queue"), "Arn") => EnvSource::QueueArn(res),
                    (Some("AWS::SQS::Queue"), "QueueUrl") => EnvSource::QueueUrl(res),
                    (Some("AWS::SQS::Queue"), "QueueName") => {
                        EnvSource::Unresolved(format!("!GetAtt {res}.QueueName"))
                    }
                    _ => EnvSource::Unresolved(format!("!GetAtt {res}.{attr}")),
                }
            }
            Some(Intrinsic::Other(tag)) => EnvSource::Unresolved(tag),
            None => EnvSource::Unresolved("not a scalar".to_string()),
        }
    }
}

enum Intrinsic {
    Ref(String),
    GetAtt(String, String),
    Other(String),
}

/// `!Ref X`, `{Ref: X}`, `!GetAtt X.Arn`, `!GetAtt [X, Arn]`, `{Fn::GetAtt: [X, Arn]}`.
fn intrinsic(v: &Value) -> Option<Intrinsic> {
    let (name, inner) = match v {
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        ),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next()?;
            let k = k.as_str()?;
            (k.trim_start_matches("Fn::").to_string(), inner)
        }
        _ => return None,
    };
    match name.as_str() {
        "Ref" => inner.as_str().map(|s| Intrinsic::Ref(s.to_string())),
        "GetAtt" => {
            if let Some(s) = inner.as_str() {
                let (r, a) = s.split_once('.')?;
                Some(Intrinsic::GetAtt(r.to_string(), a.to_string()))
            } else {
                let seq = inner.as_sequence()?;
                match seq.as_slice() {
                    [r, a] => Some(Intrinsic::GetAtt(
                        r.as_str()?.to_string(),
                        a.as_str()?.to_string(),
                    )),
                    _ => None,
                }
            }
        }
        other => Some(Intrinsic::Other(format!("!{other}"))),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `SaleWebhookFunction` → `sale-webhook`.
pub fn kebab_name(logical_id: &str) -> String {
    let base = logical_id
        .strip_suffix("Function")
        .filter(|b| !b.is_empty())
        .unwrap_or(logical_id);
    let mut out = String::new();
    let chars: Vec<char> = base.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

fn parse_function(
    ctx: &Context,
    path: &str,
    globals: Option<&Value>,
    id: &str,
    res: &Value,
    warnings: &mut Vec<String>,
) -> Result<FunctionSpec, DevgwError> {
    let props = res.get("Properties");
    let prop = |k: &str| {
        props
            .and_then(|p| p.get(k))
            .or_else(|| globals.and_then(|g| g.get(k)))
    };
    let explicit_binary = res
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (binary, binary_alternatives) = match explicit_binary {
        Some(b) => (b, vec![]),
        None => {
            let k = kebab_name(id);
            let snake = k.replace('-', "_");
            let alts = if snake == k { vec![] } else { vec![snake] };
            (k, alts)
        }
    };
    let name = binary
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(&binary)
        .to_string();

    let mut environment = BTreeMap::new();
    let vars = |v: Option<&Value>| {
        v.and_then(|e| e.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default()
    };
    for (k, v) in vars(globals).iter().chain(vars(props).iter()) {
        if let Some(k) = k.as_str() {
            environment.insert(k.to_string(), ctx.resolve_env(v));
        }
    }

    let mut f = FunctionSpec {
        name,
        logical_id: id.to_string(),
        binary,
        binary_alternatives,
        timeout_secs: prop("Timeout")
            .and_then(as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_SECS),
        memory_mb: prop("MemorySize")
            .and_then(as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(DEFAULT_MEMORY_MB),
        reserved_concurrency: prop("ReservedConcurrentExecutions")
            .and_then(as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        environment,
        http_routes: vec![],
        sqs: vec![],
        schedules: vec![],
        source: path.to_string(),
    };
    let events: Mapping = props
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    for (ev_name, ev) in &events {
        let Some(ev_name) = ev_name.as_str() else {
            continue;
        };
        let ty = ev.get("Type").and_then(Value::as_str).unwrap_or("");
        let p = ev.get("Properties");
        let get = |k: &str| p.and_then(|p| p.get(k));
        let err = |m: String| DevgwError::Template {
            path: path.to_string(),
            message: format!("{id}.Events.{ev_name}: {m}"),
        };
        match ty {
            "HttpApi" => {
                let method = get("Method").and_then(Value::as_str);
                let route_path = get("Path").and_then(Value::as_str);
                let (method, route_path) = match (method, route_path) {
                    (Some(m), Some(p)) => {
                        let m = m.to_ascii_uppercase();
                        let m = if m == "*" { "ANY".to_string() } else { m };
                        (m, p.to_string())
                    }
                    _ => ("ANY".to_string(), "$default".to_string()),
                };
                f.http_routes.push(HttpRouteSpec {
                    event: ev_name.to_string(),
                    method,
                    path: route_path,
                });
            }
            "SQS" => {
                let queue = match get("Queue") {
                    Some(q) => match intrinsic(q) {
                        Some(Intrinsic::GetAtt(r, a)) if a == "Arn" => QueueRef::LogicalId(r),
                        _ => match q.as_str() {
                            Some(arn) if arn.starts_with("arn:") => QueueRef::Arn(arn.to_string()),
                            _ => return Err(err("Queue must be !GetAtt X.Arn or an ARN".into())),
                        },
                    },
                    None => return Err(err("SQS event without Queue".into())),
                };
                let batch_size = get("BatchSize")
                    .and_then(as_u64)
                    .and_then(|b| u32::try_from(b).ok())
                    .unwrap_or(DEFAULT_SQS_BATCH);
                let report = get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|s| {
                        s.iter()
                            .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                    });
                f.sqs.push(SqsSpec {
                    event: ev_name.to_string(),
                    queue,
                    batch_size: batch_size.max(1),
                    report_batch_item_failures: report,
                    enabled: get("Enabled").and_then(as_bool).unwrap_or(true),
                });
            }
            "Schedule" | "ScheduleV2" => {
                let (kind, expr_key) = if ty == "Schedule" {
                    (ScheduleKind::Rule, "Schedule")
                } else {
                    (ScheduleKind::Scheduler, "ScheduleExpression")
                };
                let expression = get(expr_key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(format!("{ty} event without {expr_key}")))?
                    .to_string();
                let enabled = match (get("Enabled").and_then(as_bool), get("State")) {
                    (Some(e), _) => e,
                    (None, Some(s)) => s.as_str() != Some("DISABLED"),
                    (None, None) => true,
                };
                f.schedules.push(ScheduleSpec {
                    event: ev_name.to_string(),
                    kind,
                    expression,
                    timezone: get("ScheduleExpressionTimezone")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    input: get("Input").and_then(Value::as_str).map(str::to_string),
                    enabled,
                    rule_name: get("Name").and_then(Value::as_str).map(str::to_string),
                });
            }
            other => warnings.push(format!(
                "{id}.Events.{ev_name}: event type {other:?} is not served locally"
            )),
        }
    }
    Ok(f)
}

/// Environment variable carrying a queue's URL: `OutboxQueue` → `OUTBOX_QUEUE_URL` (the names
/// `partnerctl setup-local` prints).
pub fn queue_env_name(logical_id: &str) -> String {
    let mut out = String::new();
    for (i, c) in logical_id.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    format!("{out}_URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_names() {
        assert_eq!(kebab_name("RedirectFunction"), "redirect");
        assert_eq!(kebab_name("SaleWebhookFunction"), "sale-webhook");
        assert_eq!(kebab_name("CrmSync"), "crm-sync");
        assert_eq!(kebab_name("APIFunction"), "api");
        assert_eq!(kebab_name("Function"), "function");
    }

    #[test]
    fn functions_sharing_a_binary_are_named_by_their_logical_ids() {
        let template = r#"
Resources:
  HousekeepingFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: housekeeping}}
    Properties:
      Environment: {Variables: {JOB: waiting-sales}}
      Events:
        SweepWaitingSales: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
  ReleaseHoldsFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: housekeeping}}
    Properties:
      Environment: {Variables: {JOB: release-holds}}
      Events:
        ReleaseHolds: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
  RedirectFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: redirect}}
"#;
        let d = discover("template.yaml", template, None).expect("discovers");
        let names: Vec<_> = d
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.binary.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("housekeeping", "housekeeping"),
                ("release-holds", "housekeeping"),
                ("redirect", "redirect")
            ]
        );
        assert_eq!(
            d.functions[1].environment.get("JOB"),
            Some(&EnvSource::Literal("release-holds".into()))
        );
        assert_eq!(d.functions[1].schedules[0].event, "ReleaseHolds");
        // Two functions of different binaries under one name are still refused.
        let clash = r#"
Resources:
  AFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: same}}
  SameFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: x/same}}
"#;
        assert!(discover("template.yaml", clash, None).is_err());
    }

    #[test]
    fn queue_env_names() {
        assert_eq!(queue_env_name("OutboxQueue"), "OUTBOX_QUEUE_URL");
    }
}
