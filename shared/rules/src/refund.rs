//! Money going back: what refunds and disputes of a charge take back from the commissions of
//! its invoice, pro rata, whatever order their events arrive in.
//!
//! The rule, for one charge:
//!
//! 1. Each refund (`re_…`) and each dispute (`dp_…`) is known by its **latest** observation in
//!    business time (the event's `created`; ties broken by the event id, so every order of
//!    delivery picks the same one): [`latest`].
//! 2. The amount **taken back** is the sum of the refunds that are `succeeded` or `pending`, plus
//!    the disputed amount of every dispute that is open (`needs_response`, `under_review`) or
//!    `lost`, at most the charge amount (a refund and a dispute together never take back more
//!    than 100 %): [`taken_back`]. A refund that later `failed` or was `canceled`, and a dispute
//!    that was `won`, take nothing back. Inquiries (`warning_*`) take nothing back.
//! 3. Each commission's **reversal target** is `commission × taken back ÷ charge amount`,
//!    rounded once with the engine's one rule ([`crate::money::COMMISSION_ROUNDING`]):
//!    [`reversal_target`].
//! 4. Only the difference between the target and what is reversed already is booked
//!    ([`reversal_moves`]), so duplicated, shuffled and concurrent events converge on the same
//!    ledger: the last one to commit sees what the others booked.
//!
//! Which entry moves the money ([`reversal_moves`]):
//! - taking back from a commission still in its hold is `reversed` (out of `pending`);
//! - taking back from one released (available, or paid out) is `clawed_back` (out of
//!   `available`; the balance may go negative, is carried, never paid, and nets against later
//!   earnings of the same partner, program and currency);
//! - giving back (a refund that failed, a dispute won) is `adjusted`: first what was clawed back,
//!   into `available`; then what was reversed, into `pending` while the commission is still in
//!   its hold, else into `available` (the hold has ended: the money is the partner's to be paid).
//!
//! Plan state ([`counts_as_first_sale`], [`counts_towards_levels`]): a refund changes money,
//! never history. A fully refunded first sale is still the customer's first sale (a refund and a
//! new purchase must not earn a first-sale reward twice, and the cap window keeps its start);
//! a refunded sale still counts towards the partner's level (levels only ever promote; a
//! refund takes back the commission, not the promotion).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::ledger::EntryKind;
use crate::money::COMMISSION_ROUNDING;

/// A refund's status (Stripe: `pending`, `requires_action`, `succeeded`, `failed`, `canceled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Submitted; the money is on its way back (counts as taken back).
    Pending,
    /// The customer must act before it proceeds (does not count yet).
    RequiresAction,
    /// The money went back.
    Succeeded,
    /// It did not happen after all (takes nothing back).
    Failed,
    /// Canceled before it happened (takes nothing back).
    Canceled,
}

impl RefundStatus {
    /// Stripe's name → the status; `None` for a status this release does not know.
    pub fn parse(s: &str) -> Option<RefundStatus> {
        Some(match s {
            "pending" => RefundStatus::Pending,
            "requires_action" => RefundStatus::RequiresAction,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            "canceled" => RefundStatus::Canceled,
            _ => return None,
        })
    }

    /// Whether the refund's amount is taken back from the commissions.
    pub fn takes_back(self) -> bool {
        matches!(self, RefundStatus::Pending | RefundStatus::Succeeded)
    }
}

/// A dispute's status (Stripe: `warning_needs_response`, `warning_under_review`,
/// `warning_closed`, `needs_response`, `under_review`, `won`, `lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// An inquiry, not yet a dispute: nothing is taken back.
    WarningNeedsResponse,
    /// An inquiry under review: nothing is taken back.
    WarningUnderReview,
    /// An inquiry closed without a dispute: nothing is taken back.
    WarningClosed,
    /// Disputed, evidence due: the disputed amount is taken back.
    NeedsResponse,
    /// Disputed, evidence submitted: still taken back.
    UnderReview,
    /// The merchant won: given back.
    Won,
    /// The customer won: taken back for good.
    Lost,
}

impl DisputeStatus {
    /// Stripe's name → the status; `None` for a status this release does not know.
    pub fn parse(s: &str) -> Option<DisputeStatus> {
        Some(match s {
            "warning_needs_response" => DisputeStatus::WarningNeedsResponse,
            "warning_under_review" => DisputeStatus::WarningUnderReview,
            "warning_closed" => DisputeStatus::WarningClosed,
            "needs_response" => DisputeStatus::NeedsResponse,
            "under_review" => DisputeStatus::UnderReview,
            "won" => DisputeStatus::Won,
            "lost" => DisputeStatus::Lost,
            _ => return None,
        })
    }

    /// Whether the disputed amount is taken back from the commissions.
    pub fn takes_back(self) -> bool {
        matches!(
            self,
            DisputeStatus::NeedsResponse | DisputeStatus::UnderReview | DisputeStatus::Lost
        )
    }
}

/// One observation of a refund or dispute: what one event said about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Observation<S> {
    /// `re_…` or `dp_…`.
    pub id: String,
    /// Minor units of the charge's currency, positive.
    pub amount: i64,
    /// The status the event reported.
    pub status: S,
    /// Business time of the event (`created`, ms).
    pub at_ms: i64,
    /// The event that said it (breaks ties between events of the same second).
    pub event_id: String,
}

/// The latest observation of each refund or dispute: by business time, then event id. The
/// result does not depend on the order of `observations`.
pub fn latest<S: Clone>(observations: &[Observation<S>]) -> BTreeMap<String, Observation<S>> {
    let mut out: BTreeMap<String, Observation<S>> = BTreeMap::new();
    for o in observations {
        let newer = match out.get(&o.id) {
            None => true,
            Some(cur) => (o.at_ms, &o.event_id) > (cur.at_ms, &cur.event_id),
        };
        if newer {
            out.insert(o.id.clone(), o.clone());
        }
    }
    out
}

/// What a `charge.refunded` event said about its charge: `amount_refunded`, which is
/// cumulative (the sum of the charge's refunds that are pending or succeeded at that moment),
/// and when. Since 2022-11-15 the event does not list the refunds themselves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChargeView {
    /// Minor units, cumulative.
    pub amount_refunded: i64,
    /// Business time of the event (`created`, ms).
    pub at_ms: i64,
    /// The event that said it.
    pub event_id: String,
}

/// The later of two charge views (by business time, then event id).
pub fn later_view(a: Option<ChargeView>, b: Option<ChargeView>) -> Option<ChargeView> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if (b.at_ms, &b.event_id) > (a.at_ms, &a.event_id) {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// What the refunds of a charge take back, in minor units, from two kinds of events:
/// per-refund events (`refund.*`, `charge.refund.updated`: each refund's latest status) and
/// `charge.refunded` (the charge's cumulative `amount_refunded`, `view`). The refunds' sum
/// counts those pending or succeeded; the charge's view counts what it said, less the refunds
/// seen failing or canceled **after** it (it could not know). The larger of the two wins, so
/// a merchant subscribed to only one kind of event, or to both, gets the same amount:
///
/// `refunded = max(Σ refunds pending|succeeded, view.amount_refunded − Σ refunds given up after the view)`
pub fn refunded(
    refunds: &BTreeMap<String, Observation<RefundStatus>>,
    view: Option<&ChargeView>,
) -> i64 {
    let by_refunds: i64 = refunds
        .values()
        .filter(|r| r.status.takes_back())
        .map(|r| r.amount.max(0))
        .fold(0i64, i64::saturating_add);
    let by_view = view.map_or(0, |v| {
        let given_up_since: i64 = refunds
            .values()
            .filter(|r| !r.status.takes_back() && (r.at_ms, &r.event_id) > (v.at_ms, &v.event_id))
            .map(|r| r.amount.max(0))
            .fold(0i64, i64::saturating_add);
        v.amount_refunded
            .max(0)
            .saturating_sub(given_up_since)
            .max(0)
    });
    by_refunds.max(by_view)
}

/// What the refunds and disputes of a charge take back, in minor units, at most the charge
/// amount (each argument: the latest observation of each, [`latest`]).
pub fn taken_back(
    charge_amount: i64,
    refunds: &BTreeMap<String, Observation<RefundStatus>>,
    disputes: &BTreeMap<String, Observation<DisputeStatus>>,
) -> i64 {
    taken_back_with_view(charge_amount, refunds, disputes, None)
}

/// [`taken_back`] with the charge's own view of its refunds ([`refunded`]).
pub fn taken_back_with_view(
    charge_amount: i64,
    refunds: &BTreeMap<String, Observation<RefundStatus>>,
    disputes: &BTreeMap<String, Observation<DisputeStatus>>,
    view: Option<&ChargeView>,
) -> i64 {
    let refunded = refunded(refunds, view);
    let disputed: i64 = disputes
        .values()
        .filter(|d| d.status.takes_back())
        .map(|d| d.amount.max(0))
        .fold(0i64, i64::saturating_add);
    refunded
        .saturating_add(disputed)
        .clamp(0, charge_amount.max(0))
}

/// `round(commission × taken_back ÷ charge_amount)`, rounded once with
/// [`COMMISSION_ROUNDING`]; 0 for a charge of no amount. `taken_back` is at most the charge
/// amount ([`taken_back`]), so the target is at most the commission.
pub fn reversal_target(commission: i64, taken_back: i64, charge_amount: i64) -> i64 {
    if charge_amount <= 0 || taken_back <= 0 {
        return 0;
    }
    let exact = Decimal::from(commission) * Decimal::from(taken_back.min(charge_amount))
        / Decimal::from(charge_amount);
    let rounded = exact.round_dp_with_strategy(0, COMMISSION_ROUNDING);
    i64::try_from(rounded).unwrap_or(commission)
}

/// What has been taken back from one commission so far, by the bucket it came out of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReversedSoFar {
    /// Net of `reversed` entries (out of `pending`) and the `adjusted` ones that undid them.
    pub from_pending: i64,
    /// Net of `clawed_back` entries (out of `available`) and the `adjusted` ones that undid them.
    pub from_available: i64,
}

impl ReversedSoFar {
    /// Everything taken back so far.
    pub fn total(&self) -> i64 {
        self.from_pending + self.from_available
    }
}

/// Where a reversal move takes money from or gives it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveBucket {
    /// The commission's hold has not ended.
    Pending,
    /// Released (available, or paid out).
    Available,
}

/// One ledger entry to book for a commission: `amount` is what the bucket loses (positive for
/// `reversed` / `clawed_back`) or gains (positive for `adjusted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReversalMove {
    /// `Reversed`, `ClawedBack` or `Adjusted`.
    pub kind: EntryKind,
    /// The bucket the money leaves or returns to.
    pub bucket: MoveBucket,
    /// Minor units, positive.
    pub amount: i64,
    /// Which part of [`ReversedSoFar`] it changes: `Pending` for a reversal and for undoing one
    /// (even when the money returns to `available`), `Available` for a clawback and its undoing.
    pub counted_in: MoveBucket,
}

/// The entries that bring a commission from what it has `already` reversed to `target`, given
/// whether it is still in its hold (`pending`). Empty when it is there already. The rules are
/// the module's: take back from the bucket the money is in; give back clawbacks first, then
/// reversals (into `pending` while in the hold, else `available`).
pub fn reversal_moves(target: i64, already: ReversedSoFar, pending: bool) -> Vec<ReversalMove> {
    let delta = target - already.total();
    let mut out = vec![];
    if delta > 0 {
        out.push(if pending {
            ReversalMove {
                kind: EntryKind::Reversed,
                bucket: MoveBucket::Pending,
                amount: delta,
                counted_in: MoveBucket::Pending,
            }
        } else {
            ReversalMove {
                kind: EntryKind::ClawedBack,
                bucket: MoveBucket::Available,
                amount: delta,
                counted_in: MoveBucket::Available,
            }
        });
    } else if delta < 0 {
        let mut give = -delta;
        let from_clawback = give.min(already.from_available.max(0));
        if from_clawback > 0 {
            out.push(ReversalMove {
                kind: EntryKind::Adjusted,
                bucket: MoveBucket::Available,
                amount: from_clawback,
                counted_in: MoveBucket::Available,
            });
            give -= from_clawback;
        }
        if give > 0 {
            out.push(ReversalMove {
                kind: EntryKind::Adjusted,
                bucket: if pending {
                    MoveBucket::Pending
                } else {
                    MoveBucket::Available
                },
                amount: give,
                counted_in: MoveBucket::Pending,
            });
        }
    }
    out
}

/// [`ReversedSoFar`] after booking `moves` (what storage records beside the commission).
pub fn after_moves(mut already: ReversedSoFar, moves: &[ReversalMove]) -> ReversedSoFar {
    for m in moves {
        let signed = match m.kind {
            EntryKind::Adjusted => -m.amount,
            _ => m.amount,
        };
        match m.counted_in {
            MoveBucket::Pending => already.from_pending += signed,
            MoveBucket::Available => already.from_available += signed,
        }
    }
    already
}

/// Whether a sale counts as the customer's first sale after refunds: always (a refund changes
/// money, not history).
pub fn counts_as_first_sale(_fully_refunded: bool) -> bool {
    true
}

/// Whether a sale counts towards the partner's level after refunds: always (levels only ever
/// promote; the refund takes back the commission).
pub fn counts_towards_levels(_fully_refunded: bool) -> bool {
    true
}

/// The share of an invoice's commission base that was paid with money: `amount_paid ÷ total`
/// (an invoice paid partly from the customer's credit balance earns on what was received).
/// 1 when nothing came from credit; 0 for an invoice of no total. A credit note that only
/// credits the customer's balance returns no money, so it changes nothing now; the credit earns
/// nothing when it is spent either, since the invoice it pays is scaled by this share.
pub fn paid_share(amount_paid: i64, total: i64) -> Decimal {
    if total <= 0 {
        return Decimal::ZERO;
    }
    let paid = amount_paid.clamp(0, total);
    Decimal::from(paid) / Decimal::from(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund(
        id: &str,
        amount: i64,
        status: RefundStatus,
        at_ms: i64,
    ) -> Observation<RefundStatus> {
        Observation {
            id: id.into(),
            amount,
            status,
            at_ms,
            event_id: format!("evt_{id}_{at_ms}"),
        }
    }

    #[test]
    fn reversal_target_in_worked_cents() {
        // (commission, taken back, charge, target)
        let cases = [
            (2475, 0, 9900, 0),
            (2475, 9900, 9900, 2475),
            (2475, 4950, 9900, 1238),  // 1237.5 → 1238 (half away from zero)
            (2475, 3300, 9900, 825),   // a third
            (2475, 1, 9900, 0),        // 0.25 cent → 0
            (2475, 2, 9900, 1),        // 0.5 cent → 1
            (495, 4950, 9900, 248),    // tier 2 follows: 247.5 → 248
            (2475, 20000, 9900, 2475), // never more than the commission
            (2475, 100, 0, 0),         // a charge of nothing
            // JPY (no minor unit): ¥12,000 charge, ¥3,000 commission, ¥1,000 refunded.
            (3000, 1000, 12000, 250),
            // KWD (3 decimals): 12.345 KWD charge, 3.086 commission, 5.000 refunded → 1.24992…
            (3086, 5000, 12345, 1250),
        ];
        for (commission, taken, charge, target) in cases {
            assert_eq!(
                reversal_target(commission, taken, charge),
                target,
                "{commission} × {taken} ÷ {charge}"
            );
        }
    }

    #[test]
    fn taken_back_counts_pending_and_succeeded_refunds_and_open_or_lost_disputes_up_to_100_percent()
    {
        use DisputeStatus as D;
        use RefundStatus as R;
        // (refund statuses with amounts, dispute statuses with amounts, expected)
        type Case<'a> = (&'a [(i64, R)], &'a [(i64, D)], i64);
        let cases: &[Case] = &[
            (&[(3000, R::Succeeded)], &[], 3000),
            (&[(3000, R::Pending)], &[], 3000),
            (&[(3000, R::RequiresAction)], &[], 0),
            (&[(3000, R::Failed)], &[], 0),
            (&[(3000, R::Canceled), (1000, R::Succeeded)], &[], 1000),
            (&[], &[(9900, D::NeedsResponse)], 9900),
            (&[], &[(9900, D::UnderReview)], 9900),
            (&[], &[(9900, D::Lost)], 9900),
            (&[], &[(9900, D::Won)], 0),
            (&[], &[(9900, D::WarningNeedsResponse)], 0),
            (&[], &[(9900, D::WarningUnderReview)], 0),
            (&[], &[(9900, D::WarningClosed)], 0),
            // A refund and a dispute together: at most the charge.
            (&[(5000, R::Succeeded)], &[(9900, D::NeedsResponse)], 9900),
            (&[(5000, R::Succeeded)], &[(4900, D::Lost)], 9900),
            (&[(5000, R::Succeeded)], &[(4900, D::Won)], 5000),
        ];
        for (i, (refunds, disputes, expected)) in cases.iter().enumerate() {
            let r: Vec<_> = refunds
                .iter()
                .enumerate()
                .map(|(n, (a, s))| refund(&format!("re_{n}"), *a, *s, 1))
                .collect();
            let d: Vec<_> = disputes
                .iter()
                .enumerate()
                .map(|(n, (a, s))| Observation {
                    id: format!("dp_{n}"),
                    amount: *a,
                    status: *s,
                    at_ms: 1,
                    event_id: "evt".into(),
                })
                .collect();
            assert_eq!(
                taken_back(9900, &latest(&r), &latest(&d)),
                *expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn the_latest_status_wins_in_every_order() {
        let obs = [
            refund("re_1", 3000, RefundStatus::Pending, 1_000),
            refund("re_1", 3000, RefundStatus::Failed, 2_000),
            refund("re_2", 1000, RefundStatus::Succeeded, 1_500),
        ];
        let mut orders = vec![];
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    if a != b && b != c && a != c {
                        orders.push([a, b, c]);
                    }
                }
            }
        }
        for order in orders {
            let shuffled: Vec<_> = order.iter().map(|&i| obs[i].clone()).collect();
            let l = latest(&shuffled);
            assert_eq!(l["re_1"].status, RefundStatus::Failed, "{order:?}");
            assert_eq!(taken_back(9900, &l, &BTreeMap::new()), 1000, "{order:?}");
        }
        // Same second: the event id decides, whatever the order.
        let a = Observation {
            event_id: "evt_a".into(),
            ..refund("re_3", 500, RefundStatus::Pending, 5_000)
        };
        let b = Observation {
            event_id: "evt_b".into(),
            ..refund("re_3", 500, RefundStatus::Succeeded, 5_000)
        };
        assert_eq!(
            latest(&[a.clone(), b.clone()]),
            latest(&[b.clone(), a.clone()])
        );
        assert_eq!(latest(&[a, b])["re_3"].status, RefundStatus::Succeeded);
    }

    #[test]
    fn which_entry_moves_the_money() {
        let none = ReversedSoFar::default();
        use EntryKind::{Adjusted, ClawedBack, Reversed as Rev};
        use MoveBucket as B;
        // (target, already, pending?, expected moves)
        type Case = (i64, ReversedSoFar, bool, Vec<(EntryKind, MoveBucket, i64)>);
        let cases: Vec<Case> = vec![
            (0, none, true, vec![]),
            (1238, none, true, vec![(Rev, B::Pending, 1238)]),
            (1238, none, false, vec![(ClawedBack, B::Available, 1238)]),
            // More taken back after the release: the rest is a clawback.
            (
                2475,
                ReversedSoFar {
                    from_pending: 1238,
                    from_available: 0,
                },
                false,
                vec![(ClawedBack, B::Available, 1237)],
            ),
            // Already there: nothing (a duplicate event).
            (
                1238,
                ReversedSoFar {
                    from_pending: 1238,
                    from_available: 0,
                },
                true,
                vec![],
            ),
            // A refund failed while still in the hold: the reversal is undone into pending.
            (
                0,
                ReversedSoFar {
                    from_pending: 1238,
                    from_available: 0,
                },
                true,
                vec![(Adjusted, B::Pending, 1238)],
            ),
            // ... after the release: into available.
            (
                0,
                ReversedSoFar {
                    from_pending: 1238,
                    from_available: 0,
                },
                false,
                vec![(Adjusted, B::Available, 1238)],
            ),
            // Clawbacks are given back first, then reversals.
            (
                500,
                ReversedSoFar {
                    from_pending: 1238,
                    from_available: 1237,
                },
                false,
                vec![
                    (Adjusted, B::Available, 1237),
                    (Adjusted, B::Available, 738),
                ],
            ),
            (
                2000,
                ReversedSoFar {
                    from_pending: 1238,
                    from_available: 1237,
                },
                false,
                vec![(Adjusted, B::Available, 475)],
            ),
        ];
        for (i, (target, already, pending, expected)) in cases.into_iter().enumerate() {
            let moves = reversal_moves(target, already, pending);
            let got: Vec<_> = moves.iter().map(|m| (m.kind, m.bucket, m.amount)).collect();
            assert_eq!(got, expected, "case {i}");
            assert_eq!(after_moves(already, &moves).total(), target, "case {i}");
        }
    }

    #[test]
    fn the_charge_view_and_the_refund_events_agree() {
        use RefundStatus as R;
        let view = |amount_refunded, at_ms| ChargeView {
            amount_refunded,
            at_ms,
            event_id: format!("evt_ch_{at_ms}"),
        };
        // (refunds: amount, status, at; charge view; refunded)
        type Case = (Vec<(i64, R, i64)>, Option<ChargeView>, i64);
        let cases: Vec<Case> = vec![
            // Only charge.refunded: its cumulative amount.
            (vec![], Some(view(5000, 10)), 5000),
            // Only refund events.
            (
                vec![(3000, R::Succeeded, 10), (2000, R::Pending, 11)],
                None,
                5000,
            ),
            // Both, agreeing.
            (vec![(5000, R::Succeeded, 10)], Some(view(5000, 10)), 5000),
            // A refund the events did not name (not subscribed to refund.created).
            (vec![(2000, R::Succeeded, 5)], Some(view(5000, 10)), 5000),
            // A refund failed after the charge said so: the view is stale by it.
            (vec![(5000, R::Failed, 20)], Some(view(5000, 10)), 0),
            (vec![(3000, R::Failed, 20)], Some(view(5000, 10)), 2000),
            // ... failed before the view: the view already left it out.
            (vec![(3000, R::Failed, 5)], Some(view(2000, 10)), 2000),
        ];
        for (i, (refunds, v, expected)) in cases.into_iter().enumerate() {
            let obs: Vec<_> = refunds
                .iter()
                .enumerate()
                .map(|(n, (a, s, at))| refund(&format!("re_{n}"), *a, *s, *at))
                .collect();
            assert_eq!(refunded(&latest(&obs), v.as_ref()), expected, "case {i}");
        }
        assert_eq!(
            later_view(Some(view(1, 10)), Some(view(2, 20))),
            Some(view(2, 20))
        );
        assert_eq!(
            later_view(Some(view(2, 20)), Some(view(1, 10))),
            Some(view(2, 20))
        );
        assert_eq!(later_view(None, Some(view(1, 10))), Some(view(1, 10)));
    }

    #[test]
    fn a_refund_changes_money_not_history() {
        assert!(counts_as_first_sale(true));
        assert!(counts_towards_levels(true));
    }

    #[test]
    fn paid_from_credit_scales_the_base() {
        // (amount_paid, total, share)
        let cases = [
            (9900, 9900, Decimal::ONE),
            (4950, 9900, Decimal::new(5, 1)),
            (0, 9900, Decimal::ZERO),
            (9900, 0, Decimal::ZERO),
            (12000, 9900, Decimal::ONE),
        ];
        for (paid, total, share) in cases {
            assert_eq!(paid_share(paid, total), share, "{paid} / {total}");
        }
    }
}
