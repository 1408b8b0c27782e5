//! SQS event source against the local moto server (`make test` sets AWS_ENDPOINT_URL; skipped
//! without it): records are delivered as an SQS event and deleted once the function succeeds.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use common::{hello_binary, temp_dir};
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
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        eprintln!("skipped: AWS_ENDPOINT_URL is not set (run with make test)");
        return;
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let prefix = format!("devgw-test-{}", std::process::id());
    let url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-TestQueue"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    for i in 0..5 {
        sqs.send_message()
            .queue_url(&url)
            .message_body(format!("{{\"n\":{i}}}"))
            .send()
            .await
            .expect("send");
    }

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
    })
    .await
    .expect("gateway starts");
    // The template has been read.
    let _ = std::fs::remove_dir_all(&dir);

    let mut left = u64::MAX;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        left = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|k| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
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
