//! SQS event source against the local moto server (`make test` sets AWS_ENDPOINT_URL; skipped
//! without it): records are delivered as an SQS event and deleted once the function succeeds.

mod common;

use std::time::Duration;

use common::{hello_binary, local_sqs, queue_with_messages, records_left, temp_dir};
use devgw::gateway::{self, GatewayConfig};

const TEMPLATE: &str = r#"
Resources:
  TestQueue:
    Type: AWS::SQS::Queue
  EchoFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: bench-hello
    Properties:
      Timeout: 5
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt TestQueue.Arn
            BatchSize: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
"#;

#[tokio::test]
async fn records_are_delivered_and_deleted() {
    let Some(sqs) = local_sqs().await else {
        eprintln!("skipped: AWS_ENDPOINT_URL is not set (run with make test)");
        return;
    };
    let prefix = format!("devgw-test-{}", std::process::id());
    let url = queue_with_messages(&sqs, &format!("{prefix}-TestQueue"), 5).await;

    let hello = hello_binary();
    let dir = temp_dir("sqs");
    let template = dir.join("template.yaml");
    std::fs::write(&template, TEMPLATE).expect("write template");
    let gw = gateway::start(GatewayConfig {
        root: dir.clone(),
        template,
        functions_file: None,
        bin_dir: hello.parent().expect("bin dir").to_path_buf(),
        listen: "127.0.0.1:0".into(),
        auto_schedules: false,
        sqs: true,
        queue_prefix: prefix,
        concurrency: usize::from(gateway::DEFAULT_CONCURRENCY),
    })
    .await
    .expect("gateway starts");
    // The template has been read.
    let _ = std::fs::remove_dir_all(&dir);

    let mut left = u64::MAX;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = records_left(&sqs, &url).await;
        if left == 0 {
            break;
        }
    }
    let f = gw.gateway.function("bench-hello").expect("function");
    let invocations = f
        .chan
        .invocations
        .load(std::sync::atomic::Ordering::Relaxed);
    gw.stop().await;
    assert_eq!(left, 0, "every record was deleted");
    assert!(
        invocations >= 2,
        "batches of at most 3: {invocations} invocation(s)"
    );
}
