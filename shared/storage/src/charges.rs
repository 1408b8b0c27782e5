//! Money going back, per charge: one item per charge (`CHARGE#{charge_key}`) keeps each refund
//! and dispute at its latest status, the charge's own view of what was refunded, and the
//! invoices booked on the charge in each program. It is where the two writers meet: a refund
//! or dispute event, and the booking (or re-pricing) of a sale paid by that charge, each write
//! this item conditional on the version they read, in the same transaction as the commission
//! moves they compute from it. Whichever commits second reads the other's write and computes
//! again, so neither a refund that arrives before its sale nor one racing it is lost.
//!
//! A charge with money going back but no booked sale yet is *parked*: listed in a sparse index
//! by month ([`keys::parked_charge_gsi`]) until a sale is booked on it.

use aws_sdk_dynamodb::types::AttributeValue;
use rules::refund::{
    later_view, latest, taken_back_with_view, ChargeView, DisputeStatus, Observation, RefundStatus,
};
use rules::Currency;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::Tx;

/// An invoice booked on a charge, in one program.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChargeBooking {
    pub program_id: String,
    pub customer_key: String,
    pub invoice_id: String,
    /// What the invoice says was paid with money (`amount_paid`), minor units: the charge
    /// amount when no `charge.refunded` event named it.
    pub amount_paid: i64,
}

/// A charge's money going back, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRow {
    pub charge_key: String,
    /// Optimistic lock of every writer of this charge's commissions.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub currency: Option<Currency>,
    /// `charge.amount`, when a `charge.refunded` event named it.
    #[serde(default)]
    pub charge_amount: Option<i64>,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub invoice_id: Option<String>,
    #[serde(default)]
    pub customer_key: Option<String>,
    /// Each refund at its latest status (business time, then event id).
    #[serde(default)]
    pub refunds: Vec<Observation<RefundStatus>>,
    /// Each dispute at its latest status.
    #[serde(default)]
    pub disputes: Vec<Observation<DisputeStatus>>,
    /// The latest `charge.refunded` view (cumulative `amount_refunded`).
    #[serde(default)]
    pub view: Option<ChargeView>,
    /// Events applied (`evt_…`): a repeat changes nothing.
    #[serde(default)]
    pub events: Vec<String>,
    /// The invoices booked on this charge.
    #[serde(default)]
    pub bookings: Vec<ChargeBooking>,
    /// What delivers this charge's events (`stripe`, `feed:{name}`); `None` on items written
    /// before sources were recorded, which are Stripe's.
    #[serde(default)]
    pub source: Option<String>,
    /// Business time of the first event about this charge.
    #[serde(default)]
    pub first_seen_ms: i64,
}

/// What one event says about a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeFact {
    Refund(Observation<RefundStatus>),
    Dispute(Observation<DisputeStatus>),
    /// `charge.refunded`: the charge's amount and its cumulative view.
    Charge {
        amount: i64,
        view: ChargeView,
    },
}

impl ChargeRow {
    /// A charge nothing is known about yet.
    pub fn new(charge_key: &str, first_seen_ms: i64) -> Self {
        ChargeRow {
            charge_key: charge_key.into(),
            version: 0,
            currency: None,
            charge_amount: None,
            payment_intent: None,
            invoice_id: None,
            customer_key: None,
            refunds: vec![],
            disputes: vec![],
            view: None,
            events: vec![],
            bookings: vec![],
            source: None,
            first_seen_ms,
        }
    }

    /// What delivers this charge's events (`stripe` unless recorded otherwise).
    pub fn source(&self) -> &str {
        self.source.as_deref().unwrap_or("stripe")
    }

    /// Whether the event was applied already.
    pub fn has_event(&self, event_id: &str) -> bool {
        self.events.iter().any(|e| e == event_id)
    }

    /// Add what an event says (keeping each refund and dispute at its latest observation).
    /// Returns false, changing nothing, for an event applied already.
    pub fn apply(&mut self, event_id: &str, at_ms: i64, fact: ChargeFact) -> bool {
        if self.has_event(event_id) {
            return false;
        }
        self.events.push(event_id.to_string());
        if self.first_seen_ms == 0 || at_ms < self.first_seen_ms {
            self.first_seen_ms = at_ms;
        }
        match fact {
            ChargeFact::Refund(o) => {
                let mut all = std::mem::take(&mut self.refunds);
                all.push(o);
                self.refunds = latest(&all).into_values().collect();
            }
            ChargeFact::Dispute(o) => {
                let mut all = std::mem::take(&mut self.disputes);
                all.push(o);
                self.disputes = latest(&all).into_values().collect();
            }
            ChargeFact::Charge { amount, view } => {
                self.charge_amount = Some(amount);
                self.view = later_view(self.view.take(), Some(view));
            }
        }
        true
    }

    /// Record that `booking`'s invoice is booked on this charge (once).
    pub fn add_booking(&mut self, booking: ChargeBooking) -> bool {
        if self
            .bookings
            .iter()
            .any(|b| b.program_id == booking.program_id && b.invoice_id == booking.invoice_id)
        {
            return false;
        }
        self.bookings.push(booking);
        self.bookings.sort();
        true
    }

    /// The amount refunds are measured against: `charge.amount` when an event named it, else
    /// what the invoice booked on it says was paid.
    pub fn charge_amount(&self, booking: Option<&ChargeBooking>) -> Option<i64> {
        self.charge_amount
            .or_else(|| booking.map(|b| b.amount_paid))
            .or_else(|| self.bookings.iter().map(|b| b.amount_paid).max())
    }

    /// What the refunds and disputes take back, in minor units, against `charge_amount`.
    pub fn taken_back(&self, charge_amount: i64) -> i64 {
        taken_back_with_view(
            charge_amount,
            &latest(&self.refunds),
            &latest(&self.disputes),
            self.view.as_ref(),
        )
    }

    /// Business time of the latest fact about the charge (a reversal's time).
    pub fn latest_fact_ms(&self) -> i64 {
        let r = self.refunds.iter().map(|o| o.at_ms);
        let d = self.disputes.iter().map(|o| o.at_ms);
        let v = self.view.iter().map(|v| v.at_ms);
        r.chain(d).chain(v).max().unwrap_or(self.first_seen_ms)
    }

    /// Parked: money going back is known, no sale is booked on it yet.
    pub fn is_parked(&self) -> bool {
        self.bookings.is_empty()
    }
}

fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "0000-00".into())
}

/// One charge (strongly consistent).
pub async fn get(table: &Table, charge_key: &str) -> Result<Option<ChargeRow>, StoreError> {
    table.get_as(&keys::charge(charge_key)).await
}

/// Several charges in one `BatchGetItem`.
pub async fn get_many(table: &Table, charge_keys: &[String]) -> Result<Vec<ChargeRow>, StoreError> {
    let wanted: Vec<_> = charge_keys.iter().map(|k| keys::charge(k)).collect();
    let mut out: Vec<ChargeRow> = table.batch_get_as(&wanted).await?;
    out.sort_by(|a, b| a.charge_key.cmp(&b.charge_key));
    Ok(out)
}

/// Write `row` as version `read_version + 1`, if the stored version is still `read_version`
/// (or, for 0, there is none): `ConditionFailed{"charge"}` when another writer of this charge
/// committed since it was read.
pub fn put(tx: &mut Tx, row: &ChargeRow, read_version: u64) -> Result<(), StoreError> {
    let mut stored = row.clone();
    stored.version = read_version + 1;
    let mut item = to_item(&stored, &keys::charge(&row.charge_key))?;
    if let Some(c) = &row.customer_key {
        item = item.with_gsi1(keys::customer_charges_gsi(
            c,
            row.first_seen_ms,
            &row.charge_key,
        ));
    }
    if row.is_parked() {
        item = item.with_gsi2(keys::parked_charge_gsi(
            &month_of(row.first_seen_ms),
            row.first_seen_ms,
            &row.charge_key,
        ));
    }
    let (expr, values) = if read_version == 0 {
        ("attribute_not_exists(PK)", vec![])
    } else {
        (
            "#ver = :ver",
            vec![(":ver", AttributeValue::N(read_version.to_string()))],
        )
    };
    let names: &[(&str, &str)] = if read_version == 0 {
        &[]
    } else {
        &[("#ver", "version")]
    };
    tx.put_if(item, expr, names, values, "charge")
}

/// A customer's charges with money going back (or with a sale booked on them and a refund
/// since), oldest first.
pub async fn of_customer(table: &Table, customer_key: &str) -> Result<Vec<ChargeRow>, StoreError> {
    table
        .query_as(Query::gsi1(keys::customer_charges_pk(customer_key)))
        .await
}

/// Parked charges (refunds or disputes whose sale is not booked), first seen in `month`
/// (`YYYY-MM`).
pub async fn parked_in_month(table: &Table, month: &str) -> Result<Vec<ChargeRow>, StoreError> {
    table
        .query_as(Query::gsi2(keys::parked_charges_pk(month)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund(id: &str, status: RefundStatus, at_ms: i64, event: &str) -> ChargeFact {
        ChargeFact::Refund(Observation {
            id: id.into(),
            amount: 5000,
            status,
            at_ms,
            event_id: event.into(),
        })
    }

    #[test]
    fn a_repeat_changes_nothing_and_the_latest_status_wins() {
        let mut row = ChargeRow::new("ch_1", 0);
        assert!(row.apply(
            "evt_2",
            2_000,
            refund("re_1", RefundStatus::Failed, 2_000, "evt_2")
        ));
        assert!(row.apply(
            "evt_1",
            1_000,
            refund("re_1", RefundStatus::Pending, 1_000, "evt_1")
        ));
        assert!(!row.apply(
            "evt_1",
            1_000,
            refund("re_1", RefundStatus::Pending, 1_000, "evt_1")
        ));
        assert_eq!(row.refunds.len(), 1);
        assert_eq!(row.refunds[0].status, RefundStatus::Failed);
        assert_eq!(row.first_seen_ms, 1_000);
        assert_eq!(row.taken_back(13_400), 0);
        assert!(row.is_parked());
        assert!(row.add_booking(ChargeBooking {
            program_id: "p".into(),
            customer_key: "cus_1".into(),
            invoice_id: "in_1".into(),
            amount_paid: 13_400,
        }));
        assert!(!row.is_parked());
        assert_eq!(row.charge_amount(None), Some(13_400));
    }
}
