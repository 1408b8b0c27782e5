//! Template discovery on a fixture with HttpApi, SQS and Schedule events.

use std::path::Path;

use devgw::gateway::function_concurrency;
use devgw::template::{discover_files, EnvSource, FunctionSpec, QueueRef, ScheduleKind};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn functions_events_and_environment() {
    let d = discover_files(&fixture("template.yaml"), None).expect("fixture parses");
    let names: Vec<_> = d.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["redirect", "notifier", "payout", "crm-sync"]);
    assert_eq!(d.queues, vec!["OutboxDeadLetterQueue", "OutboxQueue"]);

    let r = d.function("redirect").expect("redirect");
    assert_eq!(r.logical_id, "RedirectFunction");
    assert_eq!(r.binary, "redirect");
    assert_eq!(r.timeout_secs, 10, "from Globals");
    assert_eq!(r.memory_mb, 128, "the function's own value wins");
    let keys: Vec<_> = r.http_routes.iter().map(|h| h.route_key()).collect();
    assert_eq!(keys, vec!["GET /r/{code}", "GET /r/{code}/{sub_id}"]);
    let env = |k: &str| r.environment.get(k).cloned();
    assert_eq!(env("TABLE_NAME"), Some(EnvSource::TableName));
    assert_eq!(env("RUST_LOG"), Some(EnvSource::Literal("info".into())));
    assert_eq!(
        env("FALLBACK_URL"),
        Some(EnvSource::Literal("https://shop.example/".into()))
    );
    assert_eq!(
        env("OUTBOX_QUEUE_URL"),
        Some(EnvSource::QueueUrl("OutboxQueue".into()))
    );
    assert_eq!(
        env("DLQ_ARN"),
        Some(EnvSource::QueueArn("OutboxDeadLetterQueue".into()))
    );
    assert_eq!(env("COUNT"), Some(EnvSource::Literal("3".into())));
    assert!(matches!(
        env("SECRET_PARAMETER"),
        Some(EnvSource::Unresolved(_))
    ));
    assert!(matches!(env("STACK"), Some(EnvSource::Unresolved(_))));

    let n = d.function("notifier").expect("name from the logical id");
    assert_eq!(n.binary, "notifier");
    assert_eq!(n.timeout_secs, 30);
    assert_eq!(n.memory_mb, 256);
    assert_eq!(n.sqs.len(), 2);
    assert_eq!(n.sqs[0].queue, QueueRef::LogicalId("OutboxQueue".into()));
    assert_eq!(n.sqs[0].batch_size, 5);
    assert!(n.sqs[0].report_batch_item_failures);
    assert!(n.sqs[0].enabled);
    assert_eq!(
        n.sqs[1].queue,
        QueueRef::Arn("arn:aws:sqs:us-east-1:123456789012:other-queue".into())
    );
    assert_eq!(n.sqs[1].batch_size, 10, "SQS default batch size");
    assert!(!n.sqs[1].report_batch_item_failures);
    assert!(!n.sqs[1].enabled);

    let p = d.function("payout").expect("payout");
    assert_eq!(p.schedules.len(), 2);
    let weekly = &p.schedules[0];
    assert_eq!(weekly.kind, ScheduleKind::Scheduler);
    assert_eq!(weekly.expression, "cron(0 9 ? * FRI *)");
    assert_eq!(weekly.timezone.as_deref(), Some("Europe/Paris"));
    assert!(weekly.enabled);
    let sweep = &p.schedules[1];
    assert_eq!(sweep.kind, ScheduleKind::Rule);
    assert_eq!(sweep.expression, "rate(1 hour)");
    assert!(!sweep.enabled);
    assert_eq!(sweep.input.as_deref(), Some("{\"job\":\"sweep\"}"));
    assert!(p.http_routes.is_empty(), "REST Api events are not served");
    assert!(d.warnings.iter().any(|w| w.contains("Legacy")));

    let c = d
        .function("crm-sync")
        .expect("kebab case of CrmSyncFunction");
    assert_eq!(c.binary_alternatives, vec!["crm_sync".to_string()]);
    assert_eq!(c.http_routes[0].route_key(), "$default");
}

#[test]
fn local_functions_file_adds_and_extends() {
    let d = discover_files(&fixture("template.yaml"), Some(&fixture("functions.yaml")))
        .expect("fixtures parse");
    let names: Vec<_> = d.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["redirect", "notifier", "payout", "crm-sync", "fake-paypal"]
    );
    let fake = d.function("fake-paypal").expect("local function");
    assert_eq!(fake.http_routes[0].route_key(), "ANY /fake/paypal/{proxy+}");
    assert_eq!(
        fake.timeout_secs, 10,
        "Globals apply to local functions too"
    );
    assert_eq!(
        fake.environment.get("MODE"),
        Some(&EnvSource::Literal("sandbox".into()))
    );
    assert!(fake.source.ends_with("functions.yaml"));

    let r = d.function("redirect").expect("redirect");
    assert_eq!(r.http_routes.len(), 3, "the overlay adds a route");
    assert_eq!(
        r.environment.get("EXTRA"),
        Some(&EnvSource::Literal("1".into()))
    );
    assert_eq!(
        r.environment.get("FALLBACK_URL"),
        Some(&EnvSource::Literal("https://shop.example/".into())),
        "the template's variables stay"
    );
    assert_eq!(r.memory_mb, 128, "the overlay changes nothing else");
    assert_eq!(
        r.reserved_concurrency,
        Some(1),
        "the overlay sets the concurrency"
    );
}

#[test]
fn reserved_concurrency_caps_devgw_concurrency() {
    let d = discover_files(&fixture("template.yaml"), None).expect("fixture parses");
    let notifier = d.function("notifier").expect("notifier");
    assert_eq!(notifier.reserved_concurrency, Some(2));
    assert_eq!(function_concurrency(notifier, 4), 2);
    assert_eq!(function_concurrency(notifier, 1), 1);
    let redirect = d.function("redirect").expect("redirect");
    assert_eq!(redirect.reserved_concurrency, None);
    assert_eq!(function_concurrency(redirect, 4), 4);
    assert_eq!(function_concurrency(redirect, 0), 1, "at least one");
    let throttled = FunctionSpec {
        reserved_concurrency: Some(0),
        ..redirect.clone()
    };
    assert_eq!(function_concurrency(&throttled, 4), 1);
}

#[test]
fn project_template_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let d = discover_files(
        &root.join("template.yaml"),
        Some(&root.join("infra/dev/functions.yaml")),
    )
    .expect("the project's template parses");
    for f in &d.functions {
        assert!(!f.name.is_empty());
    }
}
