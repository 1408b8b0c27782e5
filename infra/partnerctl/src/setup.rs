//! `partnerctl setup-local`: the table and queues of template.yaml, created on a local endpoint.

use storage::schema::{self, TEMPLATE};

use crate::CliError;

/// Environment variable that carries a queue's URL to the functions: `OutboxQueue` → `OUTBOX_QUEUE_URL`.
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

/// Create the table and every queue (dead-letter queues first, with the template's redrive
/// policy). Idempotent. Returns `(ENV_NAME, url)` for each queue.
pub async fn setup_local(
    config: &aws_config::SdkConfig,
    table_name: &str,
    queue_prefix: &str,
) -> Result<Vec<(String, String)>, CliError> {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    schema::table_definition(TEMPLATE)?
        .create(&ddb, table_name)
        .await?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut urls: Vec<(String, String, String)> = vec![]; // logical id, env, url
    for q in schema::queue_definitions(TEMPLATE)? {
        let mut req = sqs
            .create_queue()
            .queue_name(format!("{queue_prefix}-{}", q.logical_id));
        if let Some(v) = q.visibility_timeout {
            req = req.attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                v.to_string(),
            );
        }
        if let Some(dlq) = &q.dead_letter_logical_id {
            let dlq_url = urls
                .iter()
                .find(|(id, _, _)| id == dlq)
                .map(|(_, _, u)| u.clone())
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "dead-letter queue {dlq} not defined before {}",
                        q.logical_id
                    ))
                })?;
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&dlq_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| CliError::Aws(format!("{e:?}")))?
                .attributes
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                        .cloned()
                })
                .ok_or_else(|| CliError::Aws("no QueueArn".into()))?;
            let policy = serde_json::json!({
                "deadLetterTargetArn": arn,
                "maxReceiveCount": q.max_receive_count.unwrap_or(5).to_string(),
            });
            req = req.attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                policy.to_string(),
            );
        }
        let url = req
            .send()
            .await
            .map_err(|e| CliError::Aws(format!("{e:?}")))?
            .queue_url
            .ok_or_else(|| CliError::Aws("no queue url".into()))?;
        urls.push((q.logical_id.clone(), queue_env_name(&q.logical_id), url));
    }
    Ok(urls.into_iter().map(|(_, env, url)| (env, url)).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_names() {
        assert_eq!(super::queue_env_name("OutboxQueue"), "OUTBOX_QUEUE_URL");
        assert_eq!(
            super::queue_env_name("OutboxDeadLetterQueue"),
            "OUTBOX_DEAD_LETTER_QUEUE_URL"
        );
    }
}
