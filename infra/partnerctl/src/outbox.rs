//! `partnerctl outbox`: unsent outbox messages, per kind. A kind whose consumer has no queue yet
//! (`EMAIL_QUEUE_URL`, `CRM_SYNC_QUEUE_URL` unset in the functions) keeps its messages here;
//! a routed kind lists only what failed to send and waits for the outbox sweep.

use messages::Kind;
use serde::Serialize;
use storage::outbox::{self, OutboxRow};
use storage::Table;

use crate::show::render;
use crate::{CliError, Format};

/// One kind's unsent messages (every kind is listed, with 0 when none waits).
#[derive(Debug, Serialize)]
pub struct KindSummary {
    pub kind: &'static str,
    /// The consumer that reads this kind, and the variable that gives the senders its queue.
    pub consumer: &'static str,
    pub queue_url_env: &'static str,
    pub unsent: usize,
    pub oldest_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct OutboxView {
    pub kinds: Vec<KindSummary>,
    /// Unsent messages, oldest first.
    pub messages: Vec<OutboxRow>,
}

/// The kinds to show: `--kind` (validated against [`Kind::ALL`]) or all.
pub fn kinds_of(filter: Option<&str>) -> Result<Vec<Kind>, CliError> {
    match filter {
        None => Ok(Kind::ALL.to_vec()),
        Some(name) => Kind::parse(name).map(|k| vec![k]).ok_or_else(|| {
            CliError::Usage(format!(
                "unknown message kind {name:?} (kinds: {})",
                Kind::ALL.map(Kind::as_str).join(", ")
            ))
        }),
    }
}

/// Read the unsent index of each kind (one query per shard).
pub async fn view(table: &Table, kind: Option<&str>) -> Result<OutboxView, CliError> {
    let mut kinds = vec![];
    let mut messages = vec![];
    for k in kinds_of(kind)? {
        let rows = outbox::unsent_of_kind(table, k).await?;
        kinds.push(KindSummary {
            kind: k.as_str(),
            consumer: k.consumer().as_str(),
            queue_url_env: k.consumer().queue_url_env(),
            unsent: rows.len(),
            oldest_ms: rows.iter().map(|r| r.created_ms).min(),
        });
        messages.extend(rows);
    }
    messages.sort_by(|a, b| (a.created_ms, &a.message_id).cmp(&(b.created_ms, &b.message_id)));
    Ok(OutboxView { kinds, messages })
}

pub async fn outbox(table: &Table, format: Format, kind: Option<&str>) -> Result<String, CliError> {
    let v = view(table, kind).await?;
    if format == Format::Json {
        return serde_json::to_string_pretty(&v).map_err(|e| CliError::Usage(e.to_string()));
    }
    let mut out = render(
        format,
        "unsent outbox messages per kind",
        &["kind", "consumer", "queue variable", "unsent", "oldest"],
        &v.kinds,
        |k| {
            vec![
                k.kind.to_string(),
                k.consumer.to_string(),
                k.queue_url_env.to_string(),
                k.unsent.to_string(),
                k.oldest_ms.map(time).unwrap_or_default(),
            ]
        },
    );
    out.push_str(&render(
        format,
        "\nunsent messages",
        &["created", "kind", "message id"],
        &v.messages,
        |m| vec![time(m.created_ms), m.kind.clone(), m.message_id.clone()],
    ));
    Ok(out)
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_unless_one_is_asked_for() {
        assert_eq!(kinds_of(None).unwrap(), Kind::ALL.to_vec());
        assert_eq!(
            kinds_of(Some("crm_sync_partner")).unwrap(),
            vec![Kind::CrmSyncPartner]
        );
        let err = kinds_of(Some("payout")).unwrap_err().to_string();
        assert!(
            err.contains(
                "commission_earned, commission_reversed, partner_invite, crm_sync_partner, \
                 payout_waiting, forfeit_warning, forfeited"
            ),
            "{err}"
        );
    }
}
