//! `partnerctl attention`: the needs-attention records (what the Stripe webhook kept because it
//! could not process it, and payout rail batches an operator must look at), and their replay
//! after a fix.
//!
//! A replay runs the stored payload (exactly the body Stripe signed, verified when it arrived)
//! through the webhook's own processing (`sale_webhook::replay`) with this command's engine, so
//! it runs the code of this release: replay with the release that carries the fix. It is
//! idempotent: the engine's processed markers book an event once however often it is replayed,
//! and a replay that still cannot process the event updates the record instead of closing it.

use std::fmt::Write as _;
use std::sync::Arc;

use sale_webhook::config;
use sale_webhook::engine_adapter::EngineSink;
use sale_webhook::policy::EventPolicy;
use sale_webhook::{Deps, Reply};
use storage::attention::{self, AttentionRecord, AttentionState};
use storage::{SharedClock, SystemClock, Table};

use crate::{CliError, Format};
use engine::payout::handover::ATTENTION_SOURCE as PAYOUT_RAIL_SOURCE;

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Open records, or every record first seen in `month` (`YYYY-MM`).
pub async fn list(table: &Table, format: Format, month: Option<&str>) -> Result<String, CliError> {
    let rows = match month {
        Some(m) => attention::of_month(table, m).await?,
        None => attention::open(table).await?,
    };
    if format == Format::Json {
        let rows: Vec<_> = rows.iter().map(summary_json).collect();
        return Ok(format!("{}\n", serde_json::Value::Array(rows)));
    }
    let mut out = String::new();
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            match month {
                Some(m) => format!("no needs-attention record first seen in {m}"),
                None => "no open needs-attention record".to_string(),
            }
        );
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<40} {:<10} {:<22} {:<28} {:>4} {:<19}  REASON",
        "ID", "STATE", "CODE", "TYPE", "SEEN", "FIRST SEEN (UTC)"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<40} {:<10} {:<22} {:<28} {:>4} {:<19}  {}",
            r.id,
            r.state.as_str(),
            r.reason_code,
            r.event_type.as_deref().unwrap_or("-"),
            r.deliveries,
            when(r.first_seen_ms),
            r.reason
        );
    }
    Ok(out)
}

fn summary_json(r: &AttentionRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "state": r.state.as_str(),
        "reason_code": r.reason_code,
        "reason": r.reason,
        "event_id": r.event_id,
        "event_type": r.event_type,
        "api_version": r.api_version,
        "livemode": r.livemode,
        "deliveries": r.deliveries,
        "first_seen_ms": r.first_seen_ms,
        "last_seen_ms": r.last_seen_ms,
        "payload_kept": r.payload.is_some(),
        "payload_ref": r.payload_ref,
        "resolution": r.resolution,
    })
}

async fn get(table: &Table, id: &str) -> Result<AttentionRecord, CliError> {
    attention::get(table, id)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no needs-attention record {id}")))
}

/// One record, with its payload.
pub async fn show(table: &Table, format: Format, id: &str) -> Result<String, CliError> {
    let r = get(table, id).await?;
    if format == Format::Json {
        let mut j = summary_json(&r);
        j["payload"] = r.payload.clone().into();
        return Ok(format!("{j}\n"));
    }
    let mut out = String::new();
    let _ = writeln!(out, "id:          {}", r.id);
    let _ = writeln!(out, "state:       {}", r.state.as_str());
    let _ = writeln!(out, "reason:      {} - {}", r.reason_code, r.reason);
    let _ = writeln!(
        out,
        "event:       {} {}",
        r.event_id.as_deref().unwrap_or("-"),
        r.event_type.as_deref().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "api version: {}  livemode: {}",
        r.api_version.as_deref().unwrap_or("-"),
        r.livemode.map(|l| l.to_string()).unwrap_or("-".into())
    );
    let _ = writeln!(
        out,
        "seen:        {} time(s), first {}, last {}",
        r.deliveries,
        when(r.first_seen_ms),
        when(r.last_seen_ms)
    );
    if let Some(res) = &r.resolution {
        let _ = writeln!(
            out,
            "closed:      {} by {}: {res}",
            r.closed_ms.map(when).unwrap_or_default(),
            r.closed_by.as_deref().unwrap_or("?")
        );
    }
    match (&r.payload, &r.payload_ref) {
        (Some(p), _) => {
            let _ = writeln!(out, "payload:\n{p}");
        }
        (None, Some(reference)) => {
            let _ = writeln!(out, "payload:     {reference}");
        }
        (None, None) => {}
    }
    Ok(out)
}

/// The webhook's processing with the real engine, configured like the function (environment:
/// `TRACKING_KEY` or `TRACKING_KEY_PARAM`, `STRIPE_MODE`, `STRIPE_CONNECT_ACCOUNTS`,
/// `STRIPE_API_KEY` or `STRIPE_API_KEY_PARAM`, `STRIPE_API_BASE`).
async fn webhook_deps(table: Table) -> Result<Deps<EngineSink>, CliError> {
    let aws = storage::table::aws_config().await;
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let key_source = config::TrackingKeySource::from_env().map_err(|e| usage(&e))?;
    let keys = config::load_tracking_keys(&key_source, &aws)
        .await
        .map_err(|e| usage(&e))?;
    let policy = EventPolicy::from_env().map_err(|e| usage(&e))?;
    let lines = config::load_stripe_api(|k| std::env::var(k).ok(), &aws)
        .await
        .map_err(|e| usage(&e))?;
    let clock: SharedClock = Arc::new(SystemClock);
    // The real tracking key (not a stand-in): a replayed binding verifies its click id.
    let engine = crate::operator_engine(table.with_clock(clock.clone()), keys, &aws);
    Ok(Deps {
        sink: EngineSink::new(engine),
        // Not used: a replay's payload was verified when it arrived.
        secrets: sale_webhook::SigningSecrets::from_list("whsec_replay_unused")
            .ok_or_else(|| CliError::Usage("signing secrets".into()))?,
        clock,
        policy,
        lines,
        // Not used either: a replayed feed event was verified when it arrived.
        feed: sale_webhook::FeedSources::none(),
    })
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Processed: the record is closed as resolved with this outcome.
    Resolved { outcome: String, detail: String },
    /// Still cannot be processed: the record stays open with the latest reason.
    StillNeedsAttention { detail: String },
}

/// Replay an open record's payload. `accept_api_version`: the operator has checked the
/// payload of an untested API version and lets it be processed.
pub async fn replay(
    table: &Table,
    id: &str,
    accept_api_version: bool,
    operator: &str,
) -> Result<Replayed, CliError> {
    let r = get(table, id).await?;
    if r.state != AttentionState::Open {
        return Err(CliError::Usage(format!(
            "{id} is {} already ({}); nothing to replay",
            r.state.as_str(),
            r.resolution.as_deref().unwrap_or("")
        )));
    }
    if r.source == PAYOUT_RAIL_SOURCE {
        // Not an event: the poller works the batch again by itself.
        return Err(CliError::Usage(format!(
            "{id} is a payout rail batch, not an event to replay: the poller reads or sends it \
             again under the same ids every time it is due (`partnerctl payouts batches {}`); \
             once its items are settled (by the rail, or `partnerctl payouts mark`), \
             `partnerctl attention dismiss {id}`",
            r.event_id.as_deref().unwrap_or("")
        )));
    }
    let Some(payload) = r.payload.clone() else {
        return Err(CliError::Usage(format!(
            "{id}: the payload was not kept ({}); resend the event from its sender (Stripe's dashboard, the billing system) instead",
            r.payload_ref.as_deref().unwrap_or("")
        )));
    };
    if accept_api_version && !attention::accept_api_version(table, id, operator).await? {
        return Err(CliError::Usage(format!("{id} is no longer open")));
    }
    let deps = webhook_deps(table.clone()).await?;
    // A Stripe event, or an event of a sale feed source (`feed:{name}`), each the way it came.
    let reply = match sale_webhook::feed::source_of_engine_source(&r.source) {
        Some(feed_source) => {
            sale_webhook::replay_feed(&deps, feed_source, payload.as_bytes()).await
        }
        None => sale_webhook::replay(&deps, payload.as_bytes()).await,
    };
    interpret_reply(table, id, operator, &reply).await
}

async fn interpret_reply(
    table: &Table,
    id: &str,
    operator: &str,
    reply: &Reply,
) -> Result<Replayed, CliError> {
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    if reply.status != 200 {
        return Err(CliError::Usage(format!(
            "replay of {id} failed for now (HTTP {}: {}); the record stays open, try again later",
            reply.status,
            text("detail")
        )));
    }
    let (outcome, detail) = (text("outcome"), text("detail"));
    if outcome == "needs_attention" {
        return Ok(Replayed::StillNeedsAttention { detail });
    }
    attention::close(
        table,
        id,
        AttentionState::Resolved,
        &format!("replayed: {outcome} {detail}"),
        operator,
    )
    .await?;
    Ok(Replayed::Resolved { outcome, detail })
}

/// Close an open record without a replay (nothing to do: a test event, a refused account).
pub async fn dismiss(
    table: &Table,
    id: &str,
    reason: &str,
    operator: &str,
) -> Result<(), CliError> {
    get(table, id).await?;
    if attention::close(
        table,
        id,
        AttentionState::Dismissed,
        &format!("dismissed: {reason}"),
        operator,
    )
    .await?
    {
        Ok(())
    } else {
        Err(CliError::Usage(format!("{id} is not open")))
    }
}
