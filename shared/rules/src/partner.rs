//! What a partner's account status ([`PartnerStatus`]) allows: earning on new sales, binding
//! new customers, being paid, and whether their balance is frozen.
//!
//! | status      | new sales                       | binds | paid | balance |
//! |-------------|---------------------------------|-------|------|---------|
//! | `active`    | earn                            | yes   | yes  | moves   |
//! | `pending`   | wait as unattributed            | no    | no   | moves   |
//! | `suspended` | earn (paid once reinstated)     | no    | no   | moves   |
//! | `banned`    | wait as unattributed (reassign) | no    | no   | frozen  |
//!
//! * A **banned** partner's new sales earn nothing: they wait as unattributed sales for an
//!   operator to reassign them to another partner, and their balance is frozen: nothing is paid
//!   or forfeited from it until an operator decides (the payout job honours it).
//! * A **suspended** partner keeps earning on the customers already bound to them, but is not
//!   paid until reinstated; their balance keeps moving out of the hold as usual.
//! * A **pending** (not yet approved) partner is treated like one who cannot earn yet: the
//!   programs the engine models start earning "after approval" (Ontraport: "After approval of
//!   these required items you'll be all set to begin earning"; Kartra: "Once approved, grab your
//!   affiliate link"), so a sale that reaches one waits as unattributed, to be reassigned (to
//!   them once approved, or to another partner) by an operator.
//! * A click id, partner code or coupon binds a new customer only to an **active** partner
//!   through an active link: a disabled link, or a suspended, banned or pending partner, no
//!   longer binds.

use crate::program::PartnerStatus;

/// What a new sale attributed to a partner books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaleTreatment {
    /// Book the commission as the program's plan says.
    Earn,
    /// Earn nothing: keep the sale as unattributed, for an operator to reassign.
    WaitUnattributed,
}

/// How a new sale of a customer bound to a partner with `status` is booked.
pub fn sale_treatment(status: PartnerStatus) -> SaleTreatment {
    match status {
        PartnerStatus::Active | PartnerStatus::Suspended => SaleTreatment::Earn,
        PartnerStatus::Pending | PartnerStatus::Banned => SaleTreatment::WaitUnattributed,
    }
}

/// Whether a click id, partner code or coupon of this partner, through a link that is
/// `link_active` (for a coupon: true), binds a customer now.
pub fn can_bind(partner: PartnerStatus, link_active: bool) -> bool {
    link_active && partner == PartnerStatus::Active
}

/// Whether the partner may be paid (see also `payout::payout_blockers`, which reports it).
pub fn payable(status: PartnerStatus) -> bool {
    status == PartnerStatus::Active
}

/// Whether the partner's balance is frozen: no payout or forfeiture takes from it until an
/// operator decides.
pub fn balance_frozen(status: PartnerStatus) -> bool {
    status == PartnerStatus::Banned
}

#[cfg(test)]
mod tests {
    use super::*;
    use PartnerStatus::*;

    #[test]
    fn status_table() {
        // (status, new sales, paid, frozen)
        let table = [
            (Active, SaleTreatment::Earn, true, false),
            (Pending, SaleTreatment::WaitUnattributed, false, false),
            (Suspended, SaleTreatment::Earn, false, false),
            (Banned, SaleTreatment::WaitUnattributed, false, true),
        ];
        for (status, treatment, paid, frozen) in table {
            assert_eq!(sale_treatment(status), treatment, "{status:?} sales");
            assert_eq!(payable(status), paid, "{status:?} payable");
            assert_eq!(balance_frozen(status), frozen, "{status:?} frozen");
        }
    }

    #[test]
    fn binding_table() {
        // (partner status, link active, binds)
        let table = [
            (Active, true, true),
            (Active, false, false),
            (Pending, true, false),
            (Suspended, true, false),
            (Suspended, false, false),
            (Banned, true, false),
            (Banned, false, false),
        ];
        for (status, link_active, binds) in table {
            assert_eq!(
                can_bind(status, link_active),
                binds,
                "{status:?}, link active {link_active}"
            );
        }
    }

    #[test]
    fn payable_agrees_with_the_payout_blockers() {
        use crate::payout::{payout_blockers, PayoutBlocker, PayoutMethod, TaxInfoState};
        let method = PayoutMethod::PayPal {
            email: "alice@example.com".into(),
        };
        for status in [Active, Pending, Suspended, Banned] {
            let blocked = payout_blockers(status, &method, TaxInfoState::Approved, true)
                .contains(&PayoutBlocker::PartnerNotActive { status });
            assert_eq!(payable(status), !blocked, "{status:?}");
        }
    }
}
