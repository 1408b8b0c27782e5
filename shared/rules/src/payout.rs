//! Whether a partner, and a partner's balance, can be paid now: the partner-side facts
//! ([`PayoutMethod`], [`TaxInfoState`], the partner's [`PartnerStatus`]) and the program's
//! payout minimum per currency ([`Program::payout_minimum_for`]).

use serde::{Deserialize, Serialize};

use crate::attribution::normalize_email;
use crate::ledger::Balance;
use crate::money::Currency;
use crate::program::{PartnerStatus, Program};

/// Where a partner's payouts go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PayoutMethod {
    /// PayPal Payouts to an e-mail address.
    #[serde(rename = "paypal")]
    PayPal {
        /// Receiver e-mail.
        email: String,
    },
    /// Stripe Connect transfer to a connected account.
    StripeConnect {
        /// `acct_…` id.
        account_id: String,
    },
    /// Nothing on file.
    #[default]
    None,
}

impl PayoutMethod {
    /// True when the method can receive money: a PayPal e-mail that is a well-formed address,
    /// or a non-empty Stripe account id.
    pub fn is_usable(&self) -> bool {
        match self {
            PayoutMethod::PayPal { email } => normalize_email(email).is_ok(),
            PayoutMethod::StripeConnect { account_id } => !account_id.trim().is_empty(),
            PayoutMethod::None => false,
        }
    }
}

/// State of the partner's tax form (W-9 or the "international" questions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxInfoState {
    /// Nothing submitted.
    #[default]
    Missing,
    /// Submitted, waiting for review.
    Submitted,
    /// Reviewed and approved.
    Approved,
}

/// Why a payout cannot be made now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayoutBlocker {
    /// The partner is not `Active`.
    PartnerNotActive {
        /// Current status.
        status: PartnerStatus,
    },
    /// No usable payout method on file.
    NoPayoutMethod,
    /// Tax information not approved.
    TaxInfoNotApproved {
        /// Current state.
        state: TaxInfoState,
    },
    /// Nothing available (zero or a carried negative balance after a clawback).
    NothingAvailable {
        /// Available minor units (≤ 0).
        available: i64,
    },
    /// Available balance under the program's payout minimum.
    BelowMinimum {
        /// Available minor units.
        available: i64,
        /// Minimum in minor units.
        minimum: i64,
    },
    /// The program has payout minimums but none for this currency.
    NoMinimumForCurrency {
        /// The balance's currency.
        currency: Currency,
    },
}

/// Partner-level reasons a partner cannot be paid: they must be `Active`, have a usable
/// payout method and approved tax information. Empty when payable.
pub fn payout_blockers(
    status: PartnerStatus,
    method: &PayoutMethod,
    tax_info: TaxInfoState,
) -> Vec<PayoutBlocker> {
    let mut out = Vec::new();
    // Only an active partner is paid (`partner`: a suspended one keeps earning, a banned one's
    // balance is frozen).
    if !crate::partner::payable(status) {
        out.push(PayoutBlocker::PartnerNotActive { status });
    }
    if !method.is_usable() {
        out.push(PayoutBlocker::NoPayoutMethod);
    }
    if tax_info != TaxInfoState::Approved {
        out.push(PayoutBlocker::TaxInfoNotApproved { state: tax_info });
    }
    out
}

/// Balance-level reasons a (partner, program, currency) balance cannot be paid now: nothing
/// (or a negative amount) available, no minimum configured for the currency, or under the
/// minimum. Empty when [`Balance::payable`] with [`Program::payout_minimum_for`] would pay.
pub fn balance_payout_blockers(program: &Program, balance: &Balance) -> Vec<PayoutBlocker> {
    if balance.available <= 0 {
        return vec![PayoutBlocker::NothingAvailable {
            available: balance.available,
        }];
    }
    match program.payout_minimum_configured(balance.currency) {
        None => vec![PayoutBlocker::NoMinimumForCurrency {
            currency: balance.currency,
        }],
        Some(minimum) if balance.available < minimum => vec![PayoutBlocker::BelowMinimum {
            available: balance.available,
            minimum,
        }],
        Some(_) => Vec::new(),
    }
}

/// The amount to pay out of `balance` now, or `None`: the whole available balance when it is
/// positive and reaches the program's minimum for its currency
/// ([`Program::payout_minimum_for`]). Never more than available, never zero or negative.
pub fn payout_amount(program: &Program, balance: &Balance) -> Option<i64> {
    balance.payable(program.payout_minimum_for(balance.currency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::tests::base;

    #[test]
    fn payout_minimum_per_currency() {
        let mut p = base();
        assert_eq!(p.payout_minimum_for(Currency::USD), 10_000);
        // No entry for EUR while others are configured: not payable, explained.
        assert_eq!(p.payout_minimum_for(Currency::EUR), i64::MAX);
        assert_eq!(p.payout_minimum_configured(Currency::EUR), None);
        let mut b = Balance::zero(Currency::EUR);
        b.available = 1_000_000;
        assert_eq!(payout_amount(&p, &b), None);
        assert_eq!(
            balance_payout_blockers(&p, &b),
            vec![PayoutBlocker::NoMinimumForCurrency {
                currency: Currency::EUR
            }]
        );
        p.payout_minimum.insert(Currency::EUR, 5_000);
        assert_eq!(payout_amount(&p, &b), Some(1_000_000));
        assert!(balance_payout_blockers(&p, &b).is_empty());
        // An empty map switches minimums off, but zero / negative still never pays.
        p.payout_minimum.clear();
        assert_eq!(p.payout_minimum_for(Currency::JPY), 0);
        let mut y = Balance::zero(Currency::JPY);
        y.available = 1;
        assert_eq!(payout_amount(&p, &y), Some(1));
        y.available = -300;
        assert_eq!(payout_amount(&p, &y), None);
        assert_eq!(
            balance_payout_blockers(&p, &y),
            vec![PayoutBlocker::NothingAvailable { available: -300 }]
        );
        // $80 under Ontraport's $100.
        let q = base();
        let mut u = Balance::zero(Currency::USD);
        u.available = 8_000;
        assert_eq!(
            balance_payout_blockers(&q, &u),
            vec![PayoutBlocker::BelowMinimum {
                available: 8_000,
                minimum: 10_000
            }]
        );
        u.available = 10_000;
        assert_eq!(payout_amount(&q, &u), Some(10_000));
    }

    #[test]
    fn partner_blockers() {
        let paypal = PayoutMethod::PayPal {
            email: "p@example.com".into(),
        };
        assert!(payout_blockers(PartnerStatus::Active, &paypal, TaxInfoState::Approved).is_empty());
        assert_eq!(
            payout_blockers(
                PartnerStatus::Suspended,
                &PayoutMethod::None,
                TaxInfoState::Submitted
            ),
            vec![
                PayoutBlocker::PartnerNotActive {
                    status: PartnerStatus::Suspended
                },
                PayoutBlocker::NoPayoutMethod,
                PayoutBlocker::TaxInfoNotApproved {
                    state: TaxInfoState::Submitted
                },
            ]
        );
        let bad = PayoutMethod::PayPal {
            email: "not an email".into(),
        };
        assert_eq!(
            payout_blockers(PartnerStatus::Active, &bad, TaxInfoState::Approved),
            vec![PayoutBlocker::NoPayoutMethod]
        );
        let j = serde_json::to_string(&paypal).unwrap();
        assert_eq!(j, r#"{"type":"paypal","email":"p@example.com"}"#);
        let s: PayoutMethod =
            serde_json::from_str(r#"{"type":"stripe_connect","account_id":"acct_1"}"#).unwrap();
        assert!(s.is_usable());
    }
}
