//! Paid invoices to commissions, exactly once and in business time, split by what comes in:
//!
//! * [`intake`]: an `invoice.paid` arrives: de-duplication, which programs its products are on,
//!   which binding covers it (the customer's own, or a fallback by e-mail, invitation or
//!   promotion code), or keep it as unattributed.
//! * [`booking`]: fold the customer's invoices in business-time order
//!   (`rules::plan::evaluate_customer`), plan the difference from what is booked, and write it
//!   in one transaction: the processed marker, the customer's sales state (the optimistic lock
//!   of every booking of that customer), invoice rows, commissions, entries, balance moves,
//!   the partner's level sale and levels, and outbox messages. An earlier invoice arriving late
//!   corrects later ones, and a replay books nothing.
//! * [`levels`]: partner levels derived from the partner's sales in business time; a sale that
//!   moves a level crossing re-prices the partner's affected customers.
//! * [`waiting`]: once a customer is bound, the customer's sales that were waiting for it; and
//!   the periodic sweep that books any whose binding came without that step.
//! * [`side_events`]: payment failed, subscription ended.
//! * [`money_back`]: refunds and disputes of a charge take back from the commissions of the
//!   sales booked on it, pro rata ([`reversals`], shared with the booking).

pub mod booking;
pub mod intake;
pub mod levels;
pub mod money_back;
mod reversals;
pub mod side_events;
pub mod waiting;

pub use booking::reconcile_customer;
pub use intake::{invoice_paid, PaidInvoice, SaleOutcome};
pub use levels::reprice_after_level_change;
pub use money_back::{money_back, MoneyBack, MoneyBackOutcome};
pub use side_events::{
    invoice_payment_failed, subscription_ended, PaymentFailed, SubscriptionEnded,
};
pub use waiting::{sweep_waiting_sales, SweepReport, SWEEP_LOOKBACK_MS};

/// Where the processed-event markers of Stripe events live (`EVENT#stripe#…`).
pub const STRIPE_SOURCE: &str = "stripe";

/// The outbox id of the "commission earned" message of a commission.
pub(crate) fn earned_message_id(commission_id: &str) -> String {
    format!("commission-earned:{commission_id}")
}
