//! The table and queue definitions, read from `template.yaml` itself so that the local (moto)
//! resources and the deployed ones cannot drift.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_yaml::Value;

use crate::error::StoreError;

/// The SAM template, compiled in.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub gsis: Vec<GsiDefinition>,
    pub ttl_attribute: Option<String>,
    pub billing_mode: String,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GsiDefinition {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueDefinition {
    pub logical_id: String,
    pub visibility_timeout: Option<i64>,
    pub dead_letter_logical_id: Option<String>,
    pub max_receive_count: Option<i64>,
}

fn cfg(msg: impl Into<String>) -> StoreError {
    StoreError::Config(format!("template.yaml: {}", msg.into()))
}

fn resources(template: &str) -> Result<serde_yaml::Mapping, StoreError> {
    let doc: Value = serde_yaml::from_str(template).map_err(|e| cfg(e.to_string()))?;
    doc.get("Resources")
        .and_then(Value::as_mapping)
        .cloned()
        .ok_or_else(|| cfg("no Resources"))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str, StoreError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| cfg(format!("missing {key}")))
}

fn key_schema(v: &Value) -> Result<Vec<(String, String)>, StoreError> {
    v.as_sequence()
        .ok_or_else(|| cfg("KeySchema is not a list"))?
        .iter()
        .map(|e| {
            Ok((
                str_at(e, "AttributeName")?.to_string(),
                str_at(e, "KeyType")?.to_string(),
            ))
        })
        .collect()
}

/// Read the one `AWS::DynamoDB::Table` of the template.
pub fn table_definition(template: &str) -> Result<TableDefinition, StoreError> {
    let res = resources(template)?;
    let tables: Vec<&Value> = res
        .values()
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .collect();
    let [table] = tables.as_slice() else {
        return Err(cfg(format!(
            "expected exactly one table, found {}",
            tables.len()
        )));
    };
    let p = table
        .get("Properties")
        .ok_or_else(|| cfg("table has no Properties"))?;
    let attributes = p
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| cfg("no AttributeDefinitions"))?
        .iter()
        .map(|a| {
            Ok((
                str_at(a, "AttributeName")?.to_string(),
                str_at(a, "AttributeType")?.to_string(),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let key = key_schema(p.get("KeySchema").ok_or_else(|| cfg("no KeySchema"))?)?;
    let gsis = match p.get("GlobalSecondaryIndexes").and_then(Value::as_sequence) {
        None => vec![],
        Some(list) => list
            .iter()
            .map(|g| {
                Ok(GsiDefinition {
                    name: str_at(g, "IndexName")?.to_string(),
                    key_schema: key_schema(
                        g.get("KeySchema")
                            .ok_or_else(|| cfg("GSI without KeySchema"))?,
                    )?,
                    projection: g
                        .get("Projection")
                        .map(|pr| str_at(pr, "ProjectionType").map(str::to_string))
                        .transpose()?
                        .unwrap_or_else(|| "ALL".into()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?,
    };
    let ttl = p.get("TimeToLiveSpecification").and_then(|t| {
        let enabled = t.get("Enabled").and_then(Value::as_bool).unwrap_or(false);
        enabled
            .then(|| {
                t.get("AttributeName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .flatten()
    });
    Ok(TableDefinition {
        attributes,
        key_schema: key,
        gsis,
        ttl_attribute: ttl,
        billing_mode: p
            .get("BillingMode")
            .and_then(Value::as_str)
            .unwrap_or("PROVISIONED")
            .to_string(),
        point_in_time_recovery: p
            .get("PointInTimeRecoverySpecification")
            .and_then(|x| x.get("PointInTimeRecoveryEnabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        deletion_protection: p
            .get("DeletionProtectionEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Read every `AWS::SQS::Queue` of the template, dead-letter queues first.
pub fn queue_definitions(template: &str) -> Result<Vec<QueueDefinition>, StoreError> {
    let res = resources(template)?;
    let mut out = vec![];
    for (name, r) in &res {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::SQS::Queue") {
            continue;
        }
        let logical_id = name
            .as_str()
            .ok_or_else(|| cfg("non-string resource name"))?
            .to_string();
        let p = r.get("Properties");
        let redrive = p.and_then(|p| p.get("RedrivePolicy"));
        // `deadLetterTargetArn: !GetAtt X.Arn` arrives as a tagged value.
        let dlq = redrive
            .and_then(|rp| rp.get("deadLetterTargetArn"))
            .and_then(|v| match v {
                Value::Tagged(t) => t
                    .value
                    .as_str()
                    .map(|s| s.trim_end_matches(".Arn").to_string()),
                _ => None,
            });
        out.push(QueueDefinition {
            logical_id,
            visibility_timeout: p
                .and_then(|p| p.get("VisibilityTimeout"))
                .and_then(Value::as_i64),
            max_receive_count: redrive
                .and_then(|rp| rp.get("maxReceiveCount"))
                .and_then(Value::as_i64),
            dead_letter_logical_id: dlq,
        });
    }
    out.sort_by_key(|q| (q.dead_letter_logical_id.is_some(), q.logical_id.clone()));
    Ok(out)
}

impl TableDefinition {
    /// Create this table (used for the local moto server and tests; AWS gets it from SAM).
    pub async fn create(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table_name: &str,
    ) -> Result<(), StoreError> {
        let ks = |v: &Vec<(String, String)>| -> Result<Vec<KeySchemaElement>, StoreError> {
            v.iter()
                .map(|(n, t)| {
                    KeySchemaElement::builder()
                        .attribute_name(n)
                        .key_type(KeyType::from(t.as_str()))
                        .build()
                        .map_err(StoreError::request_build)
                })
                .collect()
        };
        let mut req = client
            .create_table()
            .table_name(table_name)
            .billing_mode(BillingMode::from(self.billing_mode.as_str()))
            .set_key_schema(Some(ks(&self.key_schema)?));
        for (n, t) in &self.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(ScalarAttributeType::from(t.as_str()))
                    .build()
                    .map_err(StoreError::request_build)?,
            );
        }
        for g in &self.gsis {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(ks(&g.key_schema)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(g.projection.as_str()))
                            .build(),
                    )
                    .build()
                    .map_err(StoreError::request_build)?,
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return Ok(())
            }
            Err(e) => return Err(StoreError::dynamo(e)),
        }
        if let Some(attr) = &self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attr)
                        .enabled(true)
                        .build()
                        .map_err(StoreError::request_build)?,
                )
                .send()
                .await
                .map_err(StoreError::dynamo)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[test]
    fn template_table_matches_the_key_module() {
        let t = table_definition(TEMPLATE).expect("template parses");
        assert_eq!(
            t.key_schema,
            vec![
                (keys::PK.into(), "HASH".into()),
                (keys::SK.into(), "RANGE".into())
            ]
        );
        let names: Vec<_> = t.gsis.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec![keys::GSI1, keys::GSI2]);
        assert_eq!(t.gsis[0].key_schema[0].0, keys::GSI1PK);
        assert_eq!(t.gsis[0].key_schema[1].0, keys::GSI1SK);
        assert_eq!(t.gsis[1].key_schema[0].0, keys::GSI2PK);
        assert_eq!(t.gsis[1].key_schema[1].0, keys::GSI2SK);
        assert_eq!(t.ttl_attribute.as_deref(), Some(keys::TTL_ATTR));
        assert_eq!(t.billing_mode, "PAY_PER_REQUEST");
        assert!(t.point_in_time_recovery);
        assert!(t.deletion_protection);
    }

    #[test]
    fn queues_come_with_their_dead_letter_queue_first() {
        // The shape a consumer's queue takes in template.yaml (each with its own DLQ).
        let template = r#"
Resources:
  EmailQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt EmailDeadLetterQueue.Arn
        maxReceiveCount: 5
  EmailDeadLetterQueue:
    Type: AWS::SQS::Queue
"#;
        let qs = queue_definitions(template).unwrap();
        let email = qs
            .iter()
            .find(|q| q.logical_id == "EmailQueue")
            .expect("email queue");
        assert_eq!(
            email.dead_letter_logical_id.as_deref(),
            Some("EmailDeadLetterQueue")
        );
        assert_eq!(email.max_receive_count, Some(5));
        // dead-letter queues are created first
        let pos = |id: &str| qs.iter().position(|q| q.logical_id == id).unwrap();
        assert!(pos("EmailDeadLetterQueue") < pos("EmailQueue"));
    }

    #[test]
    fn template_has_no_queue_without_a_reader() {
        // The dead-letter queues (an operator reads them), the payout queue (its worker reads
        // it), the e-mail and mail-events queues (the notifier reads them); no outbox queue that
        // nothing consumes: each consumer brings its own queue.
        let qs = queue_definitions(TEMPLATE).unwrap();
        let ids: Vec<_> = qs.iter().map(|q| q.logical_id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "EmailDeadLetterQueue",
                "HousekeepingDeadLetterQueue",
                "MailEventsDeadLetterQueue",
                "PayoutDeadLetterQueue",
                "EmailQueue",
                "MailEventsQueue",
                "PayoutQueue"
            ]
        );
        let payout = qs.iter().find(|q| q.logical_id == "PayoutQueue").unwrap();
        assert_eq!(
            payout.dead_letter_logical_id.as_deref(),
            Some("PayoutDeadLetterQueue")
        );
        assert_eq!(payout.visibility_timeout, Some(720));
    }
}
