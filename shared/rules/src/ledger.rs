//! The ledger's vocabulary: append-only entry kinds and the balance move each one makes.
//!
//! Balances are kept per (partner, program, currency) in four buckets: `pending` (in hold),
//! `available` (released, waiting for a payout), `in_payout` (reserved by a payout item, money
//! in flight to the partner) and `paid`. Every entry moves money between buckets, or into / out
//! of them, by a fixed rule below; storage writes the entry and its move in one transaction, so
//! the books always balance:
//!
//! `pending + available + in_payout + paid == Σ earned − Σ reversed − Σ clawed_back − Σ forfeited + Σ adjusted`
//!
//! and the payout kinds only move money between buckets:
//! `in_payout == Σ payout_reserved − Σ paid − Σ payout_released` and
//! `paid == Σ paid − Σ payout_returned`.
//!
//! A negative `available` balance (a clawback after the money was paid) is carried and never paid.

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// One of the four balance buckets of a (partner, program, currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Earned, still in the hold.
    Pending,
    /// Released, waiting for a payout.
    Available,
    /// Reserved by a payout item: on its way to the partner.
    InPayout,
    /// Sent to the partner.
    Paid,
}

/// Kind of an append-only ledger entry; [`entry_delta`] says how each moves the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A commission was earned; it waits out the hold in `pending`.
    Earned,
    /// The hold ended: `pending` → `available`.
    Released,
    /// A refund or lost dispute before release: out of `pending`.
    Reversed,
    /// A refund or lost dispute after release: out of `available` (may go negative).
    ClawedBack,
    /// Money given up under the program's accrual policy or by an operator: out of a bucket.
    Forfeited,
    /// A payout item was created for the money: `available` → `in_payout`.
    PayoutReserved,
    /// The rail confirmed the payout: `in_payout` → `paid`.
    Paid,
    /// The payout item failed or was cancelled before money left: `in_payout` → `available`.
    PayoutReleased,
    /// Money that came back after it was sent (returned, unclaimed, reversed): `paid` → `available`.
    PayoutReturned,
    /// A correction, positive or negative, to `pending` or `available`.
    Adjusted,
}

impl EntryKind {
    /// The snake_case name, as serialized.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Earned => "earned",
            EntryKind::Released => "released",
            EntryKind::Reversed => "reversed",
            EntryKind::ClawedBack => "clawed_back",
            EntryKind::Forfeited => "forfeited",
            EntryKind::PayoutReserved => "payout_reserved",
            EntryKind::Paid => "paid",
            EntryKind::PayoutReleased => "payout_released",
            EntryKind::PayoutReturned => "payout_returned",
            EntryKind::Adjusted => "adjusted",
        }
    }
}

/// Why an entry cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Every kind but `Adjusted` needs a positive amount.
    #[error("{kind:?} needs a positive amount, got {amount}")]
    NotPositive {
        /// The entry kind.
        kind: EntryKind,
        /// The amount given.
        amount: i64,
    },
    /// The kind cannot move that bucket.
    #[error("{kind:?} cannot apply to the {bucket:?} bucket")]
    WrongBucket {
        /// The entry kind.
        kind: EntryKind,
        /// The bucket given.
        bucket: Bucket,
    },
    /// `Adjusted` with 0.
    #[error("an adjustment of zero moves nothing")]
    ZeroAdjustment,
    /// A payout larger than the available balance.
    #[error("payout of {wanted} exceeds the available balance {available}")]
    PayoutExceedsAvailable {
        /// The payout amount.
        wanted: i64,
        /// The available balance.
        available: i64,
    },
    /// Arithmetic overflow.
    #[error("amount overflows 64-bit minor units")]
    Overflow,
}

/// A signed move of each bucket, in minor units of one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceDelta {
    /// Move of `pending`.
    pub pending: i64,
    /// Move of `available`.
    pub available: i64,
    /// Move of `in_payout`.
    #[serde(default)]
    pub in_payout: i64,
    /// Move of `paid`.
    pub paid: i64,
}

impl BalanceDelta {
    /// True when nothing moves.
    pub fn is_zero(&self) -> bool {
        self.pending == 0 && self.available == 0 && self.in_payout == 0 && self.paid == 0
    }
    /// Net change of the partner's total (what the books say they have earned, net).
    pub fn total(&self) -> i64 {
        self.pending + self.available + self.in_payout + self.paid
    }
    /// Sum of two moves.
    pub fn checked_add(&self, o: &BalanceDelta) -> Result<BalanceDelta, LedgerError> {
        Ok(BalanceDelta {
            pending: self
                .pending
                .checked_add(o.pending)
                .ok_or(LedgerError::Overflow)?,
            available: self
                .available
                .checked_add(o.available)
                .ok_or(LedgerError::Overflow)?,
            in_payout: self
                .in_payout
                .checked_add(o.in_payout)
                .ok_or(LedgerError::Overflow)?,
            paid: self.paid.checked_add(o.paid).ok_or(LedgerError::Overflow)?,
        })
    }
}

/// The balance move of one entry. `amount` is positive for every kind but `Adjusted`, whose
/// sign says the direction. `bucket` is needed by `Forfeited` (pending or available) and
/// `Adjusted` (pending or available) and ignored by the others.
pub fn entry_delta(
    kind: EntryKind,
    amount: i64,
    bucket: Option<Bucket>,
) -> Result<BalanceDelta, LedgerError> {
    let d = BalanceDelta::default();
    if kind != EntryKind::Adjusted && amount <= 0 {
        return Err(LedgerError::NotPositive { kind, amount });
    }
    Ok(match kind {
        EntryKind::Earned => BalanceDelta {
            pending: amount,
            ..d
        },
        EntryKind::Released => BalanceDelta {
            pending: -amount,
            available: amount,
            ..d
        },
        EntryKind::Reversed => BalanceDelta {
            pending: -amount,
            ..d
        },
        EntryKind::ClawedBack => BalanceDelta {
            available: -amount,
            ..d
        },
        EntryKind::PayoutReserved => BalanceDelta {
            available: -amount,
            in_payout: amount,
            ..d
        },
        EntryKind::Paid => BalanceDelta {
            in_payout: -amount,
            paid: amount,
            ..d
        },
        EntryKind::PayoutReleased => BalanceDelta {
            in_payout: -amount,
            available: amount,
            ..d
        },
        EntryKind::PayoutReturned => BalanceDelta {
            paid: -amount,
            available: amount,
            ..d
        },
        EntryKind::Forfeited => match bucket.unwrap_or(Bucket::Available) {
            Bucket::Pending => BalanceDelta {
                pending: -amount,
                ..d
            },
            Bucket::Available => BalanceDelta {
                available: -amount,
                ..d
            },
            b @ (Bucket::InPayout | Bucket::Paid) => {
                return Err(LedgerError::WrongBucket { kind, bucket: b })
            }
        },
        EntryKind::Adjusted => {
            if amount == 0 {
                return Err(LedgerError::ZeroAdjustment);
            }
            match bucket.unwrap_or(Bucket::Pending) {
                Bucket::Pending => BalanceDelta {
                    pending: amount,
                    ..d
                },
                Bucket::Available => BalanceDelta {
                    available: amount,
                    ..d
                },
                b @ (Bucket::InPayout | Bucket::Paid) => {
                    return Err(LedgerError::WrongBucket { kind, bucket: b })
                }
            }
        }
    })
}

/// Balances of one (partner, program, currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Currency of all three buckets.
    pub currency: Currency,
    /// In hold, minor units.
    pub pending: i64,
    /// Released and unpaid, minor units; negative after a clawback of paid money.
    pub available: i64,
    /// Reserved by payout items not yet confirmed or released, minor units.
    #[serde(default)]
    pub in_payout: i64,
    /// Paid out (net of returned payouts), minor units.
    pub paid: i64,
}

impl Balance {
    /// All buckets at zero.
    pub fn zero(currency: Currency) -> Self {
        Balance {
            currency,
            pending: 0,
            available: 0,
            in_payout: 0,
            paid: 0,
        }
    }
    /// Sum of the four buckets: what the books say the partner has earned, net.
    pub fn total(&self) -> i64 {
        self.pending + self.available + self.in_payout + self.paid
    }
    /// Applies a move (checked for overflow).
    pub fn apply(&mut self, d: &BalanceDelta) -> Result<(), LedgerError> {
        self.pending = self
            .pending
            .checked_add(d.pending)
            .ok_or(LedgerError::Overflow)?;
        self.available = self
            .available
            .checked_add(d.available)
            .ok_or(LedgerError::Overflow)?;
        self.in_payout = self
            .in_payout
            .checked_add(d.in_payout)
            .ok_or(LedgerError::Overflow)?;
        self.paid = self.paid.checked_add(d.paid).ok_or(LedgerError::Overflow)?;
        Ok(())
    }
    /// The available bucket as money.
    pub fn available_money(&self) -> Money {
        Money::new(self.available, self.currency)
    }
    /// What a payout may send now: the available balance if it reaches `minimum`, else nothing.
    /// A negative or zero balance is never paid.
    pub fn payable(&self, minimum: i64) -> Option<i64> {
        (self.available > 0 && self.available >= minimum).then_some(self.available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_moves_as_documented() {
        use EntryKind::*;
        // (kind, amount, bucket, (pending, available, in_payout, paid))
        type Case = (EntryKind, i64, Option<Bucket>, (i64, i64, i64, i64));
        let cases: &[Case] = &[
            (Earned, 2475, None, (2475, 0, 0, 0)),
            (Released, 2475, None, (-2475, 2475, 0, 0)),
            (Reversed, 2475, None, (-2475, 0, 0, 0)),
            (ClawedBack, 2475, None, (0, -2475, 0, 0)),
            (PayoutReserved, 10000, None, (0, -10000, 10000, 0)),
            (Paid, 10000, None, (0, 0, -10000, 10000)),
            (PayoutReleased, 10000, None, (0, 10000, -10000, 0)),
            (PayoutReturned, 10000, None, (0, 10000, 0, -10000)),
            (Forfeited, 500, Some(Bucket::Available), (0, -500, 0, 0)),
            (Forfeited, 500, Some(Bucket::Pending), (-500, 0, 0, 0)),
            (Adjusted, -300, Some(Bucket::Pending), (-300, 0, 0, 0)),
            (Adjusted, 300, Some(Bucket::Available), (0, 300, 0, 0)),
        ];
        for (k, amt, b, (p, a, ip, pd)) in cases {
            let d = entry_delta(*k, *amt, *b).unwrap();
            assert_eq!(
                (d.pending, d.available, d.in_payout, d.paid),
                (*p, *a, *ip, *pd),
                "{k:?}"
            );
        }
        // Only earning, reversing, clawing back, forfeiting and adjusting change the total;
        // the payout kinds move money between buckets.
        for k in [
            Released,
            PayoutReserved,
            Paid,
            PayoutReleased,
            PayoutReturned,
        ] {
            assert_eq!(entry_delta(k, 700, None).unwrap().total(), 0, "{k:?}");
        }
        assert!(entry_delta(Forfeited, 5, Some(Bucket::InPayout)).is_err());
        assert!(entry_delta(Adjusted, 5, Some(Bucket::InPayout)).is_err());
        assert!(entry_delta(Earned, 0, None).is_err());
        assert!(entry_delta(Paid, -5, None).is_err());
        assert!(entry_delta(Adjusted, 0, None).is_err());
        assert!(entry_delta(Forfeited, 5, Some(Bucket::Paid)).is_err());
    }

    #[test]
    fn negative_balance_is_never_payable() {
        let mut b = Balance::zero(Currency::USD);
        b.apply(&entry_delta(EntryKind::ClawedBack, 500, None).unwrap())
            .unwrap();
        assert_eq!(b.payable(0), None);
        b.apply(&entry_delta(EntryKind::Adjusted, 10_500, Some(Bucket::Available)).unwrap())
            .unwrap();
        assert_eq!(b.payable(10_000), Some(10_000));
        assert_eq!(b.payable(10_001), None);
    }
}
